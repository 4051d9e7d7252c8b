"""Qdrant store with one named vector per modality stream and late fusion at query time.

Embedded on Qdrant Edge, or on a Qdrant server through qdrant-client (see :mod:`.engine`).

Torch-free: it works on numpy vectors, so indexing and serving can run without the model.
"""

from omni_rag.store.engine import IndexInfo
from omni_rag.store.errors import (
    CollectionMismatchError,
    CollectionNameError,
    DimensionMismatchError,
    LegacyStoreError,
    StoreError,
    StoreInputError,
    StoreLockedError,
    StoreWriteError,
    UnknownStreamError,
)
from omni_rag.store.filters import check_collection_name, point_id, to_filter
from omni_rag.store.fusion import fuse, score_matrix
from omni_rag.store.migration import MigrationReport, migrate_store
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
from omni_rag.store.store import OmniStore, store_or_open

__all__ = [
    "FUSION_MODES",
    "STREAMS",
    "CollectionMismatchError",
    "CollectionNameError",
    "DimensionMismatchError",
    "FusionMode",
    "Hit",
    "HitGroup",
    "IndexInfo",
    "LegacyStoreError",
    "MigrationReport",
    "OmniStore",
    "PayloadKey",
    "StoreError",
    "StoreInputError",
    "StoreLockedError",
    "StoreWriteError",
    "StoredPoint",
    "Stream",
    "UnknownStreamError",
    "check_collection_name",
    "fuse",
    "migrate_store",
    "point_id",
    "score_matrix",
    "store_or_open",
    "to_filter",
]
