"""Remote-code modules that tiny test checkpoints ship, as hub repositories ship theirs.

Real modules, so ruff and mypy check them; :func:`omni_rag.testing.cache.remote_code_source` reads
their text and the builders copy it into a checkpoint folder, where ``trust_remote_code=True``
loads it the way transformers loads any repository's code.
"""
