"""The one translation between LlamaIndex and the omni-rag store: nodes, points and filters.

A node is stored as one point (or, for a long recording, one point per segment) whose payload
``metadata`` is LlamaIndex's own :func:`~llama_index.core.vector_stores.utils.node_to_metadata_dict`
(the node as JSON, its metadata keys flat for filtering, ``ref_doc_id``) plus ``text`` (the node's
text, what :mod:`omni_rag.hits` reads) and ``node_id`` (so a node's segments are found by id).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llama_index.core.schema import BaseNode, ImageNode, MetadataMode, Node
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict
from llama_index.embeddings.omni_rag.base import to_image_input
from llama_index.retrievers.omni_rag.base import hit_to_node as describe_hit
from qdrant_client import models

from omni_rag import Content
from omni_rag.content import ItemLike
from omni_rag.hits import hit_media_fields
from omni_rag.indexing import media_items
from omni_rag.store import Hit, PayloadKey

METADATA = "metadata"
TEXT_KEY = "text"
NODE_ID_KEY = "node_id"
REF_DOC_KEY = "ref_doc_id"
#: Keys this module writes next to the node's metadata keys.
RESERVED = (TEXT_KEY, NODE_ID_KEY)


@dataclass(frozen=True)
class NodeRecord:
    """What the store writes for one node: its stream (for a given embedding) and payload."""

    node: BaseNode
    payload: dict[str, Any]
    stream: str


def node_record(node: BaseNode) -> NodeRecord:
    """The payload of a node and the stream its embedding belongs to (``image`` for an ``ImageNode``).

    Raises:
        ValueError: The node's metadata uses a reserved key, naming the node.
    """
    clash = [k for k in RESERVED if k in node.metadata]
    if clash:
        raise ValueError(
            f"node {node.node_id}: metadata key(s) {clash} are reserved by the store; rename them"
        )
    metadata = node_to_metadata_dict(node, remove_text=True, flat_metadata=False)
    metadata[TEXT_KEY] = node.get_content(metadata_mode=MetadataMode.NONE)
    metadata[NODE_ID_KEY] = node.node_id
    source = image_source(node)
    stream = "image" if isinstance(node, ImageNode) and (node.image_path or node.image_url) else "text"
    return NodeRecord(node, {"source": source, METADATA: metadata}, stream)


def image_source(node: BaseNode) -> str | None:
    """The path or URL of an ``ImageNode``'s image, recorded as the point's ``source``."""
    if isinstance(node, ImageNode):
        return node.image_path or node.image_url
    return None


def node_media(node: BaseNode) -> ItemLike | None:
    """What omni-rag embeds for a node given without an embedding: its image, audio, video, text.

    A ``Node`` whose one medium is a video or audio file becomes what ``omni-rag index`` makes of
    that file (probed, so a video with sound is video + audio). ``None``: the node has no content.
    """
    if isinstance(node, ImageNode):
        image = node.image_path or node.image_url or (node.resolve_image() if node.image else None)
        text = node.get_content(metadata_mode=MetadataMode.NONE).strip() or None
        return Content(text=text, image=to_image_input(image) if image is not None else None)
    if isinstance(node, Node):
        media = {
            name: _resource(getattr(node, f"{name}_resource"))
            for name in ("image", "audio", "video")
            if getattr(node, f"{name}_resource") is not None
        }
        text = node.text_resource.text if node.text_resource is not None else None
        if not text and len(media) == 1 and set(media) <= {"audio", "video"}:
            (path,) = media.values()
            return media_items([os.fspath(path)]).items[0] if os.path.isfile(str(path)) else Content(**media)
        return Content(text=text or None, **media)
    text = node.get_content(metadata_mode=MetadataMode.NONE)
    return text if text.strip() else None


def _resource(resource: Any) -> Any:
    if resource.path is not None:
        return str(resource.path)
    if resource.url is not None:
        return str(resource.url)
    raise ValueError("a media resource needs a path or url to be embedded")


def hit_to_node(hit: Hit) -> BaseNode:
    """The node a point was written from; segments get their own id and time range.

    Points written by something else (``omni-rag index``, ``OmniRetriever.add``) carry no node:
    they read as :func:`llama_index.retrievers.omni_rag.hit_to_node` describes them.
    """
    metadata = dict(hit.payload.get(METADATA) or {})
    if "_node_content" not in metadata:
        return describe_hit(hit).node
    node = metadata_dict_to_node(metadata, text=metadata.get(TEXT_KEY))
    if hit.payload.get("segment_index") is not None:
        node.id_ = hit.id
        node.metadata.update(hit_media_fields(hit))
    return node


# ---------------------------------------------------------------------------------------- filters

_RANGES = {
    FilterOperator.GT: "gt",
    FilterOperator.GTE: "gte",
    FilterOperator.LT: "lt",
    FilterOperator.LTE: "lte",
}
SUPPORTED = (*_RANGES, FilterOperator.EQ, FilterOperator.NE, FilterOperator.IN, FilterOperator.NIN)


def to_qdrant_filter(filters: MetadataFilters | None) -> models.Filter | None:
    """A Qdrant filter from LlamaIndex ``MetadataFilters`` (keys are node metadata keys).

    EQ, NE, GT, GTE, LT, LTE, IN, NIN combined with AND / OR, nested. NE and NIN also match
    nodes without the key (as ``!=`` on a missing value). Anything else raises.

    Raises:
        ValueError: An unsupported operator or condition, or a value of the wrong type, named.
    """
    if filters is None or not filters.filters:
        return None
    parts: list[models.Condition] = [_part(f) for f in filters.filters]
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.AND:
        return models.Filter(must=parts)
    if condition == FilterCondition.OR:
        return models.Filter(should=parts)
    raise ValueError(f"filter condition {condition.value!r} is not supported; use 'and' or 'or'")


def _part(item: MetadataFilter | MetadataFilters) -> models.Filter:
    if isinstance(item, MetadataFilters):
        nested = to_qdrant_filter(item)
        return nested if nested is not None else models.Filter()
    return _operator(item)


def _operator(f: MetadataFilter) -> models.Filter:
    key, value, op = f"{METADATA}.{f.key}", f.value, f.operator
    if op not in SUPPORTED:
        raise ValueError(
            f"filter operator {op.value!r} on key {f.key!r} is not supported; use one of "
            f"{[o.value for o in SUPPORTED]}"
        )
    if op in (FilterOperator.EQ, FilterOperator.NE):
        matched = _equals(key, _scalar(f))
        return models.Filter(must=[matched]) if op == FilterOperator.EQ else models.Filter(must_not=[matched])
    if op in _RANGES:
        number = _scalar(f)
        if isinstance(number, str):
            raise ValueError(f"filter {op.value!r} on key {f.key!r} needs a number, got {value!r}")
        return models.Filter(
            must=[models.FieldCondition(key=key, range=models.Range(**{_RANGES[op]: number}))]
        )
    if not isinstance(value, list):
        raise ValueError(f"filter {op.value!r} on key {f.key!r} needs a list, got {value!r}")
    anyof = models.Filter(should=[_equals(key, v) for v in value]) if value else _nothing()
    return models.Filter(must=[anyof]) if op == FilterOperator.IN else models.Filter(must_not=[anyof])


def _scalar(f: MetadataFilter) -> str | int | float:
    if isinstance(f.value, (str, int, float)):
        return f.value
    raise ValueError(f"filter {f.operator.value!r} on key {f.key!r} needs one value, got {f.value!r}")


def _equals(key: str, value: Any) -> models.Condition:
    """``key == value``: a keyword/integer match, or a one-point range for a float."""
    if isinstance(value, float):
        return models.FieldCondition(key=key, range=models.Range(gte=value, lte=value))
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def _nothing() -> models.Filter:
    """A filter no point matches (``IN []``)."""
    return models.Filter(must=[models.HasIdCondition(has_id=[])])


def ids_filter(node_ids: Sequence[str] | None, doc_ids: Sequence[str] | None) -> list[models.Condition]:
    """Conditions keeping the given nodes (and their segments) and documents."""
    out: list[models.Condition] = []
    if node_ids is not None:
        wanted = models.MatchAny(any=list(node_ids))
        # a node's own points carry its id as node_id; points added otherwise are nodes by their own id
        by_node = models.FieldCondition(key=f"{METADATA}.{NODE_ID_KEY}", match=wanted)
        out.append(models.Filter(should=[by_node, models.FieldCondition(key=PayloadKey.ID, match=wanted)]))
    if doc_ids is not None:
        out.append(
            models.FieldCondition(key=f"{METADATA}.{REF_DOC_KEY}", match=models.MatchAny(any=list(doc_ids)))
        )
    return out


__all__ = ["NodeRecord", "hit_to_node", "ids_filter", "node_media", "node_record", "to_qdrant_filter"]
