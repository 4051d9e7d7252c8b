"""``omni-rag verify`` on tiny checkpoints: passes as loaded, and names each injected fault.

Faults are injected through the embedder's real options (``bidirectional``, ``prompts``,
``video_options``, ``videos_kwargs``), the same knobs a user could turn by mistake.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

import omni_rag
from omni_rag.card import CARD_VIDEOS_KWARGS
from omni_rag.checkpoints import DEFAULT_MODEL
from omni_rag.cli import ExitCode, main
from omni_rag.verify import EXAMPLES_DIR, VerifyReport, verify
from omni_rag.verify.environment import bf16_peak_tflops
from omni_rag.verify.retrieval import load_queries, retrieval_step

FIDELITY_ONLY = ("fidelity",)


def statuses(report: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {step["name"]: step["status"] for step in report["steps"]}


def test_cli_passes_on_the_tiny_checkpoint(
    custom_checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["verify", "--model", str(custom_checkpoint), "--device", "cpu", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == ExitCode.OK, report
    assert report["ok"] is True
    assert statuses(report) == {
        "environment": "pass",
        "loading": "pass",
        "fidelity": "pass",
        "retrieval": "skipped",
        "speed": "pass",
    }
    steps = {s["name"]: s for s in report["steps"]}
    assert "not meaningful for random weights" in steps["retrieval"]["summary"]
    loading = {c["name"]: c for c in steps["loading"]["checks"]}
    assert loading["path"]["detail"] == "native Qwen2_5OmniThinkerModel, bidirectional attention"
    assert "all weights consumed" in loading["weights"]["detail"]
    fidelity = {c["name"]: c for c in steps["fidelity"]["checks"]}
    distances = fidelity["card parity"]["data"]["one_minus_cos"]
    assert {"text query", "image", "audio mp3", "video", "text+video+audio"} <= set(distances)
    assert max(distances.values()) <= 1e-5
    assert fidelity["attention"]["data"]["relative_change"] > 1e-3
    speeds = {c["name"]: c["data"]["items_per_s"] for c in steps["speed"]["checks"]}
    assert set(speeds) == {"text", "image", "audio", "video"} and min(speeds.values()) > 0


def test_python_api_is_exported(custom_checkpoint: Path) -> None:
    report = omni_rag.verify(custom_checkpoint, device="cpu", steps=())
    assert isinstance(report, VerifyReport) and report.ok
    assert report.step("fidelity").status == "skipped"
    assert "PASS     loading" in report.render()


@pytest.mark.parametrize(
    ("options", "failing_check", "named"),
    [
        ({"bidirectional": False}, "attention", "attention is causal, not bidirectional"),
        (
            {"prompts": {"query": "query:", "document": "passage: "}},
            "card parity",
            "query prompt is 'query:'",
        ),
        ({"video_options": {"fps": 1.0}}, "card parity", "video option fps=1.0"),
        (
            {"videos_kwargs": {**CARD_VIDEOS_KWARGS, "max_pixels": 32 * 28 * 28}},
            "card parity",
            "videos_kwargs['size'] is {'shortest_edge': 6272, 'longest_edge': 25088}",
        ),
    ],
    ids=["causal load", "wrong prompt", "fps changed", "max_pixels changed"],
)
def test_an_injected_fault_fails_fidelity_naming_it(
    custom_checkpoint: Path,
    options: dict,
    failing_check: str,
    named: str,  # type: ignore[type-arg]
) -> None:
    report = verify(custom_checkpoint, device="cpu", embedder_kwargs=options, steps=FIDELITY_ONLY)
    assert not report.ok
    fidelity = report.step("fidelity")
    assert fidelity.status == "fail"
    failed = {c.name: c.detail for c in fidelity.checks if c.status == "fail"}
    assert failing_check in failed, failed
    assert named in failed[failing_check]
    assert report.step("loading").status == "pass"


def test_a_fault_exits_with_verify_failed(
    custom_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI's exit code for a failed check, with the report on stdout."""
    from omni_rag.embedder.qwen_omni import model

    monkeypatch.setattr(model, "DEFAULT_PROMPTS", {"query": "query: ", "document": "doc: "})
    code = main(["verify", "-m", str(custom_checkpoint), "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == ExitCode.VERIFY_FAILED
    assert "FAIL     fidelity" in out and "document prompt is 'doc: ' (card: 'passage: ')" in out
    assert out.rstrip().endswith("verification FAILED")


def test_a_step_that_crashes_fails_and_the_rest_still_run(custom_checkpoint: Path, tmp_path: Path) -> None:
    """A broken example file: fidelity fails with the error, speed still reports."""
    shutil.copytree(EXAMPLES_DIR, tmp_path / "examples")
    (tmp_path / "examples" / "media" / "ocean_tides.mp4").write_bytes(b"not a video")
    report = verify(
        custom_checkpoint, device="cpu", examples=tmp_path / "examples", steps=("fidelity", "speed")
    )
    (check,) = report.step("fidelity").checks
    assert check.status == "fail" and check.detail.startswith("crashed: OmniInputError")
    assert "video" in check.detail
    speed = {c.name: c.status for c in report.step("speed").checks}
    assert speed["text"] == "pass" and speed["video"] == "skipped"


def test_plain_thinker_checkpoint_skips_the_attention_check(native_checkpoint: Path) -> None:
    report = verify(native_checkpoint, device="cpu", steps=FIDELITY_ONLY)
    checks = {c.name: c for c in report.step("fidelity").checks}
    assert report.ok
    assert checks["attention"].status == "skipped"
    assert "attention is causal" in checks["attention"].detail
    assert checks["card parity"].status == "pass"


def test_official_id_offline_fails_fast_with_the_local_copy_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("OMNI_RAG_MODEL", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    started = time.perf_counter()
    code = main(["verify"])
    assert time.perf_counter() - started < 5
    assert code == ExitCode.MODEL_LOAD
    err = capsys.readouterr().err
    assert DEFAULT_MODEL in err and "Use a local copy" in err


def test_python_api_offline_reports_the_load_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    report = verify(DEFAULT_MODEL, device="cpu")
    assert not report.ok
    assert "Use a local copy" in report.step("loading").summary
    assert [report.step(s).status for s in ("fidelity", "retrieval", "speed")] == ["skipped"] * 3


def test_retrieval_ranks_every_demo_query(embedder: omni_rag.OmniEmbedder) -> None:
    """Forced on random weights: every query is ranked against the whole corpus (values meaningless)."""
    step = retrieval_step(embedder, EXAMPLES_DIR / "media", EXAMPLES_DIR / "queries", force=True)
    queries = load_queries(EXAMPLES_DIR / "queries")
    (check,) = step.checks
    results = check.data["queries"]
    assert [r["query"] for r in results] == [q.label for q in queries] and len(queries) == 12
    corpus = {
        p.name for p in (EXAMPLES_DIR / "media").iterdir() if p.suffix != ".py" and p.name != "README.md"
    }
    assert len(corpus) == 8
    for result in results:
        assert result["top"] in corpus and 1 <= result["rank"] <= 8
    passed = sum(r["rank"] == 1 for r in results)
    assert check.data["passed"] == passed
    assert step.reason == f"{passed}/12 queries rank the expected file first (at least 9 needed)"
    assert check.status == ("pass" if passed >= 9 else "fail")


@pytest.mark.parametrize(
    ("name", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA A10", 125.0),
        ("NVIDIA L40S", 362.0),
        ("NVIDIA L4", 121.0),
        ("Tesla T4", None),
    ],
)
def test_bf16_peak_table(name: str, tflops: float | None) -> None:
    assert bf16_peak_tflops(name) == tflops
