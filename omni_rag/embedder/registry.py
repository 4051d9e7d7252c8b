"""Which backend serves a checkpoint, decided from its ``config.json`` alone.

Adding a model means adding its module to :data:`BACKENDS`; nobody passes a flag.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Protocol

from omni_rag.embedder.base import EmbeddingBackend
from omni_rag.embedder.loading import LoadOptions, ModelLoadError


class BackendModule(Protocol):
    """A backend module: a config test and a loader."""

    def accepts(self, config: Mapping[str, Any]) -> bool: ...

    def load(self, options: LoadOptions, **kwargs: Any) -> EmbeddingBackend: ...

    def loads_natively(self, config: Mapping[str, Any]) -> bool: ...


#: Backend modules, tried in order; each exposes ``accepts(config)``,
#: ``loads_natively(config)`` (runs without the checkpoint's code) and ``load(options, **kwargs)``.
BACKENDS: tuple[str, ...] = ("omni_rag.embedder.qwen_omni.model", "omni_rag.embedder.nemotron_vl")


def select_backend(config: Mapping[str, Any], name: str) -> BackendModule:
    """The first backend whose ``accepts`` takes this config.

    Raises:
        ModelLoadError: no backend serves it.
    """
    for module_name in BACKENDS:
        module: Any = importlib.import_module(module_name)
        if module.accepts(config):
            return module  # type: ignore[no-any-return]
    raise ModelLoadError(
        f"{name}: model_type {config.get('model_type')!r} (architectures {config.get('architectures')}) "
        "is not supported by any omni-rag backend"
    )
