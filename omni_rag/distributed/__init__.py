"""Index past one machine: embedding on a Ray Data actor pool, planning and writing on the driver.

Install with ``pip install 'omni-rag[ray]'``. The driver plans exactly what
:meth:`OmniRetriever.add <omni_rag.retriever.OmniRetriever.add>` plans (same content-hash ids,
same segments, same chunks, see :mod:`omni_rag.indexing`), ships each chunk of points to an actor
that holds one copy of the model, and writes the returned vectors itself. A Ray run and a local run
are therefore interchangeable: the same folder gives the same points, and re-running either is a
no-op.
"""

from __future__ import annotations

from omni_rag.distributed.options import (
    INSTALL_HINT,
    ModelSpec,
    RayMissingError,
    RayOptions,
    require_ray,
)

__all__ = ["INSTALL_HINT", "ModelSpec", "RayMissingError", "RayOptions", "index_items", "require_ray"]


def __getattr__(name: str) -> object:
    if name == "index_items":  # imports the driver (and tqdm) only when indexing
        from omni_rag.distributed.driver import index_items

        return index_items
    raise AttributeError(f"module 'omni_rag.distributed' has no attribute {name!r}")
