"""Exit codes and the one exception the CLI turns into a message and a code.

Each failure a script may want to react to differently gets its own code, so a cron job can
tell "some files were bad" (retry later, or not) from "wrong model" (a config bug) without
parsing text.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit status of ``omni-rag``; what each means is listed in :data:`EXIT_CODE_HELP`."""

    OK = 0
    PARTIAL = 1
    USAGE = 2  # also argparse's own code for bad arguments
    NO_COLLECTION = 3
    MODEL_MISMATCH = 4
    STORE_BUSY = 5
    MODEL_LOAD = 6
    STORE_ERROR = 7
    VERIFY_FAILED = 8
    STORE_INVALID = 9


_MEANINGS = {
    ExitCode.OK: "success",
    ExitCode.PARTIAL: "index: some files failed, or a given folder is missing or empty (listed at the end; "
    "nothing under it removed); the rest were indexed",
    ExitCode.USAGE: "bad arguments, or a query file that is missing or unreadable",
    ExitCode.NO_COLLECTION: "unknown collection, or no store at that path",
    ExitCode.MODEL_MISMATCH: "the collection was indexed with another model (or vector size)",
    ExitCode.STORE_BUSY: "another process is writing the store: searches work meanwhile, a second "
    "writer is refused",
    ExitCode.MODEL_LOAD: "the model could not be loaded (hub unreachable and no local copy, bad path)",
    ExitCode.STORE_ERROR: "the Qdrant server is unreachable or failing",
    ExitCode.VERIFY_FAILED: "verify: a check failed (listed in the report)",
    ExitCode.STORE_INVALID: "the store or collection cannot be used as given (invalid collection name, an "
    "omni-rag 0.1 store to migrate, a write that failed): nothing more is embedded",
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
