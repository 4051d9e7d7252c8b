"""Full-size throughput: OmniEmbedder vs the model card's recipe on a Qwen2.5-Omni-3B thinker.

    python benchmarks/bench_gpu.py            # CUDA, bf16, full size, random weights, no download
    python benchmarks/bench_gpu.py --tiny     # the same code path on the CPU with the tiny checkpoint

The model is built from the published Qwen2.5-Omni-3B thinker dimensions (text 36 x 2048, vision
32 x 1280, audio 32 x 1280) with random weights: speed does not depend on the weights. The
processor is the tiny checkpoint's (real image/audio processors, so visual and audio token counts
are the real ones; a small BPE, so a "512-token passage" is 512 of its tokens). Each workload runs
on both sides with the same inputs: OmniEmbedder (token budget, packing when flash-attention 2 is
installed, background preparation) and :func:`omni_rag.card.card_embed` in fixed batches of
``--card-batch-size`` in input order. Video+audio clips go through the late-fusion path (each
stream alone); the card gets the same two conversations per clip.

Columns: items/s; text-stack tokens/s (useful tokens, the same count for both sides); MFU =
2 x non-embedding parameters x tokens each stack processed / time / the device's dense bf16 peak
(attention FLOPs not counted, as in the issue's targets); peak memory; 1 - cos between the sides;
and the speed ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from omni_rag import Content, OmniEmbedder
from omni_rag.card import card_conversation, card_embed
from omni_rag.embedder.qwen_omni.bidirectional import make_bidirectional
from omni_rag.embedder.qwen_omni.model import QwenOmniBackend
from omni_rag.testing import tiny_checkpoint

#: Qwen/Qwen2.5-Omni-3B ``thinker_config`` (transformers' defaults are the 7B's).
FULL_TEXT = {
    "hidden_size": 2048,
    "intermediate_size": 11008,
    "num_hidden_layers": 36,
    "num_attention_heads": 16,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
}
FULL_VISION = {
    "depth": 32,
    "hidden_size": 1280,
    "intermediate_size": 3420,
    "num_heads": 16,
    "out_hidden_size": 2048,
    "fullatt_block_indexes": [7, 15, 23, 31],
}
FULL_AUDIO = {
    "encoder_layers": 32,
    "encoder_attention_heads": 20,
    "encoder_ffn_dim": 5120,
    "d_model": 1280,
    "output_dim": 2048,
}
#: Dense bf16 peak TFLOP/s by device-name fragment, most specific first.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("GH200", 989.0),
    ("H200", 989.0),
    ("H100 NVL", 835.0),
    ("H100 PCIE", 756.0),
    ("H100", 989.0),
    ("H800", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("A10G", 70.0),
    ("L4", 121.0),
)
CARD_PARAMETERS = 4.7e9


@dataclass
class Workload:
    """One stream of inputs: our items, the card's conversations (one per vector), how to call us."""

    name: str
    items: list[Content]
    conversations: list[list[dict[str, Any]]]
    streams: bool = False
    kind: str = "document"


@dataclass
class Row:
    workload: str
    side: str
    items: int
    seconds: float
    tokens: int
    flops: float
    peak_gib: float | None
    vectors: np.ndarray | None = None
    error: str | None = None


# -- the model --------------------------------------------------------------------------------------


def build_backend(tiny: bool, device: torch.device, dtype: torch.dtype, attn: str) -> QwenOmniBackend:
    """The thinker (full size with random weights, or the tiny checkpoint), bidirectional like the card's."""
    from transformers import AutoProcessor, Qwen2_5OmniThinkerModel

    path = tiny_checkpoint("native")
    processor = AutoProcessor.from_pretrained(path)
    if tiny:
        model = Qwen2_5OmniThinkerModel.from_pretrained(path, dtype=dtype, attn_implementation=attn)
    else:
        with torch.device(device):
            model = Qwen2_5OmniThinkerModel._from_config(full_config(), dtype=dtype, attn_implementation=attn)
    make_bidirectional(model.language_model)
    model = model.to(device).eval()
    return QwenOmniBackend(
        model, processor, model_id="qwen2.5-omni-3b-thinker-random" if not tiny else str(path)
    )


