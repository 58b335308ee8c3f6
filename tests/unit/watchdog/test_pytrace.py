"""Traceback parsing: chains, embedded worker tracebacks, interleaved ranks, truncated tails."""

from __future__ import annotations

from phoenix_watchdog.diagnosis.logtext import split_log
from phoenix_watchdog.diagnosis.pytrace import looks_like_exception, parse_tracebacks

SIMPLE = '''\
step 3 loss 0.2
Traceback (most recent call last):
  File "/ws/train.py", line 40, in <module>
    main()
  File "/ws/train.py", line 31, in main
    loss = step(batch)
           ^^^^^^^^^^^
  File "/ws/model.py", line 12, in step
    return self.fc(x)
KeyError: 'labels'
'''


def parse(text: str):
    return parse_tracebacks(split_log(text))


def test_a_plain_traceback() -> None:
    [tb] = parse(SIMPLE)
    err = tb.final
    assert (err.type, err.message) == ("KeyError", "'labels'")
    assert [(f.file, f.line, f.function) for f in err.frames] == [
        ("/ws/train.py", 40, "<module>"), ("/ws/train.py", 31, "main"), ("/ws/model.py", 12, "step")]
    assert err.frames[1].source == "loss = step(batch)"  # caret lines are not source
    assert (tb.start, tb.end, tb.links, tb.stream) == (1, 9, (), None)


def test_chains_keep_the_original_cause_first() -> None:
    text = '''Traceback (most recent call last):
  File "/ws/cfg.py", line 5, in load
    return yaml.safe_load(f)
yaml.scanner.ScannerError: mapping values are not allowed here
  in "<file>", line 3, column 9

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/ws/cfg.py", line 7, in load
    raise ConfigError("bad config") from exc
ConfigError: bad config

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/ws/train.py", line 9, in <module>
    log.error(cfgg)
NameError: name 'cfgg' is not defined
'''
    [tb] = parse(text)
    assert [e.short_type for e in tb.chain] == ["ScannerError", "ConfigError", "NameError"]
    assert tb.links == ("cause", "context")
    assert tb.chain[0].details == ('  in "<file>", line 3, column 9',)


def test_the_dataloader_worker_traceback_becomes_the_origin() -> None:
    text = '''Traceback (most recent call last):
  File "/ws/train.py", line 10, in <module>
    for b in loader:
  File "/site-packages/torch/_utils.py", line 794, in reraise
    raise exception
ValueError: Caught ValueError in DataLoader worker process 1.
Original Traceback (most recent call last):
  File "/site-packages/torch/utils/data/_utils/worker.py", line 374, in _worker_loop
    data = fetcher.fetch(index)
  File "/ws/data.py", line 8, in __getitem__
    raise ValueError(f"corrupt sample {i}")
ValueError: corrupt sample 13
'''
    [tb] = parse(text)
    assert tb.links == ("worker",)
    origin, final = tb.chain
    assert origin.message == "corrupt sample 13" and origin.frames[-1].function == "__getitem__"
    assert final.message.startswith("Caught ValueError")


def test_ranks_are_parsed_apart_even_when_interleaved() -> None:
    a = SIMPLE.splitlines()[1:]
    b = [line.replace("KeyError: 'labels'", "RuntimeError: peer closed") for line in a]
    mixed = [f"[rank{r}]: {line}" for pair in zip(a, b, strict=True) for r, line in zip((0, 1), pair, strict=True)]
    tbs = parse("\n".join(mixed))
    assert {(tb.stream, tb.final.type) for tb in tbs} == {("rank0", "KeyError"), ("rank1", "RuntimeError")}
    assert all(len(tb.final.frames) == 3 for tb in tbs)


def test_a_traceback_whose_header_was_cut_off_by_the_tail() -> None:
    [tb] = parse("\n".join(SIMPLE.splitlines()[4:]))
    assert tb.final.type == "KeyError" and [f.function for f in tb.final.frames] == ["main", "step"]


def test_foreign_lines_inside_a_traceback_are_skipped() -> None:
    lines = SIMPLE.splitlines()
    lines.insert(4, "Epoch 3 | step 120 | loss 0.4")
    [tb] = parse("\n".join(lines))
    assert tb.final.type == "KeyError" and len(tb.final.frames) == 3


def test_an_unfinished_traceback_is_dropped() -> None:
    assert parse("\n".join(SIMPLE.splitlines()[:6])) == []
    # anomaly mode prints forward frames without an exception line
    warn = ('/site-packages/torch/autograd/graph.py:979: UserWarning: Error detected in MseLossBackward0.\n'
            '  File "/ws/train.py", line 19, in main\n    loss = f(x)\n (Triggered internally at x.cpp:122.)\n')
    [tb] = parse(warn + SIMPLE)
    assert tb.final.type == "KeyError"


def test_syntax_errors_have_frames_without_function() -> None:
    text = '''Traceback (most recent call last):
  File "/ws/train.py", line 3, in <module>
    import model
  File "/ws/model.py", line 12
    def forward(self x):
                     ^
SyntaxError: invalid syntax
'''
    [tb] = parse(text)
    assert tb.final.type == "SyntaxError"
    assert (tb.final.frames[-1].file, tb.final.frames[-1].function) == ("/ws/model.py", "<module>")


def test_exceptions_in_threads_are_marked() -> None:
    [tb] = parse("Exception in thread Thread-1 (prefetch):\n" + SIMPLE.split("\n", 1)[1])
    assert tb.thread == "Thread-1 (prefetch)"


def test_frame_and_source_lines_are_reported() -> None:
    code: set[int] = set()
    parse_tracebacks(split_log(SIMPLE), code)
    assert code == {2, 3, 4, 5, 6, 7, 8}  # carets included: never evidence either


def test_exception_line_recognition() -> None:
    for good in ("KeyError: 'x'", "torch.OutOfMemoryError: CUDA out of memory.", "KeyboardInterrupt",
                 "socket.timeout: timed out", "_queue.Empty", "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
                 "numpy._core._exceptions._UFuncOutputCastingError: Cannot cast ufunc 'multiply' output",
                 "_pickle.UnpicklingError: Weights only load failed."):
        assert looks_like_exception(good), good
    for bad in ("INFO: starting", "Epoch 3 done", "WARNING:root:hm", "ERROR: Unexpected bus error", "step: 3"):
        assert not looks_like_exception(bad), bad


def test_exception_groups_read_as_a_chain_of_their_members() -> None:
    text = '''  + Exception Group Traceback (most recent call last):
  |   File "/ws/train.py", line 8, in <module>
  |     raise ExceptionGroup("several", errs)
  | ExceptionGroup: several (2 sub-exceptions)
  +-+---------------- 1 ----------------
    | Traceback (most recent call last):
    |   File "/ws/train.py", line 2, in f
    | ValueError: a
    +---------------- 2 ----------------
    | Traceback (most recent call last):
    |   File "/ws/train.py", line 3, in g
    | KeyError: 'b'
    +------------------------------------
'''
    [tb] = parse(text)
    assert [e.short_type for e in tb.chain] == ["ExceptionGroup", "ValueError", "KeyError"]
    assert tb.links == ("group", "group")
    assert tb.chain[1].frames[-1].function == "f"
