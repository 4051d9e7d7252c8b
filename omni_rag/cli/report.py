"""What an ``index`` run did, file by file: built by :mod:`.index`, printed by :mod:`.render`."""

from __future__ import annotations

from dataclasses import dataclass

from omni_rag.cli.errors import ExitCode
from omni_rag.folders import FolderReport


@dataclass
class IndexReport(FolderReport):
    """:class:`omni_rag.folders.FolderReport` with the command's exit code."""

    @property
    def exit_code(self) -> ExitCode:
        """``PARTIAL`` (1) as soon as one file failed, else ``OK``."""
        return ExitCode.PARTIAL if self.failures else ExitCode.OK
