"""Old import path of the store (omni-rag 0.1); the store now lives in :mod:`omni_rag.store.store`."""

from omni_rag.store.filters import POINT_ID_NAMESPACE, point_id, to_filter
from omni_rag.store.store import OmniStore

__all__ = ["POINT_ID_NAMESPACE", "OmniStore", "point_id", "to_filter"]
