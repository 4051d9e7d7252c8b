"""Throughput machinery on the tiny checkpoint: token budgets, packing, workers, OOM back-off, progress.

The model always runs for real; where a test needs to see or perturb what happens (batch sizes,
timing, an out-of-memory error a CPU never raises) it wraps the real backend's method and calls it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from omni_rag import Content, OmniEmbedder, OmniInputError
from omni_rag.embedder.batching import length_sorted_batches
from omni_rag.embedder.budget import CPU_TOKENS_PER_BATCH, is_out_of_memory, tokens_per_batch_for
from omni_rag.embedder.pipeline import Prefetcher, PrepPool, Workers
from omni_rag.embedder.qwen_omni.packing import PackedBatch, block_mask

TEXTS = [
    "Lava flows downhill.",
    "A spider has eight legs, and most spiders have eight eyes as well.",
    "Paris is the capital of France.",
    "The meeting moved to Tuesday afternoon at three o'clock, in the large room on the second floor.",
    "Photosynthesis converts light into chemical energy.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 2025 3.14 42.",
]


def max_cos_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(1.0 - np.sum(a * b, axis=1)))


def sibling(embedder: OmniEmbedder, **options: Any) -> OmniEmbedder:
    """Another embedder on the same loaded backend (no reload), with other run options."""
    return OmniEmbedder(embedder.backend, **options)


def batch_tokens(batch: Any) -> int:
    """Positions the text stack computes for a collated batch (padded or packed)."""
    if isinstance(batch, PackedBatch):
        return int(sum(batch.lengths))
    return int(batch["input_ids"].numel())


def record_batches(monkeypatch: pytest.MonkeyPatch, backend: Any) -> list[tuple[int, int]]:
    """Wrap the real ``embed_collated``: remember each batch's (items, tokens), then run it."""
    sizes: list[tuple[int, int]] = []
    real = backend.embed_collated

    def spy(batch: Any, *, kind: str) -> np.ndarray:
        vectors = real(batch, kind=kind)
        sizes.append((len(vectors), batch_tokens(batch)))
        return vectors

    monkeypatch.setattr(backend, "embed_collated", spy)
    return sizes


# -- token-budget batching -------------------------------------------------------------------------


def test_padded_budget_counts_padded_tokens_and_keeps_the_half_rule() -> None:
    lengths = [100, 90, 80, 30, 95]
    batches = length_sorted_batches(lengths, batch_size=8, max_tokens_per_batch=300)
    assert batches == [[0, 4, 1], [2], [3]]  # 4 x 100 > 300; 80 would fit but 30 < 80 / 2
    assert length_sorted_batches(lengths, 8, 300)[1:] != [[2, 3]]


def test_packed_budget_counts_real_tokens_and_mixes_lengths() -> None:
    lengths = [100, 90, 80, 30, 95]
    batches = length_sorted_batches(lengths, batch_size=8, max_tokens_per_batch=300, packed=True)
    assert batches == [[0, 4, 1], [2, 3]]  # 100+95+90 = 285; then 80+30: no padding, no half rule
    assert all(sum(lengths[i] for i in b) <= 300 for b in batches)
    assert length_sorted_batches([500, 10], 8, 300, packed=True) == [[0], [1]]  # too long: alone
    with pytest.raises(ValueError, match="max_tokens_per_batch"):
        length_sorted_batches(lengths, 8, 0)


def test_default_budget_formula_and_cpu_constant(embedder: OmniEmbedder) -> None:
    # Qwen2.5-Omni-3B text stack in bf16 with 71 GB free (an 80 GB H100 after the weights)
    h100 = tokens_per_batch_for(71 * 10**9, hidden=2048, layers=36, intermediate=11008, dtype_bytes=2)
    assert 150_000 < h100 < 170_000 and h100 % 256 == 0
    assert tokens_per_batch_for(10**15, hidden=2048, layers=36, intermediate=11008, dtype_bytes=2) == 262144
    assert tokens_per_batch_for(10**6, hidden=2048, layers=36, intermediate=11008, dtype_bytes=2) == 2048
    assert embedder.max_tokens_per_batch == CPU_TOKENS_PER_BATCH


