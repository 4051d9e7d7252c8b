"""A tiny llama-nemotron-embed-vl-1b-v2-shaped checkpoint with its own code, built offline in seconds.

The real checkpoint (``nvidia/llama-nemotron-embed-vl-1b-v2``) is a remote-code model: its ``config.json``
has ``model_type="llama_nemotron_vl"``, ``architectures=["LlamaNemotronVLModel"]`` and an ``auto_map``
pointing at ``configuration_llama_nemotron_vl.LlamaNemotronVLConfig`` /
``modeling_llama_nemotron_vl.LlamaNemotronVLModel``. The model owns a ``processor`` whose
``p_max_length``, ``max_input_tiles`` and ``use_thumbnail`` the model card sets before calling
``encode_queries`` / ``encode_documents(images=..., texts=...)``.

Tests cannot download 3 GB of weights, so this module writes a folder with the *same interface*: the same
config keys, file and class names, a processor with the same settings, and ``encode_*`` methods that return
mean-pooled, *un-normalised* hidden states like the real ``_embed_batch`` (the card normalises afterwards).
Underneath is a toy: a byte-level tokenizer, an embedding table, a conv over image tiles and a
bidirectional token mixer. Every setting changes the output, so a backend that ignores one is caught:
``p_max_length`` / ``q_max_length`` truncate tokens, ``max_input_tiles`` and ``use_thumbnail`` change the
tiles an image becomes. It loads only through ``AutoModel.from_pretrained(path, trust_remote_code=True)``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from omni_rag.testing.cache import (
    cached_build,
    default_cache_dir,
    prepare_folder,
    quiet_progress_bars,
    remote_code_source,
)

__all__ = [
    "NEMOTRON_VL_ARCHITECTURE",
    "NEMOTRON_VL_MODEL_TYPE",
    "build_tiny_nemotron_vl_checkpoint",
    "tiny_nemotron_vl_checkpoint",
]

# Bump whenever the folder contents change, so stale cached folders are never reused.
_BUILDER_VERSION = "4"

NEMOTRON_VL_MODEL_TYPE = "llama_nemotron_vl"
NEMOTRON_VL_ARCHITECTURE = "LlamaNemotronVLModel"
_CONFIG_MODULE = "configuration_llama_nemotron_vl"
_MODELING_MODULE = "modeling_llama_nemotron_vl"


def build_tiny_nemotron_vl_checkpoint(
    path: str | os.PathLike[str], *, seed: int = 0, overwrite: bool = False
) -> Path:
    """Write the tiny remote-code checkpoint folder.

    Args:
        path: Target folder. Created if missing.
        seed: Weight seed; the same seed gives the same weights and leaves the global RNG untouched.
        overwrite: Replace a non-empty ``path``; without it a non-empty folder is an error, so a typo
            can never wipe real data.

    Returns:
        The folder, loadable only with ``AutoModel.from_pretrained(path, trust_remote_code=True)``.

    Raises:
        FileExistsError: ``path`` exists, is not empty and ``overwrite`` is false.
    """
    import torch
    from transformers import AutoConfig, AutoModel

    target = prepare_folder(path, overwrite=overwrite)

    # Stage the code in a sibling folder and instantiate it through the same dynamic-module path a
    # loader uses, so what gets saved is exactly what ``AutoModel`` will import.
    with tempfile.TemporaryDirectory(dir=target.parent) as staging:
        stage = Path(staging)
        _write_sources(stage)
        (stage / "config.json").write_text(_config_json(), encoding="utf-8")
        config = AutoConfig.from_pretrained(stage, trust_remote_code=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AutoModel.from_config(config, trust_remote_code=True).eval()
        model.config.architectures = [NEMOTRON_VL_ARCHITECTURE]
        with quiet_progress_bars():
            model.save_pretrained(target)
    _write_sources(target)
    return target


def _write_sources(folder: Path) -> None:
    for module in (_CONFIG_MODULE, _MODELING_MODULE):
        (folder / f"{module}.py").write_text(remote_code_source(f"{module}.py"), encoding="utf-8")


def _config_json() -> str:
    import json

    config = {
        "model_type": NEMOTRON_VL_MODEL_TYPE,
        "architectures": [NEMOTRON_VL_ARCHITECTURE],
        "auto_map": {
            "AutoConfig": f"{_CONFIG_MODULE}.LlamaNemotronVLConfig",
            "AutoModel": f"{_MODELING_MODULE}.{NEMOTRON_VL_ARCHITECTURE}",
        },
        "llm_config": {"hidden_size": 32, "vocab_size": 260},
        "vision_config": {"hidden_size": 16, "num_channels": 3},
        "tile_size": 16,
        "num_image_token": 4,
        "p_max_length": 4096,
        "q_max_length": 512,
        "max_input_tiles": 2,
        "use_thumbnail": True,
        "query_prefix": "query:",
        "passage_prefix": "passage:",
        "pooling": "avg",
    }
    return json.dumps(config, indent=2)


def tiny_nemotron_vl_checkpoint(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """A cached tiny checkpoint folder (seed 0), built at most once per cache directory.

    Safe across processes: the build runs under a file lock into a scratch folder that is atomically
    renamed into place, so readers never see a half-written folder.

    Args:
        cache_dir: Parent folder; defaults to ``$OMNI_RAG_TINY_CACHE`` or a temp folder keyed by the
            builder and transformers versions.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir(_BUILDER_VERSION)
    return cached_build(root, f"tiny-nemotron-vl-v{_BUILDER_VERSION}", build_tiny_nemotron_vl_checkpoint)
