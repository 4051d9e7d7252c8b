"""What ``omni-rag index`` reports for awkward folders: copies of one file, odd file names."""

from __future__ import annotations

from pathlib import Path

import pytest

from omni_rag.cli import main
from omni_rag.store import OmniStore
from omni_rag.testing.media import make_corrupt, make_image


def test_copies_are_reported_once_stored_and_odd_names_stay_on_one_line(
    tmp_path: Path, native_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "media"
    folder.mkdir()
    make_image(folder / "a.png")
    (folder / "b_copy.png").write_bytes((folder / "a.png").read_bytes())
    make_corrupt(folder / "bad\nname.png")
    store = tmp_path / "store"
    args = ["index", str(folder), "-c", "docs", "--store", str(store), "--model", str(native_checkpoint)]
    assert main([*args, "-q"]) == 1  # the corrupt file failed
    out = capsys.readouterr().out
    assert "1 added, 0 unchanged, 1 duplicates, 0 skipped, 1 failed" in out
    assert "b_copy.png = " in out and "a.png" in out
    failed = out.split("failed:\n", 1)[1].splitlines()
    assert len(failed) == 1 and "bad\\nname.png" in failed[0]
    with OmniStore("docs", path=str(store)) as s:
        assert s.count() == 1
        assert s.count(filter={"source": str(folder / "a.png")}) == 1


def test_bad_queries_fail_before_the_store_or_model_is_touched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = make_image(tmp_path / "p.png")
    corrupt = make_corrupt(tmp_path / "broken.png")
    base = ["-c", "docs", "--store", str(tmp_path / "none"), "--model", "/no/such/model"]
    cases = {
        "the query text is empty": ["search", "  ", *base],
        "cannot read it|holds nothing decodable": ["search", "--image", str(corrupt), *base],
        "holds a image file, no audio": ["search", "--audio", str(image), *base],
        "no such file": ["search", "--video", str(tmp_path / "missing.mp4"), *base],
    }
    for message, argv in cases.items():
        assert main(argv) == 2, argv  # not 3 (no store there) nor 6 (no model there)
        err = capsys.readouterr().err
        assert any(part in err for part in message.split("|")), err
