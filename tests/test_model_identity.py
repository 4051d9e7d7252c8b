"""A collection knows its model by what it is (a fingerprint: the embedding of a fixed probe),
not by the folder it was loaded from: copies and links of the weights are accepted, other
weights under the same path are refused with exit 4 naming both."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from omni_rag import OmniEmbedder, OmniRetriever
from omni_rag.retriever import ModelMismatchError
from omni_rag.store import OmniStore
from omni_rag.testing import build_tiny_checkpoint
from tests.test_cli import explain, run


def test_copies_and_links_are_the_model_other_weights_are_not(
    tmp_path: Path, native_checkpoint: Path
) -> None:
    ckpt = tmp_path / "ckpt"
    shutil.copytree(native_checkpoint, ckpt)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "note.txt").write_text("bees carry pollen")
    store = ("-c", "c", "--store", tmp_path / "st")
    indexed = run("index", tmp_path / "docs", *store, "--model", ckpt, "-q")
    assert indexed.returncode == 0, explain(indexed)
    shutil.copytree(ckpt, tmp_path / "ckpt_copy")
    (tmp_path / "ckpt_link").symlink_to(ckpt, target_is_directory=True)
    for model in (tmp_path / "ckpt_copy", tmp_path / "ckpt_link"):
        found = run("search", "pollen", *store, "--model", model)
        assert found.returncode == 0, explain(found)
    shutil.rmtree(ckpt)
    build_tiny_checkpoint(ckpt, seed=1)  # other weights where the indexed ones were
    refused = run("search", "pollen", *store, "--model", ckpt)
    assert refused.returncode == 4, explain(refused)
    assert refused.stderr.count(str(ckpt)) >= 2 and "other weights" in refused.stderr
    reindex = run("index", tmp_path / "docs", *store, "--model", ckpt, "-q")
    assert reindex.returncode == 4, explain(reindex)


def test_the_fingerprint_tolerates_dtype(tmp_path: Path, native_checkpoint: Path, embedder: Any) -> None:
    store = OmniStore("c", location=":memory:")
    OmniRetriever(embedder, store).add(["bees carry pollen"])
    assert "fingerprint" in store.get_info()
    half = OmniEmbedder.from_pretrained(native_checkpoint, device="cpu", dtype="bfloat16")
    OmniRetriever(half, store).check_model()  # same weights in bf16: accepted
    other = OmniEmbedder.from_pretrained(build_tiny_checkpoint(tmp_path / "other", seed=1), device="cpu")
    with pytest.raises(ModelMismatchError, match="other weights"):
        OmniRetriever(other, store).check_model()
