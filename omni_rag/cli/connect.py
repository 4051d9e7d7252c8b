"""Opening the store for a command, with the failures a user can fix turned into clear messages.

The store is opened before the model is loaded, so a typo in the collection name or a store
held by another process is reported in a second, not after the model has loaded.
"""

from __future__ import annotations

import os
from pathlib import Path

from omni_rag.cli.errors import CliError, ExitCode
from omni_rag.store import (
    CollectionMismatchError,
    CollectionNameError,
    LegacyStoreError,
    OmniStore,
    StoreLockedError,
)

#: Embedded Qdrant folder used when neither ``--store`` nor ``--url`` is given.
DEFAULT_STORE = ".omni-rag"


def store_location(path: str | os.PathLike[str] | None, url: str | None) -> str:
    """Where the store lives, for messages: the server URL or the absolute folder."""
    if url is not None:
        return url
    return str(Path(path if path is not None else DEFAULT_STORE).resolve())


def open_store(
    collection: str,
    *,
    path: str | os.PathLike[str] | None = None,
    url: str | None = None,
    api_key: str | None = None,
    must_exist: bool = False,
    write: bool = False,
) -> OmniStore:
    """Open ``collection`` in an embedded folder (default ``./.omni-rag``) or on a Qdrant server.

    Args:
        collection: Collection name.
        path: Embedded store folder; ignored when ``url`` is given.
        url: Qdrant server URL.
        api_key: Server API key.
        must_exist: For ``search`` and ``info``: refuse a missing collection (and never create a
            missing store folder, which Qdrant's embedded mode would otherwise do silently).
        write: For ``index``: refuse at once a store another process is writing (it could only
            be searched), before a model loads or a file is read.

    Raises:
        CliError: ``NO_COLLECTION``, ``STORE_BUSY``, ``MODEL_MISMATCH`` (a collection that is not
            omni-rag's, or has another vector size) or ``STORE_ERROR``.
    """
    where = store_location(path, url)
    if url is None and must_exist and not Path(where).is_dir():
        raise CliError(
            f"no store at {where}: nothing has been indexed there yet (run `omni-rag index` first, "
            "or point --store/--url at the right place)",
            ExitCode.NO_COLLECTION,
        )
    try:
        if url is not None:
            store = OmniStore(collection, url=url, api_key=api_key)
        else:
            Path(where).mkdir(parents=True, exist_ok=True)
            store = OmniStore(collection, path=where)
    except CollectionMismatchError as error:
        raise CliError(f"{error} (store {where})", ExitCode.MODEL_MISMATCH) from error
    except StoreLockedError as error:
        raise CliError(str(error), ExitCode.STORE_BUSY) from error
    except (CollectionNameError, LegacyStoreError) as error:
        raise CliError(str(error), ExitCode.STORE_INVALID) from error
    except Exception as error:  # qdrant_client raises transport-specific types for a dead server
        raise CliError(f"cannot open the store at {where}: {error}", ExitCode.STORE_ERROR) from error
    if write and not store.writable:
        store.close()
        raise CliError(
            f"the store at {where} is in use by another process that is writing collection "
            f"{collection!r}; searches work meanwhile, a second writer does not. Wait for it to finish "
            "(an `omni-rag index` prints its report when done), index into another --store, or use "
            "a Qdrant server (--url) for many writers.",
            ExitCode.STORE_BUSY,
        )
    if must_exist and store.dim is None:
        known = store.collections()
        store.close()
        raise CliError(
            f"no collection {collection!r} in the store at {where}; "
            + (
                f"it has: {', '.join(known)}" if known else "it has no collections yet (run `omni-rag index`)"
            ),
            ExitCode.NO_COLLECTION,
        )
    return store
