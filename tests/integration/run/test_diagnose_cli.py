"""`phoenix diagnose` through the real command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from testkit import run_phoenix

LOGS = Path(__file__).resolve().parents[2] / "data" / "logs"


def test_text_output_names_everything_a_human_needs(tmp_path: Path) -> None:
    r = run_phoenix(["diagnose", str(LOGS / "torch_config_keyerror.log"), "--exit-code", "1", "-w", "/workspace"],
                    cwd=tmp_path)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    assert "signature   config_error-" in out
    assert "category    config_error" in out
    assert "patchable   yes" in out
    assert "exception   KeyError" in out
    assert "message     'lr'" in out
    assert "user frame  config_keyerror.py:" in out and " in build_optimizer" in out
    assert "exit code 1" in out


def test_json_gives_one_object_per_input_in_order(tmp_path: Path) -> None:
    names = ["gpu_cuda_oom_single.log", "gpu_nccl_timeout_8ranks.log", "torch_hang_spin.log"]
    r = run_phoenix(["diagnose", "--json", "--workspace", "/workspace", *(str(LOGS / n) for n in names)], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert [Path(row["input"]).name for row in rows] == names
    assert [row["category"] for row in rows] == ["cuda_oom", "nccl_timeout", "unknown"]
    oom = rows[0]
    assert {"signature", "category", "patchable", "exception", "message", "frame", "summary", "files", "evidence"} <= set(oom)
    assert oom["frame"] == {"file": "models/transformer.py", "line": 122, "function": "forward"}
    assert oom["exception"] == "torch.OutOfMemoryError" and oom["patchable"] is True
    assert rows[1]["frame"] is None


def test_stdin_and_the_exit_status_flags(tmp_path: Path) -> None:
    log = (LOGS / "torch_sigkill.log").read_bytes()
    plain = json.loads(run_phoenix(["diagnose", "--json", "-", "--signal", "9"], cwd=tmp_path, input=log).stdout)
    oom = json.loads(run_phoenix(["diagnose", "--json", "-", "--exit-code", "137", "--oom-killed"], cwd=tmp_path,
                                 input=log).stdout)
    segv = json.loads(run_phoenix(["diagnose", "--json", "-", "--exit-code", "139"], cwd=tmp_path, input=log).stdout)
    assert (plain["input"], plain["category"], oom["category"], segv["category"]) == ("-", "unknown", "host_oom", "segfault")


def test_bytes_that_are_not_utf8_are_replaced(tmp_path: Path) -> None:
    log = b"loading \xff\xfe\x80 shard\nTraceback (most recent call last):\n  File \"/w/t.py\", line 3, in f\n" \
          b"ValueError: bad byte \xe9\n"
    r = run_phoenix(["diagnose", "--json", "-"], cwd=tmp_path, input=log)
    row = json.loads(r.stdout)
    assert (r.returncode, row["exception"], row["message"]) == (0, "ValueError", "bad byte \ufffd")


def test_the_same_log_twice_gives_the_same_signature_across_processes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    shutil.copy(LOGS / "torch_shape_mismatch_b32.log", a)
    shutil.copy(LOGS / "torch_shape_mismatch_b64.log", b)
    first = run_phoenix(["diagnose", "--json", str(a), str(b)], cwd=tmp_path).stdout.decode().splitlines()
    again = run_phoenix(["diagnose", "--json", str(a)], cwd=tmp_path).stdout.decode().splitlines()
    sigs = {json.loads(line)["signature"] for line in first + again}
    assert len(sigs) == 1


def test_an_unreadable_file_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such.log"
    r = run_phoenix(["diagnose", str(LOGS / "torch_tqdm_glued.log"), str(missing)], cwd=tmp_path)
    assert r.returncode == 2
    assert str(missing) in r.stderr.decode() and "No such file" in r.stderr.decode()
    assert r.stdout == b""  # nothing is printed before every input could be read
    r = run_phoenix(["diagnose", str(tmp_path)], cwd=tmp_path)
    assert r.returncode == 2 and "directory" in r.stderr.decode()


def test_bad_flags_are_usage_errors(tmp_path: Path) -> None:
    log = str(LOGS / "empty.log")
    for args in (["--exit-code", "300"], ["--signal", "0"], ["--exit-code", "x"]):
        r = run_phoenix(["diagnose", log, *args], cwd=tmp_path)
        assert r.returncode == 2, args
    assert run_phoenix(["diagnose"], cwd=tmp_path).returncode == 2
    assert run_phoenix(["diagnose", "-", "-"], cwd=tmp_path, input=b"x").returncode == 2


def test_help_lists_the_command(tmp_path: Path) -> None:
    r = run_phoenix(["--help"], cwd=tmp_path)
    assert b"diagnose" in r.stdout


def test_explain_names_the_rule_that_decided_and_rules_come_from_phoenix_yaml(tmp_path: Path) -> None:
    (tmp_path / "phoenix.yaml").write_text(
        "rules:\n  - pattern: 'ShardChecksumError'\n    category: unknown\n    action: restart\n")
    (tmp_path / "crash.log").write_text("step 1\nShardChecksumError: shard 7 is corrupt\n")
    r = run_phoenix(["diagnose", "--explain", "--rules", "phoenix.yaml", "crash.log"], cwd=tmp_path)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    assert "category    unknown" in out
    assert "decided by  rule user0 (phoenix.yaml rules[0])" in out
    assert "all evidence, strongest first:" in out
    (tmp_path / "bad.yaml").write_text("rules:\n  - pattern: '(['\n    category: unknown\n")
    r = run_phoenix(["diagnose", "--rules", "bad.yaml", "crash.log"], cwd=tmp_path)
    assert r.returncode == 2 and b"not a valid regular expression" in r.stderr
