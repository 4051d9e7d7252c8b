"""Checks on what callers hand the store (ids, vectors, queries, search options), with the item
index and stream in every error, so a bad item is named and nothing is written half-way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from omni_rag.store.errors import (
    DimensionMismatchError,
    StoreInputError,
    UnknownStreamError,
)
from omni_rag.store.models import (
    STREAMS,
)


def check_oversampling(oversampling: float) -> None:
    if not (math.isfinite(oversampling) and oversampling >= 1.0):
        raise StoreInputError(f"oversampling must be >= 1, got {oversampling}")


def check_hnsw_ef(hnsw_ef: int | None) -> None:
    if hnsw_ef is not None and (isinstance(hnsw_ef, bool) or not isinstance(hnsw_ef, int) or hnsw_ef < 1):
        raise StoreInputError(f"hnsw_ef must be a positive int, got {hnsw_ef!r}")


def check_query(query_vector: np.ndarray) -> np.ndarray:
    if np.iscomplexobj(query_vector):
        raise StoreInputError("query vector is complex; embeddings are real")
    query = np.asarray(query_vector, dtype=np.float64)
    if query.ndim != 1:
        raise DimensionMismatchError(f"query must be a 1-D vector, got shape {query.shape}")
    if not np.all(np.isfinite(query)) or not np.any(query.astype(np.float32)):
        raise StoreInputError("query vector is zero or has NaN/infinite values")
    check_norm(query.astype(np.float32))
    return query


def check_norm(arr: np.ndarray, *, index: int | None = None, stream: str | None = None) -> None:
    """Refuse a vector whose float32 norm is not a normal float32 (denormal components): the
    engine normalises in float32, where such a vector becomes zero and scores 0 against itself."""
    norm = float(np.linalg.norm(arr.astype(np.float64)))
    if not np.float32(norm) >= np.finfo(np.float32).tiny or not np.isfinite(np.float32(norm)):
        raise StoreInputError(
            f"vector norm {norm:.3g} is not a normal float32 (between {np.finfo(np.float32).tiny:.3g} "
            f"and {np.finfo(np.float32).max:.3g}); cosine is undefined",
            index=index,
            stream=stream,
        )


def check_id_list(ids: Sequence[str]) -> None:
    if isinstance(ids, str):
        raise StoreInputError("ids must be a sequence of strings, not one string")
    first: dict[str, int] = {}
    for i, item_id in enumerate(ids):
        if not isinstance(item_id, str):
            raise StoreInputError(f"id must be a str, got {type(item_id).__name__}", index=i)
        if item_id in first:
            raise StoreInputError(f"id {item_id!r} repeats item {first[item_id]}'s id in one upsert", index=i)
        first[item_id] = i


def check_vectors(
    vectors: Sequence[Mapping[str, np.ndarray]], dim: int | None
) -> tuple[list[dict[str, np.ndarray]], int]:
    """Validated float32 stream vectors per item, and the vector size they share."""
    arrays: list[dict[str, np.ndarray]] = []
    for i, item in enumerate(vectors):
        if not isinstance(item, Mapping) or not item:
            raise StoreInputError("item has no streams", index=i)
        checked: dict[str, np.ndarray] = {}
        for stream, vector in item.items():
            if stream not in STREAMS:
                raise UnknownStreamError(f"unknown stream; expected one of {list(STREAMS)}", index=i)
            if np.iscomplexobj(vector):
                raise StoreInputError("vector is complex; embeddings are real", index=i, stream=stream)
            try:
                arr = np.asarray(vector, dtype=np.float32)
            except (TypeError, ValueError) as error:
                raise StoreInputError(f"vector is not numeric: {error}", index=i, stream=stream) from error
            if arr.ndim != 1:
                raise DimensionMismatchError(
                    f"expected a 1-D vector, got shape {arr.shape}", index=i, stream=stream
                )
            dim = arr.shape[0] if dim is None else dim
            if arr.shape[0] != dim:
                raise DimensionMismatchError(
                    f"vector has {arr.shape[0]} dims, expected {dim}", index=i, stream=stream
                )
            if not np.all(np.isfinite(arr)):
                raise StoreInputError("vector has NaN or infinite values", index=i, stream=stream)
            if not np.any(arr):
                raise StoreInputError("vector is all zeros; cosine is undefined", index=i, stream=stream)
            check_norm(arr, index=i, stream=stream)
            checked[stream] = arr
        arrays.append(checked)
    assert dim is not None
    return arrays, dim
