"""What ``omni-rag verify`` found: steps made of checks, each pass / fail / skipped with a reason.

One structure serves the terminal table and ``--json``, so a bug report carries exactly what
the user saw.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

#: ``note``: worth knowing, not wrong (an unused head in the checkpoint); it passes the step.
Status = Literal["pass", "fail", "skipped", "note"]

#: Step names, in the order they run.
STEPS: tuple[str, ...] = ("environment", "loading", "fidelity", "retrieval", "speed")


@dataclass
class Check:
    """One finding inside a step; ``detail`` says why it passed, failed, was skipped or is a note."""

    name: str
    status: Status
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class StepResult:
    """One step; it fails when any check fails, and is skipped when nothing in it ran."""

    name: str
    checks: list[Check] = field(default_factory=list)
    reason: str = ""

    @property
    def status(self) -> Status:
        statuses = {c.status for c in self.checks}
        if "fail" in statuses:
            return "fail"
        if not statuses or statuses <= {"skipped", "note"}:
            return "skipped"
        return "pass"

    def add(self, name: str, status: Status, detail: str = "", **data: Any) -> Check:
        check = Check(name, status, detail, dict(data))
        self.checks.append(check)
        return check

    @property
    def summary(self) -> str:
        """The step's reason, else the details of its failed (or skipped) checks."""
        if self.reason:
            return self.reason
        wanted = "fail" if self.status == "fail" else "skipped" if self.status == "skipped" else None
        return "; ".join(f"{c.name}: {c.detail}" for c in self.checks if c.status == wanted)


def skipped_step(name: str, reason: str) -> StepResult:
    """A step that could not run (e.g. the model did not load), with why."""
    step = StepResult(name, reason=reason)
    step.add(name, "skipped", reason)
    return step


@dataclass
class VerifyReport:
    """Every step's result; ``ok`` when none failed (skipped steps are allowed)."""

    model: str
    steps: list[StepResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.status != "fail" for step in self.steps)

    def step(self, name: str) -> StepResult:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the model, the verdict, and every step with its checks and figures."""
        return {
            "model": self.model,
            "ok": self.ok,
            "steps": [
                {
                    "name": s.name,
                    "status": s.status,
                    "summary": s.summary,
                    "checks": [asdict(c) for c in s.checks],
                }
                for s in self.steps
            ],
        }

    def render(self) -> str:
        """The terminal view: one line per step, then one indented line per check."""
        lines = [f"omni-rag verify: {self.model}"]
        for step in self.steps:
            lines.append(
                f"{step.status.upper():<8} {step.name}" + (f": {step.reason}" if step.reason else "")
            )
            for check in step.checks:
                if check.name != step.name:
                    lines.append(f"  {check.status:<8} {check.name}: {check.detail}")
        lines.append("verification " + ("passed" if self.ok else "FAILED"))
        return "\n".join(lines)
