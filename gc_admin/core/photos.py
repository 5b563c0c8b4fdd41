"""Catalogue photos (a bouquet's, a goods item's): checked, stored by content hash, served to the mini-program.

One machinery for every catalogue that shows a picture:

- an upload passes :func:`gc_admin.core.uploads.check_image` (type by content, byte and pixel limits, full
  decode, re-encoded) before anything is stored (refusals raise ``UPLOAD_*`` and store nothing);
- :meth:`PhotoStore.store` writes it under ``GC_UPLOAD_DIR/<folder>/<sha256>.<ext>`` — outside every public
  path, named by its content (atomically: a temp file renamed), so replacing a photo never overwrites a
  file another request is reading and its URL changes with the picture (``?v=`` the hash);
- :meth:`PhotoStore.stored` finds the file a row names (``NotFound`` with the caller's message when there
  is none) and :func:`photo_response` serves it with its stored type, an ETag, ``nosniff`` and a year's
  cache (the URL carries the hash). A catalogue photo is no secret: a mini-program's ``<image src>``
  sends no Authorization header, so the route serving it is public.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlmodel import Field, SQLModel

from gc_admin.config import get_settings
from gc_admin.core.errors import NotFound
from gc_admin.core.uploads import CheckedImage, check_image, limits, read_upload

CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


class PhotoColumns(SQLModel):
    """The columns of a catalogue row that has a photo: what :meth:`PhotoStore.attach` writes (a table
    model lists this class first among its bases)."""

    image_sha256: str | None = Field(default=None, max_length=64)
    image_type: str | None = Field(default=None, max_length=8)  # png | jpeg | webp
    image_width: int | None = Field(default=None)
    image_height: int | None = Field(default=None)


@dataclasses.dataclass(frozen=True)
class StoredImage:
    path: Path
    content_type: str
    etag: str


@dataclasses.dataclass(frozen=True)
class PhotoStore:
    """The private photo folder of one catalogue (``bouquets``, ``goods``)."""

    folder: str

    def directory(self) -> Path:
        return get_settings().upload_dir / self.folder

    def path(self, sha256: str, ext: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256 or "") or ext not in CONTENT_TYPES:
            raise ValueError("not a stored image name")
        return self.directory() / f"{sha256}.{ext}"

    def store(self, image: CheckedImage) -> str:
        """Write a checked picture under its content hash; returns the hash."""
        sha = hashlib.sha256(image.data).hexdigest()
        path = self.path(sha, image.ext)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{sha}.{os.getpid()}.tmp")
            tmp.write_bytes(image.data)
            os.replace(tmp, path)
        return sha

    def check_and_store(self, data: bytes) -> tuple[CheckedImage, str]:
        """:func:`check_image` then :meth:`store`: the checked picture and its hash."""
        image = check_image(data)
        return image, self.store(image)

    def attach(self, session: Any, row: PhotoColumns, data: bytes, *, now: Any) -> tuple[CheckedImage, str | None]:
        """Check and store ``data`` and make it ``row``'s photo (its :class:`PhotoColumns`, ``updated_at``
        = ``now``, flushed in ``session``); returns the picture and the hash of the photo it replaced."""
        image, sha = self.check_and_store(data)
        before = row.image_sha256
        row.image_sha256, row.image_type, row.image_width, row.image_height = sha, image.ext, image.width, image.height
        row.updated_at = now  # type: ignore[attr-defined]
        session.add(row)
        session.flush()
        return image, before

    def stored(self, sha256: str | None, ext: str | None, *, missing: NotFound) -> StoredImage:
        """The file a row names (``missing`` raised when it names none, or the file is gone)."""
        if not sha256 or not ext:
            raise missing
        path = self.path(sha256, ext)
        if not path.is_file():
            raise missing
        return StoredImage(path, CONTENT_TYPES[ext], f'"{sha256}"')


def photo_change(image: CheckedImage, before: str | None, what: str) -> dict[str, Any]:
    """The audit row's ``summary`` / ``before`` / ``after`` of a photo set on ``what`` (e.g. "花束 红玫瑰（rose-11）")."""
    sha = hashlib.sha256(image.data).hexdigest()
    return {"summary": f"{'更换' if before else '上传'}{what}的照片（{image.width}×{image.height}，"
                       f"{len(image.data) // 1024 or 1} KB）",
            "before": {"image_sha256": before}, "after": {"image_sha256": sha, "type": image.ext}}


def serve_photo(load: Callable[[Any], StoredImage], if_none_match: str | None):
    """A public photo route's body: ``load(session)`` finds the stored photo (or raises its NotFound), then
    :func:`photo_response`."""
    from gc_admin.db import session_scope

    with session_scope() as s:
        stored = load(s)
    return photo_response(stored, if_none_match)


async def read_photo(file) -> bytes:
    """An uploaded photo's bytes (FastAPI ``UploadFile`` or Reflex ``rx.UploadFile``), refused past the image
    byte limit (``GC_UPLOAD_IMAGE_MAX_BYTES``) while it is read."""
    lim = limits()
    return await read_upload(file, lim=dataclasses.replace(lim, max_bytes=lim.image_max_bytes))


def photo_response(stored: StoredImage, if_none_match: str | None):
    """The HTTP answer for a stored photo: the file, or 304 when the client has it already."""
    from fastapi.responses import FileResponse, Response

    headers = {"ETag": stored.etag, "Cache-Control": "public, max-age=31536000, immutable",
               "X-Content-Type-Options": "nosniff", "Content-Disposition": "inline"}
    if if_none_match == stored.etag:
        return Response(status_code=304, headers=headers)
    return FileResponse(stored.path, media_type=stored.content_type, headers=headers)


#: the OpenAPI description of a photo route's answers
PHOTO_RESPONSES = {200: {"content": {t: {} for t in CONTENT_TYPES.values()}}, 404: {}}
