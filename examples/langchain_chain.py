"""A LangChain RAG chain (LCEL) over video, audio and images with omni-rag.

pip install -e . -e integrations/langchain
python examples/langchain_chain.py                    # nvidia/omni-embed-nemotron-3b (GPU advised)
python examples/langchain_chain.py --model /path/to/checkpoint   # or OMNI_RAG_MODEL=...
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_omni_rag import OmniEmbeddings, OmniRetriever
from langchain_qdrant import QdrantVectorStore

from omni_rag.embedder import DEFAULT_MODEL
from omni_rag.retriever import OmniRetriever as CoreRetriever
from omni_rag.store import OmniStore

MEDIA = Path(__file__).resolve().parent / "media"

PROMPT = PromptTemplate.from_template("Answer from the context.\nContext:\n{context}\nQuestion: {question}")


def format_docs(docs: list[Document]) -> str:
    # page_content is the item's text, or a description such as "[video: bread_baking.mp4]"
    return "\n".join(f"- [{d.metadata['score']:.3f}] {' '.join(d.page_content.split())[:70]}" for d in docs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.environ.get("OMNI_RAG_MODEL", DEFAULT_MODEL))
    args = parser.parse_args()

    # 1. Load the model once; the retriever below shares it.
    embeddings = OmniEmbeddings(model_name=args.model)

    # 2. Index media into omni-rag's store (in-memory Qdrant; one vector per stream).
    core = CoreRetriever(embeddings.embedder, OmniStore("langchain_demo"), k=2)
    bread = str(MEDIA / "bread_baking.mp4")
    core.add(
        [
            {"video": bread, "audio": bread},
            {"audio": str(MEDIA / "volcano.wav")},
            {"image": str(MEDIA / "document_page.png")},
            {"text": (MEDIA / "notes.md").read_text(encoding="utf-8")},
        ]
    )

    # 3. An LCEL chain. Swap the RunnableLambda for a real chat model (e.g. ChatOpenAI()).
    def fake_llm(prompt: PromptValue) -> str:
        return f"[an LLM would answer this prompt]\n{prompt.to_string()}"

    chain = (
        {"context": OmniRetriever(retriever=core, k=2) | format_docs, "question": RunnablePassthrough()}
        | PROMPT
        | RunnableLambda(fake_llm)
        | StrOutputParser()
    )
    print(chain.invoke("How long do I bake a loaf of bread?"))

    # 4. The same embeddings in langchain-qdrant's own vector store.
    store = QdrantVectorStore.from_texts(
        ["Bees carry pollen.", "Tides rise."], embeddings, location=":memory:", collection_name="notes"
    )
    print("qdrant:", store.similarity_search("why do crops need bees?", k=1)[0].page_content)


if __name__ == "__main__":
    main()
