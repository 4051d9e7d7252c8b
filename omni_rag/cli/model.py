"""Choosing and loading the model, failing within seconds when the hub cannot be reached.

Without this, ``huggingface_hub`` retries an unreachable hub with back-off for about 40 s per
file before giving up, which looks like a hang to someone on an offline machine.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from omni_rag.checkpoints import DEFAULT_MODEL
from omni_rag.cli.errors import CliError, ExitCode

if TYPE_CHECKING:
    from omni_rag.embedder import OmniEmbedder


#: Environment variable naming the model when ``--model`` is not given.
MODEL_ENV = "OMNI_RAG_MODEL"

#: Seconds allowed for the hub connectivity check and for each hub metadata request.
HUB_TIMEOUT_S = 3.0

_LOCAL_HINT = (
    f"Use a local copy: pass its folder with --model PATH or set {MODEL_ENV}=PATH "
    f"(download it once with `hf download {DEFAULT_MODEL} --local-dir PATH` "
    "on a machine with access)."
)


def resolve_model_name(model: str | None) -> str:
    """``--model``, else ``$OMNI_RAG_MODEL``, else the official checkpoint."""
    if model:
        return model
    return os.environ.get(MODEL_ENV) or DEFAULT_MODEL


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def hub_offline() -> bool:
    """Whether the user already told huggingface_hub not to use the network."""
    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE"))


def hub_problem(timeout: float = HUB_TIMEOUT_S) -> str | None:
    """Open a TCP connection to the hub within ``timeout`` seconds.

    Runs in a daemon thread because a stuck DNS lookup ignores socket timeouts.

    Returns:
        ``None`` when the hub answers, else why it does not.
    """
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urllib.parse.urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme != "http" else 80)
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as error:
            outcome.append(f"{type(error).__name__}: {error}")

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    return outcome[0] if outcome else f"no answer from {host}:{port} within {timeout:g} s"


def prepare_hub() -> str | None:
    """Before loading a hub id: make it load fast or fail fast.

    Short metadata timeouts always; when the hub is unreachable, offline mode, so a copy in
    the local Hugging Face cache still loads and a missing one fails at once. Must run before
    ``huggingface_hub`` is imported, which reads these variables once.

    Returns:
        Why the hub is unreachable, or ``None``.
    """
    if hub_offline():
        return None
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(int(HUB_TIMEOUT_S)))
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(HUB_TIMEOUT_S)))
    problem = hub_problem()
    if problem is not None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        constants = sys.modules.get("huggingface_hub.constants")
        if constants is not None:  # imported already (e.g. by the demo's caller): flip it in place
            setattr(constants, "HF_HUB_OFFLINE", True)  # noqa: B010 - ModuleType has no declared attrs
    return problem


def _in_hub_cache(repo_id: str) -> Path | None:
    """The repo's folder in the local Hugging Face cache, if any revision of it was downloaded."""
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    return folder if (folder / "snapshots").is_dir() else None


def locate_model(model: str | None) -> str:
    """Resolve the model name and check, without importing torch, that it can be loaded at all.

    A hub id with the hub offline (``HF_HUB_OFFLINE``) or unreachable and no copy in the local
    cache fails here, in about a second, instead of after the multi-second torch import.

    Raises:
        CliError: ``MODEL_LOAD`` saying how to use a local copy.
    """
    name = resolve_model_name(model)
    if Path(name).exists():
        return name
    unreachable = prepare_hub()
    if (unreachable or hub_offline()) and _in_hub_cache(name) is None:
        why = (
            f"the hub is unreachable ({unreachable})" if unreachable else "the hub is off (HF_HUB_OFFLINE=1)"
        )
        raise CliError(
            f"cannot load model {name!r}: {why} and it is not in the local Hugging Face cache, nor a "
            f"local folder. {_LOCAL_HINT}",
            ExitCode.MODEL_LOAD,
        )
    return name


def embedder_from_args(args: argparse.Namespace) -> OmniEmbedder:
    """:func:`load_embedder` with the options every model-using command shares (``--model`` ...)."""
    return load_embedder(
        args.model, device=args.device, batch_size=args.batch_size, trust_remote_code=args.trust_remote_code
    )


def load_embedder(
    model: str | None,
    *,
    device: str | None = None,
    batch_size: int = 8,
    trust_remote_code: bool | None = None,
) -> OmniEmbedder:
    """Load the embedder the way every command does; a GPU-less machine gets a warning and the CPU.

    Raises:
        CliError: ``MODEL_LOAD`` naming the model, the cause and how to use a local copy.
    """
    name = locate_model(model)
    from omni_rag.embedder import ModelLoadError, OmniEmbedder

    try:
        return OmniEmbedder.from_pretrained(
            name, device=device, batch_size=batch_size, trust_remote_code=trust_remote_code
        )
    except (ModelLoadError, OSError, ValueError) as error:
        hint = "" if Path(name).exists() or "--model PATH" in str(error) else f" {_LOCAL_HINT}"
        raise CliError(f"cannot load model {name!r}: {error}{hint}", ExitCode.MODEL_LOAD) from error
