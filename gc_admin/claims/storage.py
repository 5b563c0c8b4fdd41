"""Where receipt images live: never under a public path; read back only through the staff route.

:class:`LocalStorage` (default): files under ``data/claims`` (or the directory ``GC_CLAIMS_STORAGE``
names), outside ``assets/`` and every other folder the web server serves. :class:`S3Storage`:
``GC_CLAIMS_STORAGE=s3://bucket[/prefix]`` on any S3-compatible service (``GC_CLAIMS_S3_ENDPOINT``;
credentials from the standard ``AWS_*`` variables), objects private (no ACL given: bucket default).

Keys are made by the service (``<yyyy>/<mm>/<sha256>.<ext>``), never from a user's file name.
Writing the same key twice stores the same bytes (content addressed), so a retried upload is harmless.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Protocol

from gc_admin.config import PROJECT_ROOT, get_settings


class Storage(Protocol):
    def put(self, key: str, data: bytes, *, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...


def _safe(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"bad storage key {key!r}")
    return key


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / _safe(key)

    def put(self, key: str, data: bytes, *, content_type: str) -> None:  # noqa: ARG002
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".up-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)  # atomic: a reader never sees half a file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()


class S3Storage:
    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None) -> None:
        import boto3  # only when configured

        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{_safe(key)}" if self.prefix else _safe(key)

    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True


def make_storage(spec: str, *, s3_endpoint: str = "") -> Storage:
    """The storage ``spec`` names (see the module docstring)."""
    if spec.startswith("s3://"):
        bucket, _, prefix = spec[len("s3://"):].partition("/")
        return S3Storage(bucket, prefix, endpoint_url=s3_endpoint or None)
    return LocalStorage(Path(spec) if spec else PROJECT_ROOT / "data" / "claims")


@functools.lru_cache(maxsize=4)
def _cached(spec: str, endpoint: str) -> Storage:
    return make_storage(spec, s3_endpoint=endpoint)


def get_storage() -> Storage:
    """The configured storage (``GC_CLAIMS_STORAGE``)."""
    c = get_settings().claims
    return _cached(c.storage, c.s3_endpoint)
