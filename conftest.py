"""Repository-wide test setup: no hub access, and the shared fixtures of omni_rag.testing."""

import os

# Nothing in the tests may reach the hub: weights never download here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest_plugins = ["omni_rag.testing.pytest_plugin"]
