"""``omni-rag verify``: what only the real weights can show, checked on the user's machine.

Everything omni-rag proves in its own tests runs on tiny random-weight checkpoints. This runs
the same proofs (and what needs real weights) against the checkpoint a user downloaded, in five
steps, each pass / fail / skipped with a reason:

1. environment (:mod:`.environment`), 2. loading (:mod:`.loading`), 3. fidelity against the
model card's recipe (:mod:`.fidelity`), 4. retrieval on the demo corpus (:mod:`.retrieval`),
5. speed (:mod:`.speed`).
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from omni_rag.checkpoints import DEFAULT_MODEL
from omni_rag.verify.report import STEPS, Check, StepResult, VerifyReport, skipped_step

__all__ = ["EXAMPLES_DIR", "STEPS", "Check", "StepResult", "VerifyReport", "verify"]

#: The repository's ``examples/`` folder (``media/`` corpus and ``queries/``), next to the package.
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"


def verify(
    model: str | os.PathLike[str] = DEFAULT_MODEL,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    examples: str | os.PathLike[str] | None = None,
    embedder_kwargs: Mapping[str, Any] | None = None,
    steps: Sequence[str] = STEPS,
) -> VerifyReport:
    """Run the five steps against a checkpoint; ``report.ok`` says whether all passed.

    Args:
        model: Hub id (a cached copy is used offline) or local folder.
        device: Default CUDA when available, else CPU (as ``OmniEmbedder``).
        dtype: Default bf16 on CUDA, fp32 on CPU; sets the fidelity tolerance.
        examples: Folder with ``media/`` and ``queries/`` (default: the repository's ``examples``).
        embedder_kwargs: Passed to ``OmniEmbedder.from_pretrained`` (``trust_remote_code``,
            ``prompts``, ``videos_kwargs``, ``video_options``, ``bidirectional``...): checks a
            configuration other than the default one, and is how the tests inject faults.
        steps: Which of steps 3-5 to run (environment and loading always run); the others are
            reported as skipped.
    """
    from omni_rag.embedder.loading import resolve_device
    from omni_rag.verify.environment import environment_step
    from omni_rag.verify.loading import loading_step

    name = os.fspath(model)
    report = VerifyReport(model=name)
    report.steps.append(environment_step(resolve_device(device)))
    loading, embedder = loading_step(
        name, device=device, dtype=dtype, embedder_kwargs=dict(embedder_kwargs or {})
    )
    report.steps.append(loading)
    if embedder is None:
        report.steps += [skipped_step(s, "the model did not load") for s in STEPS[2:]]
        return report
    folder = Path(examples) if examples is not None else EXAMPLES_DIR
    ran = model_steps(embedder, folder, loading.checks[0].data.get("model_type"), steps)
    absent = "not requested" if (folder / "media").is_dir() else "no example media"
    report.steps += [ran.get(s) or skipped_step(s, absent) for s in STEPS[2:]]
    return report


def model_steps(
    embedder: Any, examples: Path, model_type: str | None, steps: Sequence[str]
) -> dict[str, StepResult]:
    """The requested steps of 3-5, which need the loaded model and the example media."""
    from omni_rag.verify.fidelity import fidelity_step
    from omni_rag.verify.retrieval import retrieval_step
    from omni_rag.verify.speed import speed_step

    media, queries = examples / "media", examples / "queries"
    if not (media / "notes.md").is_file() or not (queries / "queries.json").is_file():
        missing = StepResult("fidelity")
        missing.add(
            "example media",
            "fail",
            f"{examples} has no media/ and queries/: pass the examples folder of an omni-rag clone",
        )
        return {"fidelity": missing}
    runners: dict[str, Callable[[], StepResult]] = {
        "fidelity": lambda: fidelity_step(embedder, media, model_type),
        "retrieval": lambda: retrieval_step(embedder, media, queries),
        "speed": lambda: speed_step(embedder, media),
    }
    return {name: run_step(name, run) for name, run in runners.items() if name in steps}


def run_step(name: str, run: Callable[[], StepResult]) -> StepResult:
    """Run a step; one that raises fails with the error, and the steps after it still run."""
    try:
        return run()
    except Exception as error:  # a crash is a finding to report, not a reason to lose the report
        crashed = StepResult(name)
        crashed.add(name, "fail", f"crashed: {type(error).__name__}: {error}")
        return crashed


class _CallableModule(types.ModuleType):
    """Makes ``omni_rag.verify(...)`` work once this subpackage is imported.

    Importing ``omni_rag.verify`` binds the package attribute ``verify`` to this module, which
    would shadow the function of the same name that ``omni_rag`` exports; calling the module
    calls the function.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> VerifyReport:
        return verify(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
