"""The diagnosis input of a container run followed through a log file: the file's tail, completed by
the container's own output when the file holds less of the run (a crash before the file opened)."""

from __future__ import annotations

from phoenix_sidecar.runtime.docker.streams import completed_tail

IMPORT_ERROR = (b"Traceback (most recent call last):\n  File \"/ws/train.py\", line 2, in <module>\n"
                b"ModuleNotFoundError: No module named 'apex'\n")


def test_an_empty_log_file_is_completed_by_the_container_output() -> None:
    assert completed_tail("", IMPORT_ERROR) == IMPORT_ERROR.decode()


def test_a_log_file_holding_more_than_the_container_printed_is_the_tail() -> None:
    file_tail = "epoch 1\nepoch 2\nTraceback (most recent call last):\nValueError: loss is nan\n"
    assert completed_tail(file_tail, b"starting\n") == file_tail


def test_a_partial_file_keeps_its_lines_and_gets_the_container_output_after_them() -> None:
    tail = completed_tail("loading", IMPORT_ERROR)
    assert tail.startswith("loading\n") and tail.endswith("No module named 'apex'\n")


def test_undecodable_bytes_do_not_lose_the_traceback() -> None:
    assert "No module named 'apex'" in completed_tail("", b"\xff\xfe" + IMPORT_ERROR)