def test_a_budget_splits_batches_without_changing_vectors(
    embedder: OmniEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = embedder.embed_documents(TEXTS)
    lengths = sorted(
        embedder.backend.prepare(Content(text=t), kind="document", index=0).length for t in TEXTS
    )
    budget = 2 * lengths[-1]  # two of the longest per batch at most
    sizes = record_batches(monkeypatch, embedder.backend)
    tight = sibling(embedder, max_tokens_per_batch=budget, num_workers=1)
    vectors = tight.embed_documents(TEXTS)
    assert sum(n for n, _ in sizes) == len(TEXTS) and len(sizes) >= 3
    assert all(tokens <= budget for _, tokens in sizes)  # padded tokens within the budget
    assert max_cos_distance(vectors, reference) <= 1e-6


def test_max_batch_tokens_is_a_deprecated_alias(embedder: OmniEmbedder) -> None:
    with pytest.warns(DeprecationWarning, match="max_tokens_per_batch"):
        old = sibling(embedder, max_batch_tokens=4096)
    assert old.max_tokens_per_batch == 4096 == old.max_batch_tokens
    with pytest.raises(TypeError, match="not both"):  # refused outright, no warning first
        sibling(embedder, max_batch_tokens=1, max_tokens_per_batch=2)


# -- packed batches -----------------------------------------------------------------------------------


def test_block_mask_keeps_items_apart() -> None:
    mask = block_mask([2, 3], causal=False, device=torch.device("cpu"))[0, 0]
    assert mask.shape == (5, 5)
    assert mask[:2, :2].all() and mask[2:, 2:].all() and not mask[:2, 2:].any() and not mask[2:, :2].any()
    causal = block_mask([2, 3], causal=True, device=torch.device("cpu"))[0, 0]
    assert causal[4, 2] and not causal[2, 4] and not causal[2, 1]


@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_matches_padded_on_mixed_media(
    native_checkpoint: Path, media_dir: Path, bidirectional: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(5)
    items: list[Content | str] = [
        "short",
        "a considerably longer piece of text that would pad every other item " * 3,
        Content(audio=(0.1 * rng.standard_normal(16000 * 3)).astype(np.float32)),
        Content(text="with picture", image=str(media_dir / "picture.png")),
        Content(video=str(media_dir / "clip.mp4")),
        Content(text="a clip", video=str(media_dir / "clip.mp4"), audio=str(media_dir / "clip.mp4")),
    ]
    common = {"device": "cpu", "bidirectional": bidirectional, "num_workers": 1}
    padded = OmniEmbedder.from_pretrained(native_checkpoint, packing=False, **common)
    packed = OmniEmbedder.from_pretrained(native_checkpoint, packing=True, **common)
    sizes = record_batches(monkeypatch, packed.backend)
    a = padded.embed_documents(items, batch_size=len(items))
    b = packed.embed_documents(items, batch_size=len(items))
    assert [n for n, _ in sizes] == [len(items)]  # one packed row holds every length: no half rule
    assert max_cos_distance(a, b) <= 1e-5


def test_packing_is_refused_where_it_cannot_run(native_checkpoint: Path) -> None:
    with pytest.raises(ValueError, match=r"packing=True needs .* attention is 'eager'"):
        OmniEmbedder.from_pretrained(
            native_checkpoint, device="cpu", attn_implementation="eager", packing=True
        )
    eager = OmniEmbedder.from_pretrained(native_checkpoint, device="cpu", attn_implementation="eager")
    assert not eager.backend.packed  # type: ignore[attr-defined]  # default: padded unless flash-attention 2


# -- background workers -------------------------------------------------------------------------------


def test_prefetcher_runs_ahead_in_order_and_serially_without_workers() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def job(n: int) -> int:
        with lock:
            started.append(n)
        time.sleep(random.random() * 0.01)
        if n == 3:
            raise OmniInputError("bad", index=n)
        return n * n

    with Workers(4) as workers:
        feed: Prefetcher[int, int] = Prefetcher(workers, job, list(range(10)), ahead=3)
        outcomes = [feed.take() for _ in range(10)]
    assert [o.job for o in outcomes] == list(range(10))
    assert [o.value for o in outcomes if o.error is None] == [n * n for n in range(10) if n != 3]
    assert isinstance(outcomes[3].error, OmniInputError) and feed.exhausted
    started.clear()
    with Workers(1) as serial:
        feed = Prefetcher(serial, job, list(range(5)), ahead=3)
        assert started == [] and feed.poll() == []  # nothing runs before it is asked for
        feed.take()
        assert started == [0]


def test_workers_keep_order_and_attribute_errors(
    embedder: OmniEmbedder, media_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good: list[Content | str] = [
        *TEXTS[:3],
        Content(audio=str(media_dir / "tone.wav")),
        Content(text="with picture", image=str(media_dir / "picture.png")),
        Content(video=str(media_dir / "clip.mp4")),
    ]
    serial = sibling(embedder, num_workers=1, batch_size=2).embed_documents(good)
    real_prepare = embedder.backend.prepare
    threads: set[str] = set()

    def slow_prepare(item: Content, *, kind: Any, index: int) -> Any:
        threads.add(threading.current_thread().name)
        time.sleep(random.Random(index).random() * 0.05)  # later items often finish first
        return real_prepare(item, kind=kind, index=index)

    monkeypatch.setattr(embedder.backend, "prepare", slow_prepare)
    parallel = sibling(embedder, num_workers=4, batch_size=2)
    assert max_cos_distance(parallel.embed_documents(good), serial) <= 1e-6
    assert any(name.startswith("omni-rag-prep") for name in threads)
    no_track = Content(audio=str(media_dir / "silent.mp4"))  # fails in a worker, like index 2
    items = [*good[:2], Content(audio="/missing.wav"), *good[2:5], no_track, good[5]]
    result = parallel.embed_documents(items, errors="skip")
    assert [(f.index, f.field) for f in result.failures] == [(2, "audio"), (6, "audio")]
    assert result.ok_indices == [0, 1, 3, 4, 5, 7]
    kept = np.stack([result.embeddings[i] for i in result.ok_indices])  # type: ignore[misc]
    assert max_cos_distance(kept, serial) <= 1e-6
    with pytest.raises(OmniInputError) as caught:
        parallel.embed_documents(items)
    assert (caught.value.index, caught.value.field) == (2, "audio")  # the first in input order


def prep_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("omni-rag-prep")}


def test_preparation_threads_are_kept_between_calls(embedder: OmniEmbedder, media_dir: Path) -> None:
    # starting threads per call cost a single-query search 2-3 ms; the embedder keeps its own
    items: list[Content | str] = [Content(audio=str(media_dir / "tone.wav")), *TEXTS[:3]]
    parallel = sibling(embedder, num_workers=2)
    before = prep_threads()
    first = parallel.embed_documents(items)
    kept = prep_threads() - before
    assert 1 <= len(kept) <= 2
    for _ in range(5):
        assert max_cos_distance(parallel.embed_documents(items), first) <= 1e-6
    assert prep_threads() - before == kept  # the same threads, no new ones
    parallel.num_workers = 3  # a new size gets a new pool; the old one goes with its last user
    assert max_cos_distance(parallel.embed_documents(items), first) <= 1e-6
    assert parallel._prep_pool.get(3) is not parallel._prep_pool.get(2)


def test_a_failed_call_leaves_nothing_running_on_the_shared_pool() -> None:
    pool = PrepPool().get(2)
    assert pool is not None and PrepPool().get(1) is None
    ran: list[int] = []

    def job(n: int) -> int:
        time.sleep(0.05)
        ran.append(n)
        return n

    with pytest.raises(RuntimeError), Workers(2, pool) as workers:
        futures = [workers.submit(lambda n=n: job(n)) for n in range(20)]
        raise RuntimeError("the caller failed")
    settled = len(ran)
    assert settled < 20 and sum(f.cancelled() for f in futures) == 20 - settled
    time.sleep(0.2)
    assert len(ran) == settled  # nothing of the failed call ran after it left
    with Workers(2, pool) as workers:  # the pool itself still serves the next call
        assert workers.submit(lambda: 7).result() == 7


def test_text_that_fits_one_group_is_prepared_in_the_callers_thread(
    embedder: OmniEmbedder, media_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # text holds the GIL while it is tokenised: with nothing to overlap, threads only add hand-offs
    threads: list[str] = []
    real_prepare = embedder.backend.prepare

    def spy(item: Content, *, kind: Any, index: int) -> Any:
        threads.append(threading.current_thread().name)
        return real_prepare(item, kind=kind, index=index)

    monkeypatch.setattr(embedder.backend, "prepare", spy)
    parallel = sibling(embedder, num_workers=2, batch_size=2)
    caller = threading.current_thread().name
    parallel.embed_queries(["one query"])
    parallel.embed_queries(TEXTS[:8])  # 8 items: the first group holds 4 batches of 2
    assert set(threads) == {caller}
    threads.clear()
    parallel.embed_queries(TEXTS * 2)  # 12 items: later groups are prepared while the model runs
    parallel.embed_queries([*TEXTS[:2], Content(audio=str(media_dir / "tone.wav"))])
    assert threads and all(name.startswith("omni-rag-prep") for name in threads)


# -- out-of-memory back-off ---------------------------------------------------------------------------


def inject_oom(
    monkeypatch: pytest.MonkeyPatch, backend: Any, limit: int, make: Callable[[str], Exception]
) -> list[int]:
    """Make ``embed_collated`` fail like CUDA does above ``limit`` tokens; returns tried batch tokens."""
    tried: list[int] = []
    real = backend.embed_collated

    def guarded(batch: Any, *, kind: str) -> np.ndarray:
        tokens = batch_tokens(batch)
        tried.append(tokens)
        if tokens > limit:
            raise make(f"CUDA out of memory. Tried to allocate {tokens} tokens worth")
        return real(batch, kind=kind)

    monkeypatch.setattr(backend, "embed_collated", guarded)
    return tried


@pytest.mark.parametrize("packing", [False, True])
def test_oom_splits_batches_and_fails_only_the_item_that_never_fits(
    native_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, packing: bool
) -> None:
    embedder = OmniEmbedder.from_pretrained(native_checkpoint, device="cpu", packing=packing, num_workers=2)
    huge = "lava flows downhill and the village below is evacuated " * 12
    items = [*TEXTS[:4], huge, *TEXTS[4:]]
    reference = embedder.embed_documents(items)
    huge_tokens = embedder.backend.prepare(Content(text=huge), kind="document", index=4).length
    short_tokens = max(
        embedder.backend.prepare(Content(text=t), kind="document", index=0).length for t in TEXTS
    )
    limit = 2 * short_tokens + 1  # two short items fit; the huge one never does
    assert huge_tokens > limit
    tried = inject_oom(monkeypatch, embedder.backend, limit, torch.cuda.OutOfMemoryError)
    with caplog.at_level(logging.WARNING):
        result = embedder.embed_documents(items, batch_size=len(items), errors="skip")
    assert any(t > limit for t in tried) and len(tried) > 2
    assert [(f.index, f.field) for f in result.failures] == [(4, "item")]
    assert f"{huge_tokens} tokens" in result.failures[0].reason
    assert "retrying in halves" in caplog.text
    ok = [i for i in range(len(items)) if i != 4]
    assert result.ok_indices == ok
    kept = np.stack([result.embeddings[i] for i in ok])  # type: ignore[misc]
    assert max_cos_distance(kept, reference[ok]) <= 1e-5
    with pytest.raises(OmniInputError, match=f"out of memory embedding its {huge_tokens} tokens") as caught:
        embedder.embed_documents(items, batch_size=len(items))
    assert caught.value.index == 4


def test_generic_out_of_memory_runtime_error_backs_off_too(
    embedder: OmniEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = embedder.embed_documents(TEXTS[:4])
    run = sibling(embedder, num_workers=1)
    limit = max(run.backend.prepare(Content(text=t), kind="document", index=0).length for t in TEXTS[:4])
    inject_oom(monkeypatch, run.backend, limit, RuntimeError)  # one item per pass fits
    assert max_cos_distance(run.embed_documents(TEXTS[:4]), reference) <= 1e-6
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory")) and not is_out_of_memory(
        RuntimeError("shape mismatch")
    )


def test_other_errors_are_not_mistaken_for_oom(
    embedder: OmniEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(batch: Any, *, kind: str) -> np.ndarray:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(embedder.backend, "embed_collated", broken)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        embedder.embed_documents(TEXTS[:2], errors="skip")


# -- progress bar ----------------------------------------------------------------------------------------


def test_progress_bar_on_request_off_by_default(
    embedder: OmniEmbedder, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    embedder.embed_documents(TEXTS, show_progress_bar=True)
    shown = capsys.readouterr().err
    assert "embedding" in shown and f"{len(TEXTS)}/{len(TEXTS)}" in shown
    embedder.embed_queries(TEXTS[:2])
    assert "embedding" not in capsys.readouterr().err
    with caplog.at_level(logging.INFO, logger="omni_rag.embedder.embedder"):
        embedder.embed_queries(TEXTS[:2])  # sentence-transformers' rule: INFO logging shows it
    assert "2/2" in capsys.readouterr().err
    quiet = sibling(embedder, show_progress_bar=False)
    with caplog.at_level(logging.INFO, logger="omni_rag.embedder.embedder"):
        quiet.embed_document_streams(TEXTS[:2])
    assert "embedding" not in capsys.readouterr().err


def test_truncating_tokenizer_is_safe_across_workers(native_checkpoint: Path, media_dir: Path) -> None:
    # text-only items switch the fast tokenizer's truncation on, the others off: in threads that
    # switch must not collide ("Already borrowed" would turn into a skipped item)
    picture = str(media_dir / "picture.png")
    items: list[Content | str] = [
        t if i % 2 else Content(text=t, image=picture) for i, t in enumerate(TEXTS * 2)
    ]
    threaded = OmniEmbedder.from_pretrained(native_checkpoint, device="cpu", truncate=True, num_workers=4)
    result = threaded.embed_documents(items, errors="skip")
    assert result.failures == []
    serial = sibling(threaded, num_workers=1).embed_documents(items)
    assert max_cos_distance(np.stack(result.embeddings), serial) <= 1e-6  # type: ignore[arg-type]