def full_config() -> Any:
    """The tiny checkpoint's config (its token ids match its processor) at Qwen2.5-Omni-3B's dimensions."""
    from transformers import Qwen2_5OmniThinkerConfig

    raw = json.loads((Path(tiny_checkpoint("native")) / "config.json").read_text())
    for key, values in (
        ("text_config", FULL_TEXT),
        ("vision_config", FULL_VISION),
        ("audio_config", FULL_AUDIO),
    ):
        raw[key].update(values)
    raw["text_config"].pop("layer_types", None)  # one entry per tiny layer: rebuilt for 36
    raw["text_config"].pop("max_window_layers", None)
    return Qwen2_5OmniThinkerConfig.from_dict(raw)


def parameter_counts(model: Any) -> dict[str, int]:
    """Parameters per stack; ``text`` excludes the embedding table (it costs no FLOPs)."""
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    text = model.language_model
    embedding = text.embed_tokens.weight.numel()
    return {
        "text": count(text) - embedding,
        "embedding": embedding,
        "vision": count(model.visual),
        "audio": count(model.audio_tower),
    }


def report_parameters(counts: dict[str, int]) -> None:
    """Print the count; the card's 4.7B includes the thinker's untied vocabulary head (dropped here)."""
    total = sum(counts.values())
    with_head = total + counts["embedding"]
    parts = " + ".join(f"{name} {amount(n)}" for name, n in counts.items())
    print(
        f"parameters: {parts} = {amount(total)}; with the vocabulary head {amount(with_head)} "
        f"(model card: {amount(int(CARD_PARAMETERS))})"
    )


def amount(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e8 else f"{n / 1e6:.2f}M"


def peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device).upper()
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key in name), None)


# -- the inputs ---------------------------------------------------------------------------------------


def passage(tokenizer: Any, tokens: int, rng: np.random.Generator) -> str:
    """Text of about ``tokens`` tokens (counted by the processor's tokenizer)."""
    words = ["lava", "river", "bread", "tide", "rocket", "revenue", "bees", "granite", "meeting", "signal"]
    text = " ".join(rng.choice(words, size=tokens * 2))
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:tokens]
    return str(tokenizer.decode(ids))


