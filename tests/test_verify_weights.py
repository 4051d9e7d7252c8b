"""``omni-rag verify`` on a thinker checkpoint that ships its language-model head (issue 26)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from omni_rag.verify import verify


def _with_extra_keys(source: Path, target: Path, extra: dict[str, torch.Tensor]) -> Path:
    """A copy of the tiny plain thinker checkpoint whose weights file also holds ``extra``."""
    shutil.copytree(source, target)
    weights = load_file(str(target / "model.safetensors"))
    save_file({**weights, **extra}, str(target / "model.safetensors"), metadata={"format": "pt"})
    return target


def _head(checkpoint: Path) -> torch.Tensor:
    text = json.loads((checkpoint / "config.json").read_text())["text_config"]
    return torch.randn(text["vocab_size"], text["hidden_size"])


def test_an_unused_lm_head_is_a_note_not_a_failure(native_checkpoint: Path, tmp_path: Path) -> None:
    folder = _with_extra_keys(
        native_checkpoint, tmp_path / "thinker", {"lm_head.weight": _head(native_checkpoint)}
    )
    report = verify(folder, device="cpu", steps=())
    checks = {c.name: c for c in report.step("loading").checks}
    assert report.ok and report.step("loading").status == "pass"
    assert checks["weights"].status == "pass"
    assert checks["unused head"].status == "note"
    assert checks["unused head"].data["unused"] == ["lm_head.weight"]


def test_keys_of_another_architecture_still_fail(native_checkpoint: Path, tmp_path: Path) -> None:
    extra = {"lm_head.weight": _head(native_checkpoint), "score.weight": torch.zeros(4, 4)}
    folder = _with_extra_keys(native_checkpoint, tmp_path / "mixed", extra)
    report = verify(folder, device="cpu", steps=())
    checks = {c.name: c for c in report.step("loading").checks}
    assert not report.ok
    assert checks["weights"].status == "fail"
    assert checks["weights"].data["unexpected"] == ["score.weight"]
    assert "score.weight" in checks["weights"].detail


@pytest.mark.parametrize("statuses", [("note",), ("note", "skipped")])
def test_a_step_of_notes_alone_is_not_a_pass(statuses: tuple[str, ...]) -> None:
    from omni_rag.verify.report import StepResult

    step = StepResult("loading")
    for status in statuses:
        step.add("x", status)  # type: ignore[arg-type]
    assert step.status == "skipped"
