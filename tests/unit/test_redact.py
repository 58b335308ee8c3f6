"""The one redactor: large texts are scanned line by line where a secret could be, with the same
result as a scan of the whole; command lines are named without their arguments."""

from __future__ import annotations

import random

from phoenix_sidecar.redact import MASK, Redactor, command_label, command_secrets

SECRETS = ["hf_abcdefghijklmnopqrstuvwxyz12", "sk-proj-ABCDEFGHIJKLMNOPQRST", "ghp_abcdefghijklmnopqrstuvwxyz1234",
           "AKIAIOSFODNN7EXAMPLE", "xoxb-1234567890-abcdefghijkl", "Authorization: Bearer abcdefghijklmnopqrstu",
           "https://user:hunter2secret@example.com/x", "api_key='abcdef123456'", "DB_PASSWORD=Sup3rS3cret",
           "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
           "my literal envvalue-0042"]


def _corpus(seed: int) -> str:
    rng = random.Random(seed)
    lines = []
    for n in range(3000):
        if rng.random() < 0.02:
            lines.append(f"step {n} note {rng.choice(SECRETS)} tail")
        elif rng.random() < 0.05:
            lines.append(f"step {n} tokens/s {rng.random():.3f} keyboard monkey auth ok")
        else:
            lines.append(f"step {n} loss {rng.random():.4f} lr 0.001")
    return "\n".join(lines) + ("\n" if seed % 2 else "")


def test_the_sparse_scan_of_a_large_text_equals_the_whole_scan() -> None:
    redactor = Redactor(["envvalue-0042"])
    for seed in range(6):
        text = _corpus(seed)
        assert len(text) > 4096
        sparse = redactor.text(text)
        assert sparse == redactor._scan(text, False)
        assert not any(s in sparse for s in ("hf_abcdefghij", "AKIAIOSFODNN7EXAMPLE", "hunter2secret", "envvalue-0042"))
        assert MASK in sparse


def test_a_large_text_without_triggers_comes_back_unchanged() -> None:
    text = "".join(f"step {n} loss 2.{n % 97:02d}\n" for n in range(20000))
    assert Redactor(["notthere123"]).text(text) is text


def test_secret_options_of_a_command_line_are_hidden_and_its_label_has_no_argument() -> None:
    argv = ["/usr/bin/python3", "train.py", "--hf-token", "hf_secretvalue", "--api-key=abc123456", "--lr", "0.1"]
    assert command_secrets(argv) == ["hf_secretvalue", "abc123456"]
    label = command_label(argv)
    assert label.startswith("python3 #") and "train.py" not in label and "hf_" not in label
    assert command_label(argv) != command_label([*argv[:-1], "0.2"])
    r = Redactor.for_command({}, argv)
    assert r.text("got abc123456 and hf_secretvalue") == f"got {MASK} and {MASK}"
