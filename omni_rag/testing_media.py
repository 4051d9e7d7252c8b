"""Old path of :mod:`omni_rag.testing.media` (omni-rag 0.1), kept working."""

from omni_rag.testing.media import *  # noqa: F403
