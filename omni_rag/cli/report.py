"""What an ``index`` run did, file by file: built by :mod:`.index`, printed by :mod:`.render`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from omni_rag.cli.errors import ExitCode
from omni_rag.cli.files import FileItem, FileProblem, FileScan

if TYPE_CHECKING:
    from omni_rag.indexing import AddResult


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

    @classmethod
    def from_scan(cls, scan: FileScan) -> IndexReport:
        """A report that starts with what the scan already decided (skipped, failed, notes)."""
        return cls(skipped=list(scan.skipped), failures=list(scan.failures), notes=list(scan.notes))

    def record(self, files: Sequence[FileItem], result: AddResult) -> None:
        """File by file, what an add of ``files`` (in that order) did; the one place both the
        in-process and the Ray path turn item indices into paths and reasons."""
        for f in result.failures:
            self.failures.append(FileProblem(str(files[f.index].path), f"{f.field}: {f.reason}"))
        for index, reason in sorted(result.crashed.items()):
            self.failures.append(FileProblem(str(files[index].path), reason))
        self.added.extend(str(files[i].path) for i in result.added_items)
        self.unchanged.extend(str(files[i].path) for i in result.unchanged_items)
        self.duplicates.extend((str(files[i].path), str(files[j].path)) for i, j in result.duplicates.items())

    def record_crash(self, files: Sequence[FileItem], reason: str) -> None:
        """Fail every file of a batch whose add raised unexpectedly (the run goes on)."""
        self.failures.extend(FileProblem(str(item.path), reason) for item in files)
