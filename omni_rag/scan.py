"""From paths on the command line to one :class:`Content` per file, by what each file holds.

Folders are walked in sorted order so two runs index (and report) files identically. The
modality comes from :func:`omni_rag.media.probe` (content, not extension). A file probe calls
``unknown`` is *skipped* when its name does not claim to be media (a ``.json`` or a binary in
the folder is not the user's mistake) and *failed* when it does (a ``.mp4`` nothing can decode
is a broken file the user wants to hear about).
"""

from __future__ import annotations

import fnmatch
import mimetypes
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omni_rag import Content
from omni_rag.errors import MediaError

#: Files larger than this are not read as text (a log of gigabytes is not a document).
MAX_TEXT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class FileItem:
    """A file ready to embed.

    Attributes:
        path: Absolute path (what the store records as the source).
        content: What gets embedded, with ``metadata={"path", "name"}``.
        kind: The probed kind, with ``+audio`` for a video that has a soundtrack.
    """

    path: Path
    content: Content
    kind: str


@dataclass(frozen=True)
class FileProblem:
    """A path that will not be embedded, and why.

    Attributes:
        path: The file or missing path.
        reason: Human-readable cause.
        skipped: ``True`` for files that are simply not media (no error), ``False`` for failures.
    """

    path: str
    reason: str
    skipped: bool = False


@dataclass
class FileScan:
    """The outcome of :func:`scan_paths`.

    Attributes:
        items: Files to embed, in walk order.
        skipped: Files that are not media or text (not an error).
        failures: Missing paths and unreadable files and folders (an error: exit code 1).
        notes: Files indexed with a remark the user should see (text in a guessed encoding).
    """

    items: list[FileItem] = field(default_factory=list)
    skipped: list[FileProblem] = field(default_factory=list)
    failures: list[FileProblem] = field(default_factory=list)
    notes: list[FileProblem] = field(default_factory=list)


@dataclass
class _Walk:
    """State of one walk: files kept, folders already entered (by real path), problems."""

    exclude: Sequence[str]
    files: list[Path] = field(default_factory=list)
    seen: set[Path] = field(default_factory=set)
    folders: set[Path] = field(default_factory=set)
    problems: list[FileProblem] = field(default_factory=list)

    def keep(self, path: Path) -> None:
        resolved = path.resolve()
        if resolved not in self.seen and not any(fnmatch.fnmatch(path.name, p) for p in self.exclude):
            self.seen.add(resolved)
            self.files.append(resolved)

    def folder(self, root: Path) -> None:
        """Walk a folder; symlinked folders are followed, each real folder entered once (no loops)."""

        def unreadable(error: OSError) -> None:
            self.problems.append(
                FileProblem(str(error.filename or root), f"cannot read folder: {error.strerror}")
            )

        for folder, dirs, names in os.walk(root, onerror=unreadable, followlinks=True):
            real = Path(folder).resolve()
            if real in self.folders:  # reached again through a symlink: already walked
                dirs[:] = []
                continue
            self.folders.add(real)
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if not name.startswith("."):
                    self.keep(Path(folder) / name)


def walk(
    paths: Sequence[str | os.PathLike[str]], exclude: Sequence[str] = ()
) -> tuple[list[Path], list[FileProblem]]:
    """Files under ``paths``, sorted within each folder; hidden files and folders are left out.

    Symlinked folders are followed, each real folder once, so a link loop ends and a folder
    reached twice is indexed once.

    Args:
        paths: Files and folders, in the order given.
        exclude: Glob patterns matched against each file's name (``README.md``, ``*.py``).

    Returns:
        The files (each once), and every given path that does not exist or folder that could not
        be read, with the reason (never silently dropped).
    """
    state = _Walk(exclude)
    for given in paths:
        root = Path(given)
        if root.is_file():
            state.keep(root)
        elif root.is_dir():
            state.folder(root)
        else:
            state.problems.append(FileProblem(os.fspath(given), "no such file or directory"))
    return state.files, state.problems


def _claims_media(path: Path) -> bool:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed is not None and guessed.split("/")[0] in ("image", "audio", "video")


def _claims_text(path: Path) -> bool:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed is not None and guessed.startswith("text/")


def to_item(path: Path) -> FileItem | FileProblem:
    """Probe one file and build its :class:`Content`.

    Returns:
        A :class:`FileItem`, or a :class:`FileProblem` (``skipped`` for files that are not media).
    """
    from omni_rag.media import probe  # imports torch: only once there are files to look at
    from omni_rag.media.text import decode_text

    metadata = {"path": str(path), "name": path.name}
    try:
        info = probe(path)
    except (MediaError, OSError) as error:
        return FileProblem(str(path), f"cannot read: {error}")
    if info.kind == "video":
        if info.has_audio:
            return FileItem(path, Content(video=str(path), audio=str(path), metadata=metadata), "video+audio")
        return FileItem(path, Content(video=str(path), metadata=metadata), "video")
    if info.kind == "audio":
        return FileItem(path, Content(audio=str(path), metadata=metadata), "audio")
    if info.kind == "image":
        return FileItem(path, Content(image=str(path), metadata=metadata), "image")
    if info.kind == "text":
        if path.stat().st_size > MAX_TEXT_BYTES:
            return FileProblem(str(path), f"text file over {MAX_TEXT_BYTES // 2**20} MiB", skipped=True)
        try:
            decoded = decode_text(path.read_bytes())
        except (OSError, MediaError) as error:
            return FileProblem(str(path), f"cannot read as text: {error}")
        if not decoded.text.strip():
            return FileProblem(str(path), "blank text file", skipped=True)
        if decoded.guessed:
            metadata["encoding"] = decoded.encoding
        return FileItem(path, Content(text=decoded.text, metadata=metadata), "text")
    if _claims_media(path):
        return FileProblem(str(path), "not a decodable image, audio or video file (corrupt or unsupported)")
    if _claims_text(path):
        try:
            decode_text(path.read_bytes()[:65536], partial=True)
        except (OSError, MediaError) as error:
            return FileProblem(str(path), f"cannot read as text: {error}")
    return FileProblem(str(path), "not an image, audio, video or text file", skipped=True)


def scan_paths(paths: Iterable[str | os.PathLike[str]], exclude: Sequence[str] = ()) -> FileScan:
    """Walk ``paths`` and sort every file into to-embed, skipped or failed."""
    files, problems = walk(list(paths), exclude)
    scan = FileScan(failures=list(problems))
    for path in files:
        outcome = to_item(path)
        if isinstance(outcome, FileItem):
            scan.items.append(outcome)
            if "encoding" in outcome.content.metadata:
                note = f"decoded as {outcome.content.metadata['encoding']} (not UTF-8, no byte-order mark)"
                scan.notes.append(FileProblem(str(path), note, skipped=True))
        else:
            (scan.skipped if outcome.skipped else scan.failures).append(outcome)
    return scan