def clip(seconds: float, size: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Frames sampled at 2 fps (what frame arrays mean to the processor) and 16 kHz audio."""
    frames = rng.integers(0, 256, size=(int(seconds * 2), *size, 3), dtype=np.uint8)
    wave = (0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32)
    return frames, wave


def workloads(tokenizer: Any, tiny: bool, seed: int = 0) -> list[Workload]:
    """Text passages, queries, page images, 30-s and 60-s clips, and a mixed corpus."""
    rng = np.random.default_rng(seed)
    n = (lambda full, small: small) if tiny else (lambda full, small: full)
    p, q = "passage: ", "query: "
    out = []
    for tokens in (512, 1024):
        texts = [passage(tokenizer, tokens, rng) for _ in range(n(256, 6))]
        out.append(
            Workload(
                f"text {tokens}",
                [Content(text=t) for t in texts],
                [card_conversation(p, text=t) for t in texts],
            )
        )
    queries = [passage(tokenizer, int(rng.integers(8, 24)), rng) for _ in range(n(1024, 12))]
    out.append(
        Workload(
            "queries",
            [Content(text=t) for t in queries],
            [card_conversation(q, text=t) for t in queries],
            kind="query",
        )
    )
    page = (2200, 1700) if not tiny else (300, 220)
    pages = [Image.fromarray(rng.integers(0, 256, size=(*page, 3), dtype=np.uint8)) for _ in range(n(64, 3))]
    out.append(
        Workload(
            "page images", [Content(image=i) for i in pages], [card_conversation(p, image=i) for i in pages]
        )
    )
    frame = (360, 640) if not tiny else (56, 84)
    for seconds, count in ((n(30, 3), n(32, 1)), (n(60, 6), n(16, 1))):  # tiny: a tenth of the length
        clips = [clip(seconds, frame, rng) for _ in range(count)]
        out.append(clip_workload(f"video+audio {seconds}s", clips))
    out.append(mixed(out, rng))
    return out


def clip_workload(name: str, clips: list[tuple[np.ndarray, np.ndarray]]) -> Workload:
    """Each clip as two streams (late fusion): the card embeds the same two conversations."""
    items = [Content(video=frames, audio=wave) for frames, wave in clips]
    conversations = [stream_conversation(item, stream) for item in items for stream in stream_names(item)]
    return Workload(name, items, conversations, streams=True)


def mixed(parts: list[Workload], rng: np.random.Generator) -> Workload:
    """A quarter of each document workload, shuffled, embedded as streams (what ``index`` does)."""
    items: list[Content] = []
    for part in parts:
        if part.name != "queries":
            items.extend(part.items[: max(1, len(part.items) // 4)])
    order = rng.permutation(len(items))
    items = [items[i] for i in order]
    conversations = [stream_conversation(item, stream) for item in items for stream in stream_names(item)]
    return Workload("mixed corpus", items, conversations, streams=True)


def stream_names(item: Content) -> list[str]:
    from omni_rag.embedder.base import split_streams

    return list(split_streams(item))


def stream_conversation(item: Content, stream: str) -> list[dict[str, Any]]:
    if stream == "text":
        return card_conversation("passage: ", text=item.text or "")
    if stream == "image":
        return card_conversation("passage: ", image=item.image)
    if stream == "audio":
        return card_conversation("passage: ", audio=item.audio)
    return card_conversation("passage: ", video=[Image.fromarray(f) for f in np.asarray(item.video)])


# -- measuring -------------------------------------------------------------------------------------


def work(backend: QwenOmniBackend, workload: Workload, counts: dict[str, int]) -> tuple[int, float]:
    """Useful text-stack tokens and the FLOPs of every stack for the workload's vectors."""
    tokens, flops = 0, 0.0
    parts = [p for item in workload.items for p in (stream_parts(item) if workload.streams else [item])]
    for part in parts:
        inputs = backend.prepare(part, kind=workload.kind, index=0).inputs  # type: ignore[arg-type]
        features = inputs.features
        patches = sum(
            int(features[k].prod(-1).sum()) for k in ("image_grid_thw", "video_grid_thw") if k in features
        )
        frames = (
            int(features["feature_attention_mask"].sum()) // 2 if "feature_attention_mask" in features else 0
        )
        tokens += inputs.num_tokens
        flops += 2 * (
            counts["text"] * inputs.num_tokens + counts["vision"] * patches + counts["audio"] * frames
        )
    return tokens, flops


def stream_parts(item: Content) -> list[Content]:
    from omni_rag.embedder.base import split_streams

    return list(split_streams(item).values())


def timed(
    device: torch.device, fn: Callable[[], np.ndarray]
) -> tuple[float, np.ndarray | None, float | None, str | None]:
    """Seconds, result, peak GiB (CUDA) and an out-of-memory note instead of a crash."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    try:
        result: np.ndarray | None = fn()
        error = None
    except torch.OutOfMemoryError as oom:
        result, error = None, f"out of memory: {str(oom).splitlines()[0][:80]}"
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return seconds, result, peak, error


def ours(embedder: OmniEmbedder, workload: Workload) -> np.ndarray:
    if workload.kind == "query":
        return embedder.embed_queries(workload.items)
    if not workload.streams:
        return embedder.embed_documents(workload.items)
    streams = embedder.embed_document_streams(workload.items)
    return np.stack([vec for entry in streams for vec in entry.values()])


def card(backend: QwenOmniBackend, workload: Workload, batch: int) -> np.ndarray:
    conv = workload.conversations
    rows = [
        card_embed(backend.model, backend.processor.processor, conv[i : i + batch])
        for i in range(0, len(conv), batch)
    ]
    return np.concatenate(rows)


def measure(
    backend: QwenOmniBackend, embedder: OmniEmbedder, workload: Workload, args: argparse.Namespace
) -> list[Row]:
    counts = parameter_counts(backend.model)
    tokens, flops = work(backend, workload, counts)
    device = backend.device
    rows = []
    sides: list[tuple[str, Callable[[], np.ndarray]]] = [("omni-rag", lambda: ours(embedder, workload))]
    if not args.skip_card:
        sides.append(("card", lambda: card(backend, workload, args.card_batch_size)))
    for side, fn in sides:
        seconds, vectors, peak, error = timed(device, fn)
        rows.append(
            Row(workload.name, side, len(workload.items), seconds, tokens, flops, peak, vectors, error)
        )
    return rows


# -- reporting ------------------------------------------------------------------------------------------


HEADER = (
    f"{'workload':<20} {'side':<9} {'items':>6} {'s':>8} {'items/s':>9} {'tokens/s':>10} "
    f"{'MFU':>6} {'peak GiB':>8} {'1-cos':>8} {'ratio':>6}"
)


def render(rows: list[Row], peak: float | None) -> list[str]:
    """One line per workload and side; ``ratio`` is omni-rag's speed over the card's."""
    lines = []
    by_workload: dict[str, dict[str, Row]] = {}
    for row in rows:
        by_workload.setdefault(row.workload, {})[row.side] = row
    for sides in by_workload.values():
        mine, theirs = sides.get("omni-rag"), sides.get("card")
        for row in sides.values():
            lines.append(render_row(row, peak, mine, theirs))
    return lines


def render_row(row: Row, peak: float | None, mine: Row | None, theirs: Row | None) -> str:
    head = f"{row.workload:<20} {row.side:<9} {row.items:>6}"
    if row.error is not None:
        return f"{head} {row.error}"
    mfu = f"{100 * row.flops / row.seconds / (peak * 1e12):5.1f}%" if peak else "   n/a"
    memory = f"{row.peak_gib:8.1f}" if row.peak_gib is not None else "     n/a"
    distance, ratio = "", ""
    if mine is not None and theirs is not None and mine.vectors is not None and theirs.vectors is not None:
        distance = f"{float(np.max(1 - np.sum(mine.vectors * theirs.vectors, axis=1))):.1e}"
        if row.side == "omni-rag" and theirs.error is None:
            ratio = f"{theirs.seconds / row.seconds:5.2f}x"
    return (
        f"{head} {row.seconds:8.2f} {row.items / row.seconds:9.2f} {row.tokens / row.seconds:10.0f} "
        f"{mfu} {memory} {distance:>8} {ratio:>6}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--tiny", action="store_true", help="tiny checkpoint on the CPU (tests the code path)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="OmniEmbedder items cap (default 512, tiny 8)"
    )
    parser.add_argument(
        "--max-tokens-per-batch", type=int, default=None, help="default: from free GPU memory"
    )
    parser.add_argument(
        "--num-workers", type=int, default=None, help="preparation threads (default min(4, cpus))"
    )
    parser.add_argument("--card-batch-size", type=int, default=8, help="the card's fixed batch size")
    parser.add_argument("--only", default="", help="comma-separated workload names (default: all)")
    parser.add_argument("--skip-card", action="store_true", help="measure OmniEmbedder only")
    return parser.parse_args(argv)


def setup(args: argparse.Namespace) -> tuple[QwenOmniBackend, OmniEmbedder]:
    cuda = torch.cuda.is_available() and not args.tiny
    if not cuda and not args.tiny:
        sys.exit("no CUDA device: the full-size benchmark needs a GPU (use --tiny to test the code path)")
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    try:
        import flash_attn  # noqa: F401

        attn = "flash_attention_2" if cuda else "sdpa"
    except ImportError:
        attn = "sdpa"
    backend = build_backend(args.tiny, device, dtype, attn)
    batch_size = args.batch_size or (8 if args.tiny else 512)
    embedder = OmniEmbedder(
        backend,
        batch_size=batch_size,
        max_tokens_per_batch=args.max_tokens_per_batch,
        num_workers=args.num_workers,
    )
    name = torch.cuda.get_device_name(device) if cuda else "CPU"
    print(
        f"device {name}, {dtype}, attention {attn}, packed {backend.packed}, batch size {batch_size}, "
        f"max_tokens_per_batch {embedder.max_tokens_per_batch}, num_workers {embedder.num_workers}, "
        f"card batch size {args.card_batch_size}"
    )
    return backend, embedder


def main(argv: list[str] | None = None) -> list[str]:
    """Run every workload on both sides; prints and returns the table's lines."""
    args = parse_args(argv)
    torch.manual_seed(0)
    backend, embedder = setup(args)
    report_parameters(parameter_counts(backend.model))
    peak = peak_tflops(backend.device)
    print(f"bf16 dense peak: {peak or 'unknown'} TFLOP/s")
    chosen = workloads(backend.processor.processor.tokenizer, args.tiny)
    if args.only:
        wanted = {w.strip() for w in args.only.split(",")}
        chosen = [w for w in chosen if w.name in wanted]
    first = chosen[0]
    warm = Workload("warm-up", first.items[:2], first.conversations[:2], first.streams, first.kind)
    measure(backend, embedder, warm, args)  # kernels, allocator, caches: not timed
    rows = [row for workload in chosen for row in measure(backend, embedder, workload, args)]
    lines = [HEADER, *render(rows, peak)]
    print("\n".join(lines), flush=True)
    return lines


if __name__ == "__main__":
    main()
