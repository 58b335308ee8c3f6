"""Answers as small local models write them (Qwen2.5-Coder 1.5B on llama-cpp-python): placed when one place fits, refused otherwise.

The slips are the ones seen in their answers: ``'`` for ``"``, spaces dropped or added around
punctuation, search text re-indented or quoted without its indentation, context off only by
quoting. None of them changes a token of the code, so the place is certain when exactly one place
fits; the same slip on a line that occurs twice is refused as ambiguous, and context that is really
not in the file is still refused (``context_mismatch``).
"""

from __future__ import annotations

import pytest

from phoenix_sidecar.errors import AnswerRejected
from phoenix_sidecar.repair.model import Patch
from phoenix_sidecar.repair.patch.apply import apply_patches

TRAIN = '''import torch
from torch.utils.data import DataLoader

CONFIG = {"lr": 1e-3, "batch_size": 32, "epochs": 2}


def build(cfg):
    model = torch.nn.Linear(16, 4)
    opt = torch.optim.SGD(model.parameters(), lr=cfg["learning_rate"])
    return model, opt


def train(cfg):
    model, opt = build(cfg)
    for epoch in range(cfg["epochs"]):
        x = torch.randn(cfg["batch_size"], 16)
        loss = model(x).pow(2).mean()
        print(f"epoch {epoch} loss {loss.item():.4f}")
    return model
'''
TWICE = TRAIN + '''

def evaluate(cfg):
    model, opt = build(cfg)
    for epoch in range(cfg["epochs"]):
        x = torch.randn(cfg["batch_size"], 16)
    return model
'''


def apply(patch: Patch, text: str = TRAIN) -> str:
    result = apply_patches([(patch, "train.py")], lambda _rel: text)
    return result.texts.get("train.py", text)


def sr(search: str, replace: str) -> Patch:
    return Patch("train.py", "search_replace", search=search, replace=replace)


def refused(reason: str, patch: Patch, text: str = TRAIN) -> AnswerRejected:
    with pytest.raises(AnswerRejected) as info:
        apply(patch, text)
    assert info.value.reason == reason, info.value
    return info.value


def test_single_quotes_for_double_in_the_search_text() -> None:
    out = apply(sr("    opt = torch.optim.SGD(model.parameters(), lr=cfg['learning_rate'])",
                   "    opt = torch.optim.SGD(model.parameters(), lr=cfg['lr'])"))
    assert out == TRAIN.replace('cfg["learning_rate"]', "cfg['lr']")
    compile(out, "train.py", "exec")


def test_search_text_without_its_indentation_and_with_spaces_dropped() -> None:
    out = apply(sr("opt = torch.optim.SGD(model.parameters(),lr=cfg['learning_rate'])",
                   "opt = torch.optim.SGD(model.parameters(), lr=cfg['lr'])"))
    assert out == TRAIN.replace('cfg["learning_rate"]', "cfg['lr']")


def test_a_reindented_two_line_search_keeps_the_file_indentation() -> None:
    out = apply(sr("model = torch.nn.Linear(16, 4)\nopt = torch.optim.SGD(model.parameters(), lr=cfg['learning_rate'])",
                   "model = torch.nn.Linear(16, 4)\nopt = torch.optim.SGD(model.parameters(), lr=cfg['lr'])"))
    assert out == TRAIN.replace('cfg["learning_rate"]', "cfg['lr']")


def test_a_hunk_whose_context_is_off_only_by_quoting() -> None:
    diff = ("@@ -8,3 +8,3 @@\n"
            "     model = torch.nn.Linear(16, 4)\n"
            "-    opt = torch.optim.SGD(model.parameters(), lr=cfg[\"learning_rate\"])\n"
            "+    opt = torch.optim.SGD(model.parameters(), lr=cfg[\"lr\"])\n"
            "     return model, opt\n"
            "@@ -15,2 +15,2 @@\n"
            "     for epoch in range(cfg['epochs']):\n"
            "-        x = torch.randn(cfg['batch_size'], 16)\n"
            "+        x = torch.randn(cfg['batch_size'], 16, dtype=torch.float32)\n")
    out = apply(Patch("train.py", "unified_diff", diff=diff))
    assert 'lr=cfg["lr"]' in out and "16, dtype=torch.float32)" in out
    assert 'for epoch in range(cfg["epochs"]):' in out  # the context stays as the file has it


