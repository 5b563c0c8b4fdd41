"""Receipt images: judged by their content, never by their name or declared type.

:func:`check_image` takes the uploaded bytes and either refuses them (:class:`ImageRefused`, a Chinese
message and a code) or returns the image re-encoded — EXIF (GPS, device, time) and every other
metadata chunk gone, orientation applied — with its SHA-256, perceptual hash and size. Steps, each
cheap before the next: the byte cap; the format from the magic bytes (JPEG, PNG, WebP; HEIC is not
accepted: no maintained decoder is installed here); the pixel count from the header alone, before
any decoding (a decompression bomb — a 50 KB PNG of 30,000 × 30,000 pixels — is refused here without
allocating it); a full decode (a truncated or corrupt file fails here); the re-encode.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import warnings

import imagehash
from PIL import Image, ImageOps, UnidentifiedImageError

from gc_admin.core.errors import InvalidInput

FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"))
MIN_SIDE = 32


class ImageRefused(InvalidInput):
    code = "IMAGE_REFUSED"

    def __init__(self, message: str, *, code: str, status: int = 422) -> None:
        super().__init__(message, code=code)
        self.status = status


@dataclasses.dataclass(frozen=True)
class CheckedImage:
    data: bytes  # re-encoded, metadata stripped
    content_type: str
    ext: str
    width: int
    height: int
    sha256: str
    phash: str


def sniff(data: bytes) -> str | None:
    """``JPEG`` / ``PNG`` / ``WEBP`` from the first bytes, else ``None``."""
    for magic, fmt in MAGIC:
        if data.startswith(magic):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def perceptual_hash(img: Image.Image) -> str:
    """64-bit pHash (hex) of the image's content box: the white margins around the content are cut
    first, so a screenshot cropped a little differently still hashes (nearly) the same."""
    gray = img.convert("L")
    box = ImageOps.invert(gray).point(lambda v: 255 if v > 40 else 0).getbbox()
    return str(imagehash.phash(gray.crop(box) if box else gray))


def check_image(data: bytes, *, n: int, max_bytes: int, max_pixels: int) -> CheckedImage:
    """Refuse or normalise the ``n``-th uploaded image (see the module docstring)."""
    which = f"第 {n} 张图片"
    if not data:
        raise ImageRefused(f"{which}是空文件", code="IMAGE_EMPTY")
    if len(data) > max_bytes:
        raise ImageRefused(f"{which}超过 {max_bytes // 1024 // 1024} MB，请压缩或截图后再上传", code="IMAGE_TOO_LARGE",
                           status=413)
    fmt = sniff(data)
    if fmt is None:
        raise ImageRefused(f"{which}不是 JPG、PNG 或 WebP 图片（按文件内容判断），请上传支付截图", code="IMAGE_TYPE")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = img.size
            if width * height > max_pixels:
                raise ImageRefused(f"{which}像素过多（{width}×{height}），请上传普通截图", code="IMAGE_TOO_MANY_PIXELS")
            if min(width, height) < MIN_SIDE:
                raise ImageRefused(f"{which}尺寸过小（{width}×{height}），无法辨认", code="IMAGE_TOO_SMALL")
            img.load()
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused(f"{which}像素过多，请上传普通截图", code="IMAGE_TOO_MANY_PIXELS") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageRefused(f"{which}已损坏或不完整，无法打开，请重新截图上传", code="IMAGE_CORRUPT") from exc
    img = ImageOps.exif_transpose(img)  # a phone photo shows the way it was taken, then EXIF goes
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGBA" if fmt != "JPEG" and "A" in img.getbands() else "RGB")
    out = io.BytesIO()
    if fmt == "JPEG":
        img.save(out, format="JPEG", quality=90)
    elif fmt == "PNG":
        img.save(out, format="PNG", optimize=False)
    else:
        img.save(out, format="WEBP", quality=90)
    clean = out.getvalue()
    content_type, ext = FORMATS[fmt]
    return CheckedImage(clean, content_type, ext, img.width, img.height, hashlib.sha256(clean).hexdigest(),
                        perceptual_hash(img))
