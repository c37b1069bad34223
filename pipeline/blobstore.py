"""Content-addressed blob store: the claim check for media.

Connectors put media bytes here and carry the returned URI in the envelope; stages read
them back by URI. Keys are SHA-256 digests, so storing the same file twice costs nothing
and a retried download never creates a second copy. Any fsspec URL works as the root
(a local directory for the embedded default, ``s3://bucket/prefix`` or ``gs://...`` so
workers on several machines share it).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path

import fsspec
from fsspec.core import url_to_fs

from pipeline.errors import BlobNotFound, BlobStoreError, BlobStoreUnavailable


@dataclass(frozen=True)
class StoredBlob:
    uri: str
    sha256: str
    size: int


class BlobStore:
    """Put and get immutable blobs by content hash under one fsspec root."""

    def __init__(self, root: str) -> None:
        if "://" not in root:
            root = Path(root).resolve().as_uri()
        self.root = root.rstrip("/")
        try:
            self._fs, self._root_path = url_to_fs(self.root)
        except (ImportError, ValueError) as exc:
            raise BlobStoreError(f"blob store {root!r}: {exc}") from exc

    def uri_for(self, sha256: str) -> str:
        return f"{self.root}/{sha256[:2]}/{sha256}"

    def put(self, data: bytes) -> StoredBlob:
        """Store ``data`` (idempotent) and return where it lives."""
        digest = hashlib.sha256(data).hexdigest()
        uri = self.uri_for(digest)
        path = f"{self._root_path}/{digest[:2]}/{digest}"
        try:
            if not self._fs.exists(path):
                self._fs.makedirs(f"{self._root_path}/{digest[:2]}", exist_ok=True)
                # Write then rename so a reader never sees half a file.
                tmp = f"{path}.partial"
                self._fs.pipe_file(tmp, data)
                self._fs.mv(tmp, path)
        except OSError as exc:
            raise BlobStoreUnavailable(f"cannot store blob {digest}: {exc}") from exc
        return StoredBlob(uri=uri, sha256=digest, size=len(data))

    def get(self, uri: str) -> bytes:
        """The bytes behind a URI this or another store returned."""
        try:
            with fsspec.open(uri, "rb") as fh:
                return fh.read()  # type: ignore[no-any-return]
        except FileNotFoundError as exc:
            # A missing file under a store that is there is a missing blob (it will not come
            # back); a store that is not there (unmounted, unreachable) is an outage.
            if self._root_reachable():
                raise BlobNotFound(f"no blob {uri}: {exc}") from exc
            raise BlobStoreUnavailable(f"blob store {self.root} unavailable: {exc}") from exc
        except ValueError as exc:
            raise BlobNotFound(f"cannot read blob {uri}: {exc}") from exc
        except OSError as exc:
            raise BlobStoreUnavailable(f"cannot read blob {uri}: {exc}") from exc

    def _root_reachable(self) -> bool:
        try:
            return bool(self._fs.isdir(self._root_path))
        except OSError:
            return False

    async def aput(self, data: bytes) -> StoredBlob:
        """``put`` off the event loop (remote stores block on the network)."""
        return await asyncio.to_thread(self.put, data)

    async def aget(self, uri: str) -> bytes:
        return await asyncio.to_thread(self.get, uri)
