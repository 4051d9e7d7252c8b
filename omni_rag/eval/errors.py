"""Errors raised by :mod:`omni_rag.eval`.

They subclass :class:`~omni_rag.errors.OmniError` so a caller can catch everything omni-rag raises
on purpose in one place, and :class:`ValueError` because they all mean "this input is unusable".
Data errors carry every bad line at once: a benchmark broken in thirty places should take one
fix-and-rerun, not thirty.
"""

from __future__ import annotations

from dataclasses import dataclass

from omni_rag.errors import OmniError

_MAX_LISTED = 20


class EvalError(OmniError, ValueError):
    """An evaluation input (run, qrels, cutoffs, results file) is unusable."""


@dataclass(frozen=True)
class DataProblem:
    """One bad line: where it is (line 0 = the file as a whole) and why."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


class EvalDataError(EvalError):
    """A corpus, queries or qrels file is unusable; ``problems`` lists every bad line found."""

    def __init__(self, problems: list[DataProblem]) -> None:
        self.problems = tuple(problems)
        shown = "\n  ".join(str(p) for p in problems[:_MAX_LISTED])
        more = f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
        super().__init__(f"{len(problems)} problem(s) in evaluation data:\n  {shown}{more}")


class EvalDataWarning(UserWarning):
    """A data problem that ``unknown_ids="warn"`` lets through."""
