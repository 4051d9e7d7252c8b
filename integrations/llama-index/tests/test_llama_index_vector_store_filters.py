"""Every supported ``FilterOperator``, AND / OR and nesting, against a brute-force oracle.

200 nodes with random payloads (keys sometimes missing) on both engines; a query with a
filter must return exactly the nodes the oracle keeps. Unsupported operators raise, naming them.
"""

from __future__ import annotations

import operator
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)
from llama_index.vector_stores.omni_rag import OmniVectorStore
from qdrant_client import QdrantClient

N, DIM = 200, 8
COLORS = ["red", "green", "blue", "amber"]


def _payload(rng: random.Random) -> dict[str, Any]:
    full = {"color": rng.choice(COLORS), "n": rng.randrange(10), "x": round(rng.uniform(-2, 2), 1)}
    return {k: v for k, v in full.items() if rng.random() > 0.15}  # keys sometimes missing


@pytest.fixture(scope="module", params=["edge", "qdrant-client"])
def filled(request: pytest.FixtureRequest) -> tuple[OmniVectorStore, dict[str, dict[str, Any]]]:
    rng = random.Random(7)
    vectors = np.random.default_rng(7).normal(size=(N, DIM))
    payloads = {f"node-{i}": _payload(rng) for i in range(N)}
    nodes = [
        TextNode(id_=node_id, text=f"item {i}", metadata=meta, embedding=vectors[i].tolist())
        for i, (node_id, meta) in enumerate(payloads.items())
    ]
    client = {"client": QdrantClient(":memory:")} if request.param == "qdrant-client" else {}
    store = OmniVectorStore(collection_name="filters", **client)
    store.add(nodes)
    return store, payloads


def _holds(f: MetadataFilter, meta: dict[str, Any]) -> bool:
    """The oracle: a missing key fails every test but ``!=`` and ``nin``."""
    present, value = f.key in meta, meta.get(f.key)
    compare: dict[FilterOperator, Callable[[Any, Any], bool]] = {
        FilterOperator.EQ: operator.eq,
        FilterOperator.GT: operator.gt,
        FilterOperator.GTE: operator.ge,
        FilterOperator.LT: operator.lt,
        FilterOperator.LTE: operator.le,
        FilterOperator.IN: lambda v, options: v in options,
    }
    if f.operator == FilterOperator.NE:
        return not (present and value == f.value)
    if f.operator == FilterOperator.NIN:
        return not (present and value in f.value)  # type: ignore[operator]
    return present and compare[f.operator](value, f.value)


def _oracle(filters: MetadataFilters, meta: dict[str, Any]) -> bool:
    results = [
        _oracle(f, meta) if isinstance(f, MetadataFilters) else _holds(f, meta) for f in filters.filters
    ]
    return all(results) if filters.condition == FilterCondition.AND else any(results)


def _found(store: OmniVectorStore, filters: MetadataFilters) -> set[str]:
    query = VectorStoreQuery(query_embedding=[1.0] * DIM, similarity_top_k=N, filters=filters)
    return set(store.query(query, exact=True).ids or [])


CASES = [
    MetadataFilter(key="color", value="red"),
    MetadataFilter(key="color", value="red", operator=FilterOperator.NE),
    MetadataFilter(key="n", value=4),
    MetadataFilter(key="n", value=4, operator=FilterOperator.NE),
    MetadataFilter(key="x", value=0.5),
    MetadataFilter(key="n", value=6, operator=FilterOperator.GT),
    MetadataFilter(key="n", value=6, operator=FilterOperator.GTE),
    MetadataFilter(key="x", value=-0.3, operator=FilterOperator.LT),
    MetadataFilter(key="x", value=-0.3, operator=FilterOperator.LTE),
    MetadataFilter(key="color", value=["green", "amber"], operator=FilterOperator.IN),
    MetadataFilter(key="n", value=[1, 2, 3], operator=FilterOperator.IN),
    MetadataFilter(key="x", value=[0.5, 1.0], operator=FilterOperator.IN),
    MetadataFilter(key="color", value=["green", "amber"], operator=FilterOperator.NIN),
    MetadataFilter(key="n", value=[1, 2, 3], operator=FilterOperator.NIN),
]


@pytest.mark.parametrize("case", CASES, ids=lambda f: f"{f.key}{f.operator.value}{f.value}")
def test_each_operator_matches_the_oracle(filled: Any, case: MetadataFilter) -> None:
    store, payloads = filled
    filters = MetadataFilters(filters=[case])
    want = {i for i, meta in payloads.items() if _oracle(filters, meta)}
    assert 0 < len(want) < N, "a case that keeps all or nothing tests little"
    assert _found(store, filters) == want


@pytest.mark.parametrize("condition", [FilterCondition.AND, FilterCondition.OR])
def test_and_or_and_nesting_match_the_oracle(filled: Any, condition: FilterCondition) -> None:
    store, payloads = filled
    nested = MetadataFilters(
        filters=[
            MetadataFilter(key="n", value=3, operator=FilterOperator.LT),
            MetadataFilter(key="color", value="blue", operator=FilterOperator.NE),
        ],
        condition=FilterCondition.OR if condition == FilterCondition.AND else FilterCondition.AND,
    )
    filters = MetadataFilters(
        filters=[MetadataFilter(key="x", value=0.0, operator=FilterOperator.GTE), nested], condition=condition
    )
    want = {i for i, meta in payloads.items() if _oracle(filters, meta)}
    assert 0 < len(want) < N
    assert _found(store, filters) == want
    assert {n.node_id for n in store.get_nodes(filters=filters)} == want


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        (MetadataFilter(key="color", value="re", operator=FilterOperator.TEXT_MATCH), "text_match"),
        (MetadataFilter(key="color", value=["red"], operator=FilterOperator.ALL), "'all'"),
        (MetadataFilter(key="color", value="red", operator=FilterOperator.GT), "needs a number"),
    ],
)
def test_unsupported_filters_raise_naming_them(filled: Any, bad: MetadataFilter, named: str) -> None:
    store, _ = filled
    with pytest.raises(ValueError, match=named):
        _found(store, MetadataFilters(filters=[bad]))
    with pytest.raises(ValueError, match="'not'"):
        _found(store, MetadataFilters(filters=[CASES[0]], condition=FilterCondition.NOT))
