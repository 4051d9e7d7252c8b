"""Multimodal retrieval in LlamaIndex with omni-rag: text and image queries over video, audio and images.

pip install -e . -e integrations/llama-index
python examples/llama_index_multimodal.py            # nvidia/omni-embed-nemotron-3b (GPU advised)
python examples/llama_index_multimodal.py --model /path/to/checkpoint   # or OMNI_RAG_MODEL=...
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.schema import NodeWithScore, QueryBundle
from llama_index.embeddings.omni_rag import OmniEmbedding
from llama_index.retrievers.omni_rag import OmniRetriever

from omni_rag.embedder import DEFAULT_MODEL
from omni_rag.retriever import OmniRetriever as CoreRetriever
from omni_rag.store import OmniStore

MEDIA = Path(__file__).resolve().parent / "media"


def show(title: str, nodes: list[NodeWithScore]) -> None:
    print(title)
    for n in nodes:
        source = Path(n.node.metadata["source"]).name if n.node.metadata.get("source") else "-"
        text = " ".join(n.node.get_content().split())[:50]
        print(
            f"  hit score={n.score:.4f} modality={n.node.metadata.get('modality', 'text')} {source=} {text=}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.environ.get("OMNI_RAG_MODEL", DEFAULT_MODEL))
    args = parser.parse_args()

    # 1. One model for everything: LlamaIndex's embedding model loads it, the retriever shares it.
    embed_model = OmniEmbedding(model_name=args.model)
    Settings.embed_model = embed_model

    # 2. Index media into omni-rag's store (in-memory Qdrant here; pass url=... for a server).
    #    Each item is stored as one vector per stream: a video's frames and its voice separately.
    core = CoreRetriever(embed_model.embedder, OmniStore("llama_index_demo"), k=3)
    bread = str(MEDIA / "bread_baking.mp4")
    core.add(
        [
            {"video": bread, "audio": bread},  # slides + voice track
            {"video": str(MEDIA / "ocean_tides.mp4")},  # silent video
            {"audio": str(MEDIA / "volcano.wav")},
            {"image": str(MEDIA / "mountain_sunset.jpg")},
            {"text": (MEDIA / "notes.md").read_text(encoding="utf-8")},
        ]
    )

    # 3. Search it from LlamaIndex: with text, or with an image (a QueryBundle with image_path).
    retriever = OmniRetriever(core, similarity_top_k=3)
    question = "how long do I bake a loaf of bread?"
    show(f"text query: {question}", retriever.retrieve(question))
    picture = QueryBundle(query_str="", image_path=str(MEDIA / "mountain_sunset.jpg"))
    show("image query: mountain_sunset.jpg", retriever.retrieve(picture))

    # 4. The same model as LlamaIndex's Settings.embed_model, in an ordinary VectorStoreIndex.
    index = VectorStoreIndex.from_documents(
        [Document(text="Bees carry pollen."), Document(text="Tides rise.")]
    )
    question = "why do crops need bees?"
    show(f"text index: {question}", index.as_retriever(similarity_top_k=2).retrieve(question))


if __name__ == "__main__":
    main()
