"""Qdrant store with one named vector per modality stream and late fusion at query time.

Torch-free: it works on numpy vectors, so indexing and serving can run without the model.
"""

from omni_rag.store.errors import (
    CollectionMismatchError,
    DimensionMismatchError,
    StoreError,
    StoreInputError,
    UnknownStreamError,
)
from omni_rag.store.fusion import fuse, score_matrix
from omni_rag.store.models import (
    FUSION_MODES,
    STREAMS,
    FusionMode,
    Hit,
    HitGroup,
    PayloadKey,
    StoredPoint,
    Stream,
)
from omni_rag.store.qdrant import OmniStore, point_id, to_filter

__all__ = [
    "FUSION_MODES",
    "STREAMS",
    "CollectionMismatchError",
    "DimensionMismatchError",
    "FusionMode",
    "Hit",
    "HitGroup",
    "OmniStore",
    "PayloadKey",
    "StoreError",
    "StoreInputError",
    "StoredPoint",
    "Stream",
    "UnknownStreamError",
    "fuse",
    "point_id",
    "score_matrix",
    "to_filter",
]
