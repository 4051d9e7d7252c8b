"""``omni-rag serve``: a search page that shows and plays each hit, and the HTTP API behind it.

Needs the ``serve`` extra (``pip install 'omni-rag[serve]'``: FastAPI, uvicorn, python-multipart).
"""

from omni_rag.serve.app import DEFAULT_MAX_UPLOAD_MB, ServeConfig, create_app
from omni_rag.serve.batching import QueryBatcher

__all__ = ["DEFAULT_MAX_UPLOAD_MB", "QueryBatcher", "ServeConfig", "create_app"]
