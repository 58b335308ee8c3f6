"""Every attack of the unsafe-answer corpus is rejected, for its own reason, with nothing written anywhere.

The corpus (``data/unsafe/*.json``, one file per attack) covers reference section 7 and hostile or
garbage answers. Each runs through the real pipeline on a real git workspace that holds the bait
(symlinks out, a hard link, CI files, hooks...); the workspace, its repository and the directory
beside it must be byte-identical afterwards, and the answer is kept with its reason.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from phoenix_sidecar.events import PatchRejected, RepairPromoted, VerificationFinished
from phoenix_sidecar.repair import RejectReason

from kits.repairkit import TRAIN, fingerprint, make_repo

CORPUS = sorted((Path(__file__).parent / "data" / "unsafe").glob("*.json"))


def _bait(tmp: Path) -> tuple[Path, Path]:
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("SECRET = 1\n")
    (outside / "hard_target.py").write_text("SECRET = 1\n")
    files = {
        "train.py": TRAIN, "model.py": "LAYERS = 2\n", "notes.md": "notes\n", "conftest.py": "pass\n",
        "setup.py": "x\n", "sitecustomize.py": "pass\n", "evil.pth": "x\n", "Dockerfile": "FROM python\n",
        "docker-compose.yml": "services:\n", "phoenix.yaml": "x\n", ".github/workflows/ci.yml": "run: pytest\n",
        ".gitlab-ci.yml": "x\n", ".vscode/settings.json": "{}\n", "pytest.ini": "x\n", "pyproject.toml": "x\n",
        "Makefile": "x\n", "requirements.txt": "x\n", ".env": "x\n", "tests/test_train.py": "assert True\n",
        **{f"pkg/m{i}.py": f"M = {i}\n" for i in range(1, 7)},
    }
    ws = tmp / "ws"
    ws.mkdir()
    (ws / "link").symlink_to(outside, target_is_directory=True)
    (ws / "alias.py").symlink_to("train.py")
    os.link(outside / "hard_target.py", ws / "hard.py")
    make_repo(ws, files)
    (ws / ".phoenix_cli").mkdir(exist_ok=True)
    (ws / ".phoenix_cli" / "state.json").write_text("x\n")
    return ws, outside


@pytest.fixture(scope="module")
def bait(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _bait(tmp_path_factory.mktemp("corpus"))


def _answer(case: dict[str, Any], ws: Path, outside: Path) -> str:
    if "answer_text" in case:
        return case["answer_text"]
    if "answer_repeat" in case:
        unit = case["answer_repeat"]["text"]
        return unit * (case["answer_repeat"]["bytes"] // len(unit) + 1)
    text = json.dumps(case["answer"])
    return text.replace("{workspace}", str(ws)).replace("{outside}", str(outside))


def test_the_corpus_covers_the_reference_attacks() -> None:
    names = {p.stem for p in CORPUS}
    for required in ("traversal", "absolute", "symlink_write_through", "symlink_creation", "mode_change", "git_hooks",
                     "github_workflow", "conftest", "sitecustomize", "pth_file", "dockerfile", "compose",
                     "outside_allowlist", "binary_nul", "bidi", "oversized_lines", "empty", "deletion", "giant",
                     "invalid_json", "wrong_type_path", "prompt_injection_text", "prompt_injection_patch",
                     "hard_link", "prefix_bypass", "git_config_case", "new_file"):
        assert required in names, required
    for path in CORPUS:
        assert json.loads(path.read_text())["expect"] in set(RejectReason), path.name


@pytest.mark.parametrize("case_file", CORPUS, ids=[p.stem for p in CORPUS])
def test_unsafe_answer_is_rejected_and_nothing_is_written(case_file: Path, bait: tuple[Path, Path],
                                                         harness) -> None:  # type: ignore[no-untyped-def]
    ws, outside = bait
    case = json.loads(case_file.read_text())
    h = harness(ws, allowlist=case.get("allowlist", ["*.py"]), **{k: v for k, v in case.get("settings", {}).items()})
    answer = _answer(case, ws, outside)
    before = (fingerprint(ws), fingerprint(outside))

    report = h.engine.apply_answer(answer)

    assert report.outcome == "rejected", report
    assert report.reason_code == case["expect"], report.reason
    assert not (report.accepted or report.verified or report.promoted)
    assert (fingerprint(ws), fingerprint(outside)) == before
    assert [e.reason for e in h.of(PatchRejected)] == [case["expect"]]
    assert not h.of(VerificationFinished) and not h.of(RepairPromoted)
    assert not any((ws / ".phoenix_cli" / "worktrees").glob("*"))
    record = ws / ".phoenix_cli" / "repairs" / report.repair_id
    outcome = json.loads((record / "outcome.json").read_text())
    assert outcome["outcome"] == "rejected" and outcome["reason_code"] == case["expect"]
    assert (record / "answer.txt").is_file()  # kept for the human
    assert all(p.status in ("rejected", "not_applied") for p in report.patches)
