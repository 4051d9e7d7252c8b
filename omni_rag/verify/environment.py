"""Step 1: the software and hardware the verification ran on, for bug reports and speed context."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from typing import Any

import torch

from omni_rag.verify.report import StepResult

#: Distributions reported, and whether verification needs them.
PACKAGES: dict[str, bool] = {
    "torch": True,
    "transformers": True,
    "av": True,  # PyAV: every media decode
    "qwen-omni-utils": True,  # the card's resizing and frame sampling
    "qdrant-client": False,
    "qdrant-edge-py": False,
}
QDRANT_ENGINES: tuple[str, ...] = ("qdrant-client", "qdrant-edge-py")

#: Dense bf16 tensor-core peak (TFLOPS, no sparsity) from NVIDIA's datasheets, matched as a
#: substring of the device name, first match wins (so "H100 PCIe" before "H100", "A100" before "A10").
BF16_PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("GH200", 989.0),
    ("H200", 989.0),
    ("H100", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L40", 181.0),
    ("A10", 125.0),
    ("L4", 121.0),
)


def package_version(distribution: str) -> str | None:
    """Installed version of a distribution, ``None`` when it is absent."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def bf16_peak_tflops(device_name: str) -> float | None:
    """The table's dense bf16 peak for a device name; ``None`` when it is not listed."""
    for marker, tflops in BF16_PEAK_TFLOPS:
        if marker.lower() in device_name.lower():
            return tflops
    return None


def accelerator(device: torch.device) -> dict[str, Any]:
    """What the model runs on: CUDA device name, capability, memory, bf16 support and peak."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return {"device": str(device), "cuda_available": torch.cuda.is_available()}
    index = device.index if device.index is not None else torch.cuda.current_device()
    props = torch.cuda.get_device_properties(index)
    return {
        "device": f"cuda:{index}",
        "cuda_available": True,
        "name": props.name,
        "capability": f"{props.major}.{props.minor}",
        "memory_gib": round(props.total_memory / 2**30, 1),
        "cuda_version": torch.version.cuda,
        "bf16_supported": torch.cuda.is_bf16_supported(),
        "bf16_peak_tflops": bf16_peak_tflops(props.name),
    }


def environment_step(device: torch.device) -> StepResult:
    """Versions of what omni-rag runs on; fails only when a required package is missing."""
    step = StepResult("environment")
    versions = {name: package_version(name) for name in PACKAGES}
    for name, required in PACKAGES.items():
        version = versions[name]
        if version is not None:
            step.add(name, "pass", version, version=version)
        elif required:
            step.add(name, "fail", f"not installed; `pip install {name}`")
        else:
            step.add(name, "skipped", "not installed")
    if not any(versions[name] for name in QDRANT_ENGINES):
        step.add("qdrant engine", "fail", f"none of {', '.join(QDRANT_ENGINES)} is installed")
    info = accelerator(device)
    if "name" in info:
        peak = info["bf16_peak_tflops"]
        peak_text = f"{peak:g} TFLOPS bf16 peak" if peak else "bf16 peak not in the table"
        step.add("device", "pass", f"{info['name']} (sm {info['capability']}, {peak_text})", **info)
    else:
        step.add("device", "pass", f"{info['device']} (CUDA available: {info['cuda_available']})", **info)
    flash = importlib.util.find_spec("flash_attn") is not None
    step.add(
        "flash-attention", "pass", "installed" if flash else "not installed (SDPA is used)", present=flash
    )
    return step
