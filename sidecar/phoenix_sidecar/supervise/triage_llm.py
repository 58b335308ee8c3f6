"""The production `seams.Triager`: the configured LLM clients asked to name a failure, within one time limit.

The clients are the repair's (``primary``, then each ``fallback``, built by `repair.llm`'s
registry) asking for a category instead of patches (`TASK`: the triage instruction and answer
schema of `triage`). They are tried in order until one gives an answer that names a category or
says none fits; an unusable answer or a failure moves on to the next. All of them together get
``llm_triage_timeout_seconds``: each call is given what is left of it as its own time limit (the
clients stop at their limit: the HTTP ones at a deadline, the program ones by killing their
process group), so a triage never holds the supervisor's decision longer. Each call is an
``LlmCalled`` event, like a repair's. Imports ``repair.llm`` (the clients) and ``events``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from phoenix_sidecar.config.schema import Settings
from phoenix_sidecar.errors import LlmError
from phoenix_sidecar.events import EventBus, LlmCalled, StepProgress
from phoenix_sidecar.repair.llm import LlmClient, Task, build_clients
from phoenix_sidecar.supervise.triage import INSTRUCTION, SCHEMA, TriageResult, TriageVerdict, build_prompt, verdict_for
from phoenix_watchdog.diagnosis.failure import Diagnosis

log = logging.getLogger(__name__)
TASK = Task("phoenix_triage", INSTRUCTION, SCHEMA)
MIN_CALL_SECONDS = 1.0  # less than this left of the limit: no fallback could finish, so none is started


class LlmTriager:
    """Asks the configured clients, in order, within ``llm_triage_timeout_seconds`` all together.

    Args:
        settings: the effective settings (the clients, ``llm_triage_timeout_seconds``).
        bus: receives an ``LlmCalled`` for each call, and the step's progress.
        environ: where the clients find their keys.
        workspace: the job's directory (the ``command`` client runs there).
        scrub: the session's redactor: the prompt and every recorded message pass it.
        clients: the clients to ask (tests); None builds the configured ones on first use.
        clock: monotonic seconds (tests).
    """

    def __init__(self, settings: Settings, bus: EventBus, environ: Mapping[str, str], workspace: Path, *,
                 scrub: Callable[[str], str], clients: list[LlmClient] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.bus = bus
        self.environ = environ
        self.workspace = workspace
        self.scrub = scrub
        self._clients = clients
        self.clock = clock

    def triage(self, diagnosis: Diagnosis, tail: str) -> TriageVerdict:
        started = self.clock()
        limit = self.settings.llm_triage_timeout_seconds
        deadline = started + limit
        prompt = build_prompt(diagnosis, tail, scrub=self.scrub)
        clients = self._configured()
        failures: list[str] = []
        rejected: TriageVerdict | None = None
        for n, client in enumerate(clients):
            left = deadline - self.clock()
            if left <= 0 or (n and left < MIN_CALL_SECONDS):  # the first is asked whatever is left
                failures.append(f"{client.name}: not asked, the {limit:g} s triage limit was spent")
                break
            verdict = self._ask(client, prompt, left, started, failures)
            if verdict is None:
                continue
            if verdict.result is TriageResult.REJECTED:
                rejected = verdict
                failures.append(f"{client.name}: {verdict.reason}")
                continue
            return verdict
        seconds = self.clock() - started
        why = "; ".join(failures) or "no LLM client is configured (primary, fallback)"
        if rejected is not None:
            return dataclasses.replace(rejected, reason=_clip(why), seconds=seconds)
        return TriageVerdict(TriageResult.FAILED, None, _clip(why), None, seconds)

    def _ask(self, client: LlmClient, prompt: str, left: float, started: float,
             failures: list[str]) -> TriageVerdict | None:
        """One client's verdict, or None (its failure noted in ``failures``) when it gave no answer."""
        # The clients read their time limit from their settings at each call: give them what is left.
        client.settings = dataclasses.replace(self.settings, llm_timeout_seconds=left)  # type: ignore[attr-defined]
        step = f"asking the LLM ({client.name}) to name the failure's category"
        self.bus.emit(StepProgress(step="llm", detail=step, limit_seconds=round(left, 1)))
        called = self.clock()
        try:
            answer = client.complete(prompt)
        except LlmError as exc:
            self.bus.emit(LlmCalled(client=client.name, seconds=self.clock() - called, ok=False, error=exc.kind))
            failures.append(f"{client.name}: {self.scrub(str(exc))}")
            return None
        except Exception as exc:  # noqa: BLE001 - a client's bug must not end the supervision
            log.exception("LLM client %s failed during triage", client.name)
            self.bus.emit(LlmCalled(client=client.name, seconds=self.clock() - called, ok=False, error="other"))
            failures.append(f"{client.name}: {type(exc).__name__}: {self.scrub(str(exc))}")
            return None
        finally:
            self.bus.emit(StepProgress(step="llm", detail=step, limit_seconds=round(left, 1), done=True))
        self.bus.emit(LlmCalled(client=client.name, seconds=self.clock() - called, ok=True))
        verdict = verdict_for(answer, client.name, self.clock() - started)
        return dataclasses.replace(verdict, reason=self.scrub(verdict.reason))

    def _configured(self) -> list[LlmClient]:
        if self._clients is None:
            self._clients = build_clients(self.settings, self.environ, self.workspace, TASK)
        return self._clients


def _clip(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
