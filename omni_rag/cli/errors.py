"""Exit codes and the one exception the CLI turns into a message and a code.

Each failure a script may want to react to differently gets its own code, so a cron job can
tell "some files were bad" (retry later, or not) from "wrong model" (a config bug) without
parsing text.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit status of ``omni-rag``; documented in ``omni-rag --help``."""

    OK = 0
    """Everything asked for was done."""
    PARTIAL = 1
    """``index``: some files failed (listed at the end); the others were indexed."""
    USAGE = 2
    """Bad arguments (argparse's own code), or an unreadable query file."""
    NO_COLLECTION = 3
    """The collection (or the store folder) does not exist."""
    MODEL_MISMATCH = 4
    """The collection was indexed with another model or vector size."""
    STORE_BUSY = 5
    """The embedded store folder is held by another process."""
    MODEL_LOAD = 6
    """The model could not be loaded (hub unreachable, bad path, remote code refused)."""
    STORE_ERROR = 7
    """The Qdrant server could not be reached or answered with an error."""


_MEANINGS = {
    ExitCode.OK: "success",
    ExitCode.PARTIAL: "index: some files failed (listed); the rest were indexed",
    ExitCode.USAGE: "bad arguments or unreadable query file",
    ExitCode.NO_COLLECTION: "unknown collection or store",
    ExitCode.MODEL_MISMATCH: "collection indexed with another model",
    ExitCode.STORE_BUSY: "store folder in use by another process",
    ExitCode.MODEL_LOAD: "model could not be loaded (hub unreachable, bad path)",
    ExitCode.STORE_ERROR: "Qdrant server unreachable or failing",
}

#: The exit-code table shown at the end of ``omni-rag --help``.
EXIT_CODE_HELP = "exit codes:\n" + "\n".join(f"  {code.value}  {_MEANINGS[code]}" for code in ExitCode)


class CliError(Exception):
    """A failure the user can act on: printed as ``omni-rag: error: <message>``, no traceback.

    Attributes:
        message: What went wrong and what to do about it.
        code: The process exit status.
    """

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
