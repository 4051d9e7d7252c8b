"""OmniEmbedder vs the model card's recipe on 48 mixed items, on the CPU, with a tiny checkpoint.

    python benchmarks/bench_embedder.py [--batch-size 8] [--repeats 3]

Items: 16 texts, 16 audio clips of 2-8 s (16 kHz arrays), 16 images, shuffled once.
Both sides run in batches of ``--batch-size`` in the same item order; the card's
recipe is :func:`omni_rag.card.card_embed` (the Usage section verbatim). Reports
wall time per side, the speed-up and the worst 1 - cos between the two sides'
vectors. The tiny checkpoint has the real processors, so feature extraction and
resizing cost what they cost with the real model; the transformer is tiny, so this
measures the pipeline around the model, where the card pads every clip to 128 s.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from PIL import Image
from transformers import AutoModel, AutoProcessor

from omni_rag import Content, OmniEmbedder
from omni_rag.card import card_conversation, card_embed
from omni_rag.testing import tiny_checkpoint


def make_items(seed: int = 0) -> list[tuple[Content, list[dict]]]:
    rng = np.random.default_rng(seed)
    items: list[tuple[Content, list[dict]]] = []
    for i in range(16):
        text = " ".join(rng.choice(["lava", "bread", "tide", "rocket", "revenue", "bees"], size=8 + i))
        items.append((Content(text=text), card_conversation("passage: ", text=text)))
    for _ in range(16):
        seconds = rng.uniform(2.0, 8.0)
        wave = (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32)
        items.append((Content(audio=wave), card_conversation("passage: ", audio=wave)))
    for _ in range(16):
        h, w = rng.integers(120, 480, size=2)
        image = Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))
        items.append((Content(image=image), card_conversation("passage: ", image=image)))
    order = rng.permutation(len(items))
    return [items[i] for i in order]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    path = tiny_checkpoint("native")
    items = make_items()
    embedder = OmniEmbedder.from_pretrained(path, device="cpu")
    model = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(path)
    contents = [c for c, _ in items]
    conversations = [conv for _, conv in items]

    def ours() -> np.ndarray:
        return embedder.embed_documents(contents, batch_size=args.batch_size)

    def card() -> np.ndarray:
        batches = [
            card_embed(model, processor, conversations[i : i + args.batch_size])
            for i in range(0, len(conversations), args.batch_size)
        ]
        return np.concatenate(batches)

    ours(), card()  # warm-up
    times: dict[str, list[float]] = {"omni_rag": [], "card": []}
    for _ in range(args.repeats):  # interleaved so drift hits both sides alike
        for name, fn in (("omni_rag", ours), ("card", card)):
            start = time.perf_counter()
            vectors = fn()
            times[name].append(time.perf_counter() - start)
            if name == "omni_rag":
                mine = vectors
            else:
                theirs = vectors
    worst = float(np.max(1 - np.sum(mine * theirs, axis=1)))
    ours_s, card_s = statistics.median(times["omni_rag"]), statistics.median(times["card"])
    print(f"items: {len(items)} (16 text, 16 audio 2-8 s, 16 images), batch size {args.batch_size}")
    print(f"card recipe : {card_s:.2f} s (median of {args.repeats})")
    print(f"OmniEmbedder: {ours_s:.2f} s (median of {args.repeats})")
    print(f"speed-up    : {card_s / ours_s:.2f}x")
    print(f"max 1 - cos : {worst:.2e}")


if __name__ == "__main__":
    main()
