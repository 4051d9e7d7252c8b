"""The folder scan behind ``omni-rag index``, from :mod:`omni_rag.scan` (the folder API uses it too)."""

from omni_rag.scan import (
    MAX_TEXT_BYTES,
    FileItem,
    FileProblem,
    FileScan,
    ScanOptions,
    ScanRoot,
    scan_paths,
    to_item,
    walk,
)

__all__ = [
    "MAX_TEXT_BYTES",
    "FileItem",
    "FileProblem",
    "FileScan",
    "ScanOptions",
    "ScanRoot",
    "scan_paths",
    "to_item",
    "walk",
]
