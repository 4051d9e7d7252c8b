"""``benchmarks/bench_gpu.py``: its code path on the CPU (``--tiny``) and the full-size model's size.

The full-size run needs a GPU; what can be checked without one is that every workload produces a
row per side with matching vectors, and that the configuration it builds is the published model.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gpu.py"
WORKLOADS = (
    "text 512",
    "text 1024",
    "queries",
    "page images",
    "video+audio 3s",
    "video+audio 6s",
    "mixed corpus",
)


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_gpu"] = module
    spec.loader.exec_module(module)
    return module


def test_tiny_run_has_a_row_per_workload_and_side(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = bench.main(["--tiny"])
    printed = capsys.readouterr().out
    assert "parameters:" in printed and "items/s" in lines[0] and "MFU" in lines[0]
    rows = {(line[:20].strip(), line[21:30].strip()): line.split() for line in lines[1:]}
    assert set(rows) == {(w, side) for w in WORKLOADS for side in ("omni-rag", "card")}
    for workload in WORKLOADS:
        ours = rows[(workload, "omni-rag")]
        assert float(ours[-2]) <= 1e-5, (workload, ours)  # 1 - cos against the card's vectors
        assert ours[-1].endswith("x") and float(ours[-1][:-1]) > 0  # the speed ratio
        assert "n/a" in ours  # no MFU or GPU memory on the CPU, said so rather than invented


def test_full_size_config_is_the_published_model(bench: ModuleType) -> None:
    from transformers import Qwen2_5OmniThinkerModel

    with torch.device("meta"):
        model = Qwen2_5OmniThinkerModel._from_config(bench.full_config())
    counts = bench.parameter_counts(model)
    with_head = sum(counts.values()) + counts["embedding"]
    assert abs(with_head - 4.7e9) < 0.05e9  # the model card's 4.7B (thinker with its vocabulary head)
    assert 2.7e9 < counts["text"] < 2.9e9  # the "about 2.8B" text stack
    assert 0.6e9 < counts["vision"] < 0.7e9 and 0.6e9 < counts["audio"] < 0.7e9
