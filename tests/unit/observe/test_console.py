"""The console's one line format (dated), the attach line, and progress lines for long steps."""

from __future__ import annotations

import io
import logging
import re
import time

from kits.waiting import wait_for
from phoenix_sidecar import events as ev
from phoenix_sidecar.observe.console import ConsoleFormatter, ConsoleReporter, describe

LINE = re.compile(r"^\[phoenix \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\] ")


def test_every_line_carries_the_date_and_warnings_share_the_format() -> None:
    out = io.StringIO()
    ConsoleReporter(out).handle(ev.JobSucceeded(at=time.mktime((2026, 12, 4, 20, 10, 19, 0, 0, -1))))
    assert out.getvalue() == "[phoenix 2026-12-04 20:10:19] the job finished successfully\n"
    record = logging.LogRecord("phoenix_sidecar.x", logging.WARNING, __file__, 1, "disk %s is slow", ("/ws",), None)
    text = ConsoleFormatter().format(record)
    assert LINE.match(text) and text.endswith("] warning: disk /ws is slow")
    record = logging.LogRecord("phoenix_sidecar.x", logging.INFO, __file__, 1, "serving /metrics", (), None)
    assert ConsoleFormatter().format(record).endswith("] serving /metrics")


def test_attaching_says_so_and_is_no_new_run() -> None:
    started = time.mktime((2026, 12, 1, 8, 0, 0, 0, 0, -1))
    text = describe(ev.JobStarted(run=3, target="container trainer", attached=True, started_at=started))
    assert text == "attached to the job (container trainer, running since 2026-12-01 08:00:00; run 3): not a new run"
    assert describe(ev.JobStarted(run=3, target="container trainer")) == "started run 3 of the job (container trainer)"


def test_a_long_step_is_repeated_with_its_time_until_it_ends() -> None:
    out = io.StringIO()
    console = ConsoleReporter(out, progress_seconds=0.05)
    step = ev.StepProgress(step="llm", detail="asking the LLM (openai) for a patch", limit_seconds=180)
    console.handle(step)
    wait_for(lambda: "still asking the LLM (openai) for a patch: " in out.getvalue(), "a progress line")
    console.handle(ev.StepProgress(step="llm", detail=step.detail, limit_seconds=180, done=True))
    lines = out.getvalue().splitlines()
    assert all(LINE.match(x) for x in lines)
    assert lines[0].endswith("] asking the LLM (openai) for a patch (at most 180 s)")
    assert re.search(r"still asking the LLM \(openai\) for a patch: \d+ s of at most 180 s$", lines[1])
    wait_for(lambda: not [t for t in __import__("threading").enumerate() if t.name == "phoenix-progress"],
             "the progress thread to end")


def test_an_llm_named_category_and_the_triage_say_where_the_category_came_from() -> None:
    named = describe(ev.IncidentOpened(2, "crash", "cuda_oom", "unknown-1a2b", "exit code 3", category_source="llm"))
    assert named == "incident #2: crash, cuda_oom (named by the LLM triage): exit code 3 [unknown-1a2b]"
    assert describe(ev.IncidentOpened(2, "crash", "unknown", "unknown-1a2b", "exit code 3")) == \
        "incident #2: crash, unknown: exit code 3 [unknown-1a2b]"
    assert describe(ev.FailureTriaged(2, "named", "cuda_oom", "the allocator ran out", "openai", 1.0)) == \
        "triage: the LLM (openai) named it cuda_oom: the allocator ran out"
    assert describe(ev.FailureTriaged(3, "named", "cuda_oom", "the allocator ran out", "openai", cached=True)) == \
        "triage: the LLM (openai, as before) named it cuda_oom: the allocator ran out"
    assert describe(ev.FailureTriaged(2, "failed", None, "openai: timeout")) == \
        "triage: the failure stays unknown: openai: timeout"
