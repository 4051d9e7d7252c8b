"""Core tests: fixtures come from :mod:`omni_rag.testing.pytest_plugin` (see the root conftest.py)."""
