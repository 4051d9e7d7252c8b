"""Old path of :mod:`omni_rag.testing.nemotron_vl` (omni-rag 0.1), kept working."""

from omni_rag.testing.nemotron_vl import *  # noqa: F403
from omni_rag.testing.nemotron_vl import __all__  # noqa: F401
