"""Official model ids and their pinned revisions.

Torch-free on purpose: the CLI's fail-fast paths and ``--help`` read these without
importing the model stack.
"""

from __future__ import annotations

DEFAULT_MODEL = "nvidia/omni-embed-nemotron-3b"

#: Official checkpoints load at a pinned revision (the ones MTEB pins), so what runs is what
#: was reviewed; a caller's ``revision=`` overrides it.
OFFICIAL_REVISIONS: dict[str, str] = {
    "nvidia/omni-embed-nemotron-3b": "e0e93aaaa65d2422a8a0c1284116e71f7a0fe966",
    "nvidia/llama-nemotron-embed-vl-1b-v2": "859e1f2dac29c56c37a5279cf55f53f3e74efc6b",
}
