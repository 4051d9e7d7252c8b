"""Where tiny checkpoints are built and cached, shared by every builder in :mod:`omni_rag.testing`."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path


def default_cache_dir(builder_version: str) -> Path:
    """``$OMNI_RAG_TINY_CACHE``, else a temp folder keyed by builder version, the shipped remote code
    and the transformers version, so an edit to any of them never reuses a stale checkpoint."""
    import transformers

    env = os.environ.get("OMNI_RAG_TINY_CACHE")
    if env:
        return Path(env)
    digest = hashlib.sha256()
    for module in sorted(resources.files("omni_rag.testing.remote_code").iterdir(), key=lambda p: p.name):
        if module.name.endswith(".py"):
            digest.update(module.read_bytes())
    key = f"v{builder_version}_{digest.hexdigest()[:8]}_tf{transformers.__version__}"
    return Path(tempfile.gettempdir()) / f"omni_rag_tiny_{key}"


def remote_code_source(filename: str) -> str:
    """The text of a remote-code module shipped in :mod:`omni_rag.testing.remote_code`.

    They are real, linted and type-checked modules; a checkpoint folder gets a copy, as a hub
    repository ships its ``modeling_*.py``.
    """
    return resources.files("omni_rag.testing.remote_code").joinpath(filename).read_text(encoding="utf-8")


@contextlib.contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """Silence transformers' shard-writing bar (noise in test logs), restoring the caller's setting."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def prepare_folder(path: str | os.PathLike[str], *, overwrite: bool) -> Path:
    """An empty folder to build into; a non-empty one only with ``overwrite``, so a typo never wipes data."""
    target = Path(path)
    if target.exists() and any(target.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{target} is not empty; pass overwrite=True to replace it")
        shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)
    return target


_MEMO: dict[Path, Path] = {}


def cached_build(root: Path, name: str, build: Callable[[Path], object]) -> Path:
    """Build ``root/name`` at most once per cache folder, safely across processes.

    The build runs under a file lock into a scratch folder that is atomically renamed into
    place, so readers (pytest-xdist workers, parallel CI jobs) never see a half-written folder.
    """
    from filelock import FileLock

    final = root / name
    key = final.resolve()
    if key in _MEMO and (final / "config.json").is_file():
        return _MEMO[key]
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{name}.lock")):
        if not (final / "config.json").is_file():
            scratch = root / f".{name}-{uuid.uuid4().hex}"
            try:
                build(scratch)
                if final.exists():
                    shutil.rmtree(final)
                os.replace(scratch, final)
            finally:
                if scratch.exists():
                    shutil.rmtree(scratch, ignore_errors=True)
    _MEMO[key] = final
    return final
