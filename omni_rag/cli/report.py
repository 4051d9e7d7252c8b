"""What an ``index`` run did, file by file: built by :mod:`.index`, printed by :mod:`.render`."""

from __future__ import annotations

from dataclasses import dataclass, field

from omni_rag.cli.errors import ExitCode
from omni_rag.cli.files import FileProblem


@dataclass
class IndexReport:
    """What an index run did, file by file.

    Attributes:
        added: Files embedded and written.
        unchanged: Files already in the collection (same content), not embedded again.
        duplicates: (file, earlier file of this run with the same content): stored once.
        skipped: Files that are not media or text.
        notes: Files indexed with a remark (text decoded in a guessed encoding).
        failures: Missing paths and files that could not be read or embedded, with reasons.
        seconds: Wall time of the embedding phase.
    """

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[FileProblem] = field(default_factory=list)
    notes: list[FileProblem] = field(default_factory=list)
    failures: list[FileProblem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> ExitCode:
        """``PARTIAL`` (1) as soon as one file failed, else ``OK``."""
        return ExitCode.PARTIAL if self.failures else ExitCode.OK
