"""Resolving how a checkpoint is loaded: device, dtype, attention, revision, remote code.

Kept apart from the model code so every backend picks the same defaults and
refuses remote code the same way.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import torch

from omni_rag.checkpoints import DEFAULT_MODEL, OFFICIAL_REVISIONS
from omni_rag.errors import OmniError

__all__ = [
    "DEFAULT_MODEL",
    "OFFICIAL_REVISIONS",
    "HubKwargs",
    "LoadOptions",
    "ModelLoadError",
    "resolve_load_options",
]


class ModelLoadError(OmniError):
    """A checkpoint could not be resolved or loaded; the message says what to do."""


class HubKwargs(TypedDict, total=False):
    """Where the files come from, shared by the model's and the processor's ``from_pretrained``.

    A key is left out rather than set to ``None``: transformers types ``revision`` as ``str``.
    """

    revision: str
    trust_remote_code: bool


@dataclass(frozen=True)
class LoadOptions:
    """Everything ``from_pretrained`` decided, recorded so the store can keep it."""

    name_or_path: str
    revision: str | None
    device: torch.device
    dtype: torch.dtype
    attn_implementation: str
    trust_remote_code: bool
    config: dict[str, Any]

    def hub_kwargs(self) -> HubKwargs:
        """The source options for every ``from_pretrained`` of this checkpoint."""
        kwargs = HubKwargs(trust_remote_code=self.trust_remote_code)
        if self.revision is not None:
            kwargs["revision"] = self.revision
        return kwargs


def resolve_device(device: str | torch.device | None) -> torch.device:
    """CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """bf16 on CUDA (what the card runs), fp32 on CPU (bf16 matmuls are slow there)."""
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype, None)
        if not isinstance(resolved, torch.dtype):
            raise ModelLoadError(f"unknown dtype {dtype!r}")
        return resolved
    return dtype


def resolve_attention(attn_implementation: str | None, device: torch.device) -> str:
    """flash_attention_2 when installed on CUDA (the card's choice), else PyTorch SDPA."""
    if attn_implementation is not None:
        return attn_implementation
    if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def read_config(name_or_path: str, revision: str | None) -> dict[str, Any]:
    """Read ``config.json`` without executing any code, to choose the backend and remote-code policy."""
    local = Path(name_or_path)
    if local.is_dir():
        config_file = local / "config.json"
        if not config_file.is_file():
            raise ModelLoadError(f"{name_or_path} is a folder without config.json; is it a checkpoint?")
        return dict(json.loads(config_file.read_text()))
    try:
        from transformers import PretrainedConfig

        config, _ = PretrainedConfig.get_config_dict(name_or_path, revision=revision)
    except Exception as error:  # the hub raises many types; all mean "can't get the config"
        hint = (
            "Weights could not be fetched. Use a local copy: pass its folder as the model "
            "(--model PATH or OMNI_RAG_MODEL=PATH), e.g. one made with `huggingface-cli download "
            f"{name_or_path}` on a machine with access."
        )
        raise ModelLoadError(f"cannot load the config of {name_or_path!r}: {error}. {hint}") from error
    return dict(config)


def resolve_trust_remote_code(
    name_or_path: str, config: dict[str, Any], trust_remote_code: bool | None, *, native_ok: bool = False
) -> bool:
    """Run a checkpoint's own code only where it needs it, and only when that is explicit.

    A checkpoint a backend runs on transformers' own classes (``native_ok``) never needs its
    code; the caller may still ask for it. Otherwise the official ids are trusted at their
    pinned revision, and any other checkpoint whose config maps to custom code must be loaded
    with ``trust_remote_code=True``.
    """
    has_code = bool(config.get("auto_map"))
    if native_ok:
        return bool(trust_remote_code) and has_code
    needs_code = has_code
    if trust_remote_code is not None:
        if needs_code and not trust_remote_code:
            raise ModelLoadError(
                f"{name_or_path} ships its own modelling code (config auto_map); it cannot be "
                "loaded with trust_remote_code=False"
            )
        return trust_remote_code and needs_code
    if not needs_code:
        return False
    if name_or_path in OFFICIAL_REVISIONS:
        return True
    raise ModelLoadError(
        f"{name_or_path} ships its own modelling code (config auto_map: {sorted(config['auto_map'])}); "
        "read it, then pass trust_remote_code=True to run it"
    )


def resolve_revision(name_or_path: str, revision: str | None) -> str | None:
    """The caller's revision, else the pinned one for an official id; local folders have none."""
    if revision is not None:
        return revision
    if os.path.isdir(name_or_path):
        return None
    return OFFICIAL_REVISIONS.get(name_or_path)


def resolve_load_options(
    name_or_path: str | os.PathLike[str],
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    attn_implementation: str | None = None,
    revision: str | None = None,
    trust_remote_code: bool | None = None,
    native_ok: Callable[[dict[str, Any]], bool] | None = None,
) -> LoadOptions:
    """Apply every default in one place; reads only ``config.json``.

    ``native_ok(config)`` tells whether the chosen backend runs this checkpoint without its code.
    """
    name = os.fspath(name_or_path)
    revision = resolve_revision(name, revision)
    config = read_config(name, revision)
    resolved_device = resolve_device(device)
    return LoadOptions(
        name_or_path=name,
        revision=revision,
        device=resolved_device,
        dtype=resolve_dtype(dtype, resolved_device),
        attn_implementation=resolve_attention(attn_implementation, resolved_device),
        trust_remote_code=resolve_trust_remote_code(
            name, config, trust_remote_code, native_ok=bool(native_ok and native_ok(config))
        ),
        config=config,
    )
