"""Test support without weights: tiny checkpoints with the real architecture, and media files.

* :mod:`.checkpoints`: the Omni-Embed-Nemotron-shaped thinker (native and remote-code layouts);
* :mod:`.nemotron_vl`: the llama-nemotron-embed-vl stand-in with its own code;
* :mod:`.media`: wav/flac/mp4/mkv/png writers, corrupt and truncated files;
* :mod:`.pytest_plugin`: the shared fixtures (``pytest_plugins = ["omni_rag.testing.pytest_plugin"]``).

``from omni_rag.testing import tiny_checkpoint`` keeps working.
"""

from omni_rag.testing.cache import cached_build, prepare_folder
from omni_rag.testing.checkpoints import *  # noqa: F403  (the 0.1 ``omni_rag.testing`` names)
from omni_rag.testing.checkpoints import __all__ as _checkpoint_names

__all__ = [*_checkpoint_names, "cached_build", "prepare_folder"]
