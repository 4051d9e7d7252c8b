"""From paths on the command line to one :class:`FileItem` per file, by what each file holds.

Folders are walked in sorted order so two runs index (and report) files identically. The
modality comes from :func:`omni_rag.media.probe` (content, not extension). A file probe calls
``unknown`` is *skipped* when its name does not claim to be media (a ``.json`` or a binary in
the folder is not the user's mistake) and *failed* when it does (a ``.mp4`` nothing can decode
is a broken file the user wants to hear about).

A folder may be hostile (an unpacked archive, an upload folder): only regular files are opened,
a link whose target lies outside the given roots is skipped unless asked for, reads are bounded,
and a name or link that cannot be handled fails alone.
"""

from __future__ import annotations

import errno
import fnmatch
import mimetypes
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omni_rag.content import Content
from omni_rag.errors import MediaError

#: Default cap on a text file's size (a log of gigabytes is not a document); ``--max-text-mb``.
MAX_TEXT_BYTES = 4 * 1024 * 1024
#: Bytes of a file read to tell whether it is text.
_SNIFF_BYTES = 64 * 1024
LINK_LEAVES = "link leaves the indexed folder (--follow-external-links to index it)"


def shown(path: str | os.PathLike[str]) -> str:
    """A path as text, with bytes that are not UTF-8 escaped (``\\xff``): printable and storable."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class FileItem:
    """A file ready to embed.

    Attributes:
        path: Absolute real path (what the store records as the source).
        kind: The probed kind, with ``+audio`` for a video that has a soundtrack.
        media: The media content; ``None`` for text, which is read by :meth:`read` when embedded.
        encoding: For text in a guessed encoding (no BOM, not UTF-8), the encoding (reported).
    """

    path: Path
    kind: str
    media: Content | None = None
    encoding: str | None = None

    def read(self, max_text_bytes: int | None = None) -> Content:
        """What gets embedded, with ``metadata={"path", "name"}``; text is read now, not at scan time.

        Raises:
            OSError: The file cannot be read any more.
            MediaError: The text no longer decodes, is blank or grew past ``max_text_bytes``.
        """
        if self.media is not None:
            return self.media
        from omni_rag.media.text import decode_text

        cap = MAX_TEXT_BYTES if max_text_bytes is None else max_text_bytes
        data = _read_regular(self.path, cap + 1)
        if len(data) > cap:
            raise MediaError(f"text file over {cap / 2**20:g} MiB (--max-text-mb)")
        decoded = decode_text(data)
        if not decoded.text.strip():
            raise MediaError("blank text file")
        metadata = {"path": str(self.path), "name": self.path.name}
        if decoded.guessed:
            metadata["encoding"] = decoded.encoding
        return Content(text=decoded.text, metadata=metadata)

    @property
    def content(self) -> Content:
        """:meth:`read` with the default cap."""
        return self.read()


@dataclass(frozen=True)
class FileProblem:
    """A path that will not be embedded, and why.

    Attributes:
        path: The file or missing path (bytes that are not UTF-8 escaped).
        reason: Human-readable cause.
        skipped: ``True`` for files that are simply not media (no error), ``False`` for failures.
    """

    path: str
    reason: str
    skipped: bool = False


@dataclass(frozen=True)
class ScanRoot:
    """A given path that exists: the scope of a sync (points of files gone from under it are removed).

    Attributes:
        path: Its real path.
        folder: ``True`` for a folder, ``False`` for a single file.
        empty: A folder with no entries at all (an unmounted mount point looks like this).
    """

    path: Path
    folder: bool
    empty: bool = False


@dataclass(frozen=True)
class ScanOptions:
    """How a scan treats a folder.

    Attributes:
        exclude: Gitignore-like patterns: without ``/`` a glob matched against every file and
            folder name; with ``/`` a glob matched against the path relative to the given
            folder, or as given (``docs/drafts``, ``docs/*.tmp``). A matched folder is not entered.
        follow_external_links: Index files whose real path lies outside every given path.
        max_text_bytes: Text files larger than this are skipped (reported).
    """

    exclude: Sequence[str] = ()
    follow_external_links: bool = False
    max_text_bytes: int = MAX_TEXT_BYTES


@dataclass
class FileScan:
    """The outcome of :func:`scan_paths`.

    Attributes:
        items: Files to embed, in walk order.
        skipped: Files that are not media or text, or not regular files, or links out (not an error).
        failures: Missing paths and unreadable files and folders (an error: exit code 1).
        notes: Files indexed with a remark the user should see (text in a guessed encoding).
        roots: The given paths that exist (the scope of a sync).
        unreadable: Real paths of folders that could not be listed (a sync keeps what was under them).
        warnings: Remarks about the options (an ``--exclude`` pattern that matched nothing).
        max_text_bytes: The text size cap the scan used (reading at embed time uses it too).
    """

    items: list[FileItem] = field(default_factory=list)
    skipped: list[FileProblem] = field(default_factory=list)
    failures: list[FileProblem] = field(default_factory=list)
    notes: list[FileProblem] = field(default_factory=list)
    roots: list[ScanRoot] = field(default_factory=list)
    unreadable: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    max_text_bytes: int = MAX_TEXT_BYTES


class _Excluder:
    """Gitignore-like ``--exclude`` matching, remembering which patterns matched something."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = list(patterns)
        self.matched: set[str] = set()

    def __call__(self, name: str, relative: str, as_given: str) -> bool:
        for pattern in self.patterns:
            bare = pattern.rstrip("/")
            if "/" in bare:  # a leading / anchors to the folder, as in .gitignore
                anchored = bare.lstrip("/")
                hit = any(fnmatch.fnmatch(path, p) for path in (relative, as_given) for p in (anchored, bare))
            else:
                hit = fnmatch.fnmatch(name, bare)
            if hit:
                self.matched.add(pattern)
                return True
        return False

    def unmatched(self) -> list[str]:
        return [p for p in self.patterns if p not in self.matched]


def _inside(real: Path, roots: Sequence[Path]) -> bool:
    return any(real == root or real.is_relative_to(root) for root in roots)


def _kind_of_special(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device")):
        if test(mode):
            return name
    return "a device" if stat.S_ISBLK(mode) else "not a file"


@dataclass
class _Walk:
    """State of one walk: files kept, folders already entered (by real path), problems."""

    options: ScanOptions
    excluder: _Excluder
    scope: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    seen: set[Path] = field(default_factory=set)
    folders: set[Path] = field(default_factory=set)
    problems: list[FileProblem] = field(default_factory=list)
    unreadable: list[Path] = field(default_factory=list)

    def fail(self, path: str | os.PathLike[str], reason: str, *, skipped: bool = False) -> None:
        self.problems.append(FileProblem(shown(path), reason, skipped))

    def keep(self, path: Path, *, given: bool = False) -> None:
        """Keep a regular file once, by real path; anything else is reported, never opened."""
        try:
            os.fsencode(path).decode("utf-8")
        except UnicodeDecodeError:
            self.fail(path, "file name is not valid UTF-8 (paths are stored as text): rename it")
            return
        try:
            real = path.resolve(strict=True)
            mode = real.stat().st_mode
        except RuntimeError:  # Python 3.11 reports a symlink loop this way
            self.fail(path, "symlink loop")
            return
        except OSError as error:
            reason = "symlink loop" if error.errno == errno.ELOOP else f"cannot read: {error.strerror}"
            if isinstance(error, FileNotFoundError):
                reason = "broken link (its target does not exist)" if path.is_symlink() else "no such file"
            self.fail(path, reason)
            return
        if not given and not self.options.follow_external_links and not _inside(real, self.scope):
            self.fail(path, LINK_LEAVES, skipped=True)
        elif not stat.S_ISREG(mode):
            self.fail(path, f"not a regular file ({_kind_of_special(mode)})", skipped=not given)
        elif real not in self.seen:
            self.seen.add(real)
            self.files.append(real)

    def folder(self, root: Path) -> None:
        """Walk a folder; symlinked folders are followed, each real folder entered once (no loops)."""

        def unreadable(error: OSError) -> None:
            self.fail(error.filename or root, f"cannot read folder: {error.strerror}")
            self.unreadable.append(Path(os.path.realpath(error.filename or root)))

        for folder, dirs, names in os.walk(root, onerror=unreadable, followlinks=True):
            here = Path(folder)
            real = here.resolve()
            if real in self.folders:  # reached again through a symlink: already walked
                dirs[:] = []
                continue
            if not self.options.follow_external_links and not _inside(real, self.scope):
                self.fail(here, LINK_LEAVES, skipped=True)
                dirs[:] = []
                continue
            self.folders.add(real)
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not self._excluded(root, here / d))
            for name in sorted(names):
                if not name.startswith(".") and not self._excluded(root, here / name):
                    self.keep(here / name)

    def _excluded(self, root: Path, path: Path) -> bool:
        relative = path.relative_to(root).as_posix()
        return self.excluder(path.name, relative, path.as_posix())


def _roots(paths: Sequence[str | os.PathLike[str]]) -> list[ScanRoot]:
    roots = []
    for given in paths:
        path = Path(given)
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            continue
        if real.is_dir():
            try:
                with os.scandir(real) as entries:
                    empty = next(entries, None) is None
            except OSError:  # unreadable: the walk reports it; not "empty", so nothing is removed
                empty = False
            roots.append(ScanRoot(real, True, empty=empty))
        else:
            roots.append(ScanRoot(real, False))
    return roots


def walk(
    paths: Sequence[str | os.PathLike[str]],
    exclude: Sequence[str] = (),
    *,
    options: ScanOptions | None = None,
) -> tuple[list[Path], list[FileProblem]]:
    """Regular files under ``paths``, sorted within each folder; hidden files and folders are left out.

    Symlinked folders are followed, each real folder once, so a link loop ends and a folder
    reached twice is indexed once. Links whose real path lies outside every given path are
    reported (skipped), not followed, unless ``options.follow_external_links``.

    Args:
        paths: Files and folders, in the order given.
        exclude: ``--exclude`` patterns (see :class:`ScanOptions`); ``options.exclude`` when given.
        options: How to treat the folder.

    Returns:
        The files (each once, by real path), and every path not kept with the reason (``skipped``
        for those that are not an error); never silently dropped. Unmatched patterns are in the
        reasons of :func:`scan_paths`'s warnings.
    """
    state, _ = _walk(paths, options or ScanOptions(exclude=exclude))
    return state.files, state.problems


def _walk(paths: Sequence[str | os.PathLike[str]], options: ScanOptions) -> tuple[_Walk, list[ScanRoot]]:
    roots = _roots(paths)
    state = _Walk(options, _Excluder(options.exclude), scope=[r.path for r in roots])
    for given in paths:
        root = Path(given)
        if root.is_dir():
            state.folder(root)
        elif os.path.lexists(root) and not state.excluder(root.name, root.name, root.as_posix()):
            state.keep(root, given=True)
        elif not os.path.lexists(root):
            state.fail(given, "no such file or directory")
    return state, roots


def _claims_media(path: Path) -> bool:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed is not None and guessed.split("/")[0] in ("image", "audio", "video")


def _claims_text(path: Path) -> bool:
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed is not None and guessed.startswith("text/")


def _read_regular(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of a regular file; anything else is refused before it is opened."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in after the scan cannot hang us
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise MediaError("not a regular file")
        return handle.read(limit)


def to_item(path: Path, max_text_bytes: int = MAX_TEXT_BYTES) -> FileItem | FileProblem:
    """Probe one file and decide how it is embedded.

    Returns:
        A :class:`FileItem`, or a :class:`FileProblem` (``skipped`` for files that are not media).
    """
    from omni_rag.media import probe  # imports torch: only once there are files to look at

    metadata = {"path": str(path), "name": path.name}
    try:
        info = probe(path)
    except (MediaError, OSError) as error:
        return FileProblem(shown(path), f"cannot read: {error}")
    if info.kind == "video":
        if info.has_audio:
            return FileItem(path, "video+audio", Content(video=str(path), audio=str(path), metadata=metadata))
        return FileItem(path, "video", Content(video=str(path), metadata=metadata))
    if info.kind == "audio":
        return FileItem(path, "audio", Content(audio=str(path), metadata=metadata))
    if info.kind == "image":
        return FileItem(path, "image", Content(image=str(path), metadata=metadata))
    if info.kind == "text":
        return _text_item(path, max_text_bytes)
    if _claims_media(path):
        return FileProblem(shown(path), "not a decodable image, audio or video file (corrupt or unsupported)")
    if _claims_text(path):
        from omni_rag.media.text import decode_text

        try:
            decode_text(_read_regular(path, _SNIFF_BYTES), partial=True)
        except (OSError, MediaError) as error:
            return FileProblem(shown(path), f"cannot read as text: {error}")
    return FileProblem(shown(path), "not an image, audio, video or text file", skipped=True)


def _text_item(path: Path, max_text_bytes: int) -> FileItem | FileProblem:
    """A text file, checked now (size, encoding, blank); its text is read again when embedded."""
    from omni_rag.media.text import decode_text

    if path.stat().st_size > max_text_bytes:
        limit = f"{max_text_bytes / 2**20:g} MiB"
        return FileProblem(
            shown(path), f"text file over {limit} (raise --max-text-mb to index it)", skipped=True
        )
    try:
        decoded = decode_text(_read_regular(path, max_text_bytes))
    except (OSError, MediaError) as error:
        return FileProblem(shown(path), f"cannot read as text: {error}")
    if not decoded.text.strip():
        return FileProblem(shown(path), "blank text file", skipped=True)
    return FileItem(path, "text", encoding=decoded.encoding if decoded.guessed else None)


def scan_paths(
    paths: Iterable[str | os.PathLike[str]],
    exclude: Sequence[str] = (),
    *,
    options: ScanOptions | None = None,
) -> FileScan:
    """Walk ``paths`` and sort every file into to-embed, skipped or failed."""
    options = options or ScanOptions(exclude=exclude)
    state, roots = _walk(list(paths), options)
    scan = FileScan(roots=roots, unreadable=state.unreadable, max_text_bytes=options.max_text_bytes)
    for problem in state.problems:
        (scan.skipped if problem.skipped else scan.failures).append(problem)
    scan.warnings = [f"--exclude {p!r} matched nothing" for p in state.excluder.unmatched()]
    for path in state.files:
        outcome = to_item(path, options.max_text_bytes)
        if isinstance(outcome, FileItem):
            scan.items.append(outcome)
            if outcome.encoding:
                note = f"decoded as {outcome.encoding} (not UTF-8, no byte-order mark)"
                scan.notes.append(FileProblem(str(path), note, skipped=True))
        else:
            (scan.skipped if outcome.skipped else scan.failures).append(outcome)
    return scan