def test_the_same_slip_on_a_line_that_occurs_twice_is_refused() -> None:
    err = refused("ambiguous", sr("x = torch.randn(cfg['batch_size'], 16)",
                                  "x = torch.randn(cfg['batch_size'], 16).float()"), TWICE)
    assert "lines 16, 25" in str(err)


def test_quoting_is_no_licence_for_other_differences() -> None:
    refused("no_match", sr("opt = torch.optim.Adam(model.parameters(), lr=cfg['learning_rate'])",
                           "opt = torch.optim.Adam(model.parameters(), lr=cfg['lr'])"))


def test_context_that_is_really_not_in_the_file_is_still_refused() -> None:
    diff = ("@@ -8,4 +8,4 @@\n"
            "     model = torch.nn.Linear(16, 4)\n"
            "     model = model.cuda()\n"
            "-    opt = torch.optim.SGD(model.parameters(), lr=cfg['learning_rate'])\n"
            "+    opt = torch.optim.SGD(model.parameters(), lr=cfg['lr'])\n"
            "     scheduler = None\n")
    refused("context_mismatch", Patch("train.py", "unified_diff", diff=diff))


def test_a_quote_slip_in_context_is_not_taken_for_a_line_the_model_forgot_to_mark() -> None:
    diff = ("@@\n"
            "     model, opt = build(cfg)\n"
            "     for epoch in range(cfg['epochs']):\n"
            "+        model.train()\n"
            "         x = torch.randn(cfg['batch_size'], 16)\n")
    out = apply(Patch("train.py", "unified_diff", diff=diff))
    assert out.count("for epoch in range") == 1 and out.count("model, opt = build(cfg)") == 1
    assert '    for epoch in range(cfg["epochs"]):\n        model.train()\n' in out


def test_a_quote_slip_inside_a_string_is_not_a_different_string() -> None:
    out = apply(sr("print(f'epoch {epoch} loss {loss.item():.4f}')",
                   "print(f'epoch {epoch} loss {loss.item():.6f}')"))
    assert "{loss.item():.6f}')" in out and out.count("print(") == 1


def test_the_answer_is_compiled_as_written_by_the_model() -> None:
    """A replacement with mixed quotes is the model's text; the file's own quotes stay on lines it keeps."""
    out = apply(sr('CONFIG = {"lr": 1e-3, "batch_size": 32, "epochs": 2}',
                   "CONFIG = {'lr': 1e-3, 'batch_size': 32, 'epochs': 2, 'learning_rate': 1e-3}"))
    assert "'learning_rate': 1e-3}" in out and out.replace(
        "CONFIG = {'lr': 1e-3, 'batch_size': 32, 'epochs': 2, 'learning_rate': 1e-3}", "") == TRAIN.replace(
        'CONFIG = {"lr": 1e-3, "batch_size": 32, "epochs": 2}', "")


def test_a_fragment_of_a_line_in_the_other_quote_style() -> None:
    """Qwen2.5-Coder 1.5B's answer to a KeyError, as it wrote it: the key alone, in single quotes."""
    out = apply(sr("'learning_rate'", "'lr'"))
    assert out == TRAIN.replace('cfg["learning_rate"]', "cfg['lr']")


def test_a_fragment_that_occurs_twice_once_quotes_are_ignored_is_refused() -> None:
    refused("ambiguous", sr("'batch_size'", "'bs'"))  # cfg["batch_size"] twice in train()


def test_a_fragment_found_nowhere_is_still_not_found() -> None:
    refused("no_match", sr("'learning-rate'", "'lr'"))
