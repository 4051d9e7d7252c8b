"""The folder walk and text decoding behind ``omni-rag index``: nothing is dropped without a word."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from omni_rag.cli.files import ScanOptions, scan_paths, walk
from omni_rag.errors import MediaError
from omni_rag.media.text import decode_text


def test_symlinked_folders_are_followed_once_and_loops_end(tmp_path: Path) -> None:
    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    (real / "sub" / "a.txt").write_text("alpha")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "b.txt").write_text("beta")
    (real / "linked").symlink_to(outside, target_is_directory=True)
    (real / "sub" / "loop").symlink_to(real, target_is_directory=True)  # a cycle back to the root
    files, problems = walk([real], options=ScanOptions(follow_external_links=True))
    assert sorted(p.name for p in files) == ["a.txt", "b.txt"]
    assert problems == []
    files, problems = walk([real])  # by default a link out of the folder is listed, not followed
    assert [p.name for p in files] == ["a.txt"]
    assert [(Path(p.path).name, p.skipped) for p in problems] == [("linked", True)]
    assert "link leaves the indexed folder" in problems[0].reason


def test_unreadable_folder_is_reported_not_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ok.txt").write_text("fine")
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "secret.txt").write_text("hidden")
    os.chmod(locked, 0o000)
    if os.geteuid() == 0:  # root reads a mode-000 folder anyway: make listing it fail as it would
        real_scandir = os.scandir

        def scandir(path: object = ".") -> object:
            if Path(str(path)) == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real_scandir(path)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "scandir", scandir)
    try:
        files, problems = walk([tmp_path])
        scan = scan_paths([tmp_path])
    finally:
        monkeypatch.undo()
        os.chmod(locked, 0o755)
    assert [f.name for f in files] == ["ok.txt"]
    assert [(p.path, p.reason) for p in problems] == [(str(locked), "cannot read folder: Permission denied")]
    assert [p.path for p in scan.failures] == [str(locked)]  # a failure: exit code 1, listed


def test_text_files_decode_by_encoding_or_fail_explicitly(tmp_path: Path) -> None:
    (tmp_path / "latin1.txt").write_bytes("café crème brûlée".encode("latin-1"))
    (tmp_path / "utf16.txt").write_text("naïve résumé", encoding="utf-16")
    (tmp_path / "utf8bom.txt").write_bytes("\ufeffhello".encode())
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "utf16-nobom.txt").write_bytes("plain".encode("utf-16-le"))
    scan = scan_paths([tmp_path])
    texts = {item.path.name: item.content.text for item in scan.items}
    assert texts == {"latin1.txt": "café crème brûlée", "utf16.txt": "naïve résumé", "utf8bom.txt": "hello"}
    failed = {Path(p.path).name: p.reason for p in scan.failures}
    assert set(failed) == {"binary.txt", "utf16-nobom.txt"}  # a .txt that is not text is a failure
    assert all("cannot read as text" in reason for reason in failed.values())
    assert [Path(n.path).name for n in scan.notes] == ["latin1.txt"]  # the guess is reported
    assert "cp1252" in scan.notes[0].reason


def test_decode_text_is_strict() -> None:
    assert decode_text("é".encode()).encoding == "utf-8"
    assert decode_text("é".encode()[:1], partial=True).text == ""  # a probe may cut a character
    with pytest.raises(MediaError, match="NUL"):
        decode_text(b"a\x00b")
    with pytest.raises(MediaError, match="control characters"):
        decode_text(b"\x01\x02binary")
