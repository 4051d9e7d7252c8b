"""What a Ray run needs to know: where the cluster is, how big the actor pool is, which model."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from omni_rag.errors import OmniError

#: The command that installs what ``--ray`` needs.
INSTALL_HINT = "pip install 'omni-rag[ray]'"


class RayMissingError(OmniError):
    """Ray (with Ray Data) is not installed: the message says how to install it."""


def require_ray() -> ModuleType:
    """Import ``ray`` and ``ray.data``, or explain how to get them.

    Raises:
        RayMissingError: naming the install command.
    """
    try:
        importlib.import_module("ray.data")
        return importlib.import_module("ray")
    except ImportError as error:
        raise RayMissingError(
            f"indexing with Ray needs ray[data], which is not installed ({error}); install it with: "
            f"{INSTALL_HINT}"
        ) from error


@dataclass(frozen=True)
class ModelSpec:
    """How every actor loads the model; the name must resolve on every node (hub id, or a folder
    at the same path on each machine).

    Attributes:
        name: Hub id or local folder.
        device: Torch device inside an actor; ``None``: its GPU when it was given one, else CPU.
        batch_size: Items per forward pass.
        trust_remote_code: As for :meth:`OmniEmbedder.from_pretrained
            <omni_rag.embedder.OmniEmbedder.from_pretrained>`.
    """

    name: str
    device: str | None = None
    batch_size: int = 8
    trust_remote_code: bool | None = None


@dataclass(frozen=True)
class RayOptions:
    """The cluster and the actor pool.

    Attributes:
        address: Ray cluster address (``auto``, ``ray://host:10001``, ``host:6379``); ``None``
            starts a local Ray on this machine. Ignored when Ray is already initialised.
        actors: Model copies (actors); ``None``: one per ``gpus_per_actor`` GPUs of the cluster,
            or one when it has no GPU.
        gpus_per_actor: GPUs reserved per actor (fractions share a GPU); ``None``: 1 when the
            cluster has GPUs, else 0 (CPU actors).
        cpus_per_actor: CPUs reserved per actor (decoding and preprocessing run there too).
        task_retries: Times Ray re-runs a chunk whose actor died; the actor is restarted each time.
            A chunk still without a result after that is reported failed, file by file.
        items_per_group: Files planned and chunked together, as the CLI adds them (``--batch-size``),
            so chunks, batches and hence vectors match a single-process run.
    """

    address: str | None = None
    actors: int | None = None
    gpus_per_actor: float | None = None
    cpus_per_actor: float = 1.0
    task_retries: int = 3
    items_per_group: int = 8

    def __post_init__(self) -> None:
        if self.actors is not None and self.actors < 1:
            raise ValueError(f"actors must be >= 1, got {self.actors}")
        if self.gpus_per_actor is not None and self.gpus_per_actor < 0:
            raise ValueError(f"gpus_per_actor must be >= 0, got {self.gpus_per_actor}")
        if self.cpus_per_actor <= 0 or self.task_retries < 0 or self.items_per_group < 1:
            raise ValueError("cpus_per_actor must be > 0, task_retries >= 0 and items_per_group >= 1")

    def pool(self, cluster: dict[str, float]) -> tuple[int, float]:
        """Actors and GPUs per actor for a cluster with these resources (``ray.cluster_resources()``)."""
        gpus = float(cluster.get("GPU", 0.0))
        per_actor = self.gpus_per_actor if self.gpus_per_actor is not None else (1.0 if gpus else 0.0)
        if self.actors is not None:
            return self.actors, per_actor
        return (max(int(gpus // per_actor), 1) if per_actor else 1), per_actor
