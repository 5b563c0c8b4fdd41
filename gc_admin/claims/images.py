"""Receipt images: judged by their content, never by their name or declared type.

:func:`check_image` takes the uploaded bytes and either refuses them (:class:`ImageRefused`, a Chinese
message and a code) or returns the bytes to store — every metadata block (EXIF: GPS, device, time;
XMP, comments, text chunks) gone — with their SHA-256 and size. It runs on the request path, so it
does only what is cheap, each step before the next:

1. the byte cap; the format from the magic bytes (JPEG, PNG, WebP, HEIC/HEIF by its ``ftyp`` brand);
2. the pixel count from the header alone, before any decoding (a decompression bomb — a 50 KB PNG of
   30,000 × 30,000 pixels — is refused here without allocating it), and a minimum side;
3. the file's structure walked once, which is also the lossless metadata strip
   (:func:`strip_jpeg`, :func:`strip_png`, :func:`strip_webp`): a truncated or corrupt file fails here
   (a JPEG without its end marker, a PNG chunk whose CRC is wrong or no ``IEND``, a WebP chunk running
   past the end); a JPEG is also decoded at 1/8 scale (its whole entropy-coded data is read: ~1 ms);
   what follows the image's end (a second file appended) is dropped;
4. only when pixels must change is the image decoded and re-encoded (:func:`_normalised`): a HEIC
   photo (converted to JPEG, which every browser shows) and an image whose EXIF orientation is not
   upright (turned the way it was taken, then saved without EXIF). Screenshots, the usual receipt, take
   the lossless path.

The perceptual hash (for duplicate receipts) is not computed here: the OCR job decodes each image once
and hashes it there (:func:`perceptual_hash`, called from :mod:`gc_admin.claims.ocr`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import struct
import warnings
import zlib

import imagehash
from PIL import Image, ImageOps, UnidentifiedImageError

from gc_admin.core.errors import InvalidInput

FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"))
#: ISO-BMFF major brands of HEIF still images (a phone's HEIC photo: ``heic``; ``mif1``: generic HEIF)
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
MIN_SIDE = 32
ORIENTATION = 0x0112


class ImageRefused(InvalidInput):
    code = "IMAGE_REFUSED"

    def __init__(self, message: str, *, code: str, status: int = 422) -> None:
        super().__init__(message, code=code)
        self.status = status


class _Broken(ValueError):
    """The file's structure is not what its format requires (truncated, corrupt)."""


@dataclasses.dataclass(frozen=True)
class CheckedImage:
    data: bytes  # what is stored: metadata stripped (and, for HEIC or a turned photo, re-encoded)
    content_type: str
    ext: str
    width: int
    height: int
    sha256: str


def sniff(data: bytes) -> str | None:
    """``JPEG`` / ``PNG`` / ``WEBP`` / ``HEIF`` from the first bytes, else ``None``."""
    for magic, fmt in MAGIC:
        if data.startswith(magic):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return "HEIF"
    return None


def perceptual_hash(img: Image.Image) -> str:
    """64-bit pHash (hex) of the image's content box: the white margins around the content are cut
    first, so a screenshot cropped a little differently still hashes (nearly) the same."""
    gray = img.convert("L")
    box = ImageOps.invert(gray).point(lambda v: 255 if v > 40 else 0).getbbox()
    return str(imagehash.phash(gray.crop(box) if box else gray))


# --- lossless metadata strips (each also the structure check) -----------------------------------

# JPEG markers without a length: TEM, RST0-7 (SOI and EOI are handled apart)
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}


def _jpeg_keeps(marker: int, payload: bytes) -> bool:
    """Which segments a decoder needs: everything but APPn and COM, except the Adobe APP14 (it says
    how the colour channels are coded) and an ICC colour profile (APP2 ``ICC_PROFILE``)."""
    if marker == 0xFE:
        return False
    if 0xE0 <= marker <= 0xEF:
        return (marker == 0xEE and payload.startswith(b"Adobe")) or (marker == 0xE2 and payload.startswith(b"ICC_PROFILE\0"))
    return True


def strip_jpeg(data: bytes) -> bytes:
    """The JPEG without its APPn (EXIF, XMP, JFIF thumbnails, MPF) and COM segments, up to its EOI."""
    out = [b"\xff\xd8"]
    pos, end = 2, len(data)
    while True:
        while pos < end and data[pos] == 0xFF and pos + 1 < end and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes before a marker
        if pos + 2 > end or data[pos] != 0xFF:
            raise _Broken("JPEG: no marker where one must be (truncated)")
        marker = data[pos + 1]
        if marker == 0xD9:
            out.append(b"\xff\xd9")
            return b"".join(out)
        if marker in _JPEG_STANDALONE:
            out.append(data[pos:pos + 2])
            pos += 2
            continue
        if pos + 4 > end:
            raise _Broken("JPEG: truncated segment header")
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        seg_end = pos + 2 + length
        if length < 2 or seg_end > end:
            raise _Broken("JPEG: segment runs past the end (truncated)")
        if _jpeg_keeps(marker, data[pos + 4:seg_end]):
            out.append(data[pos:seg_end])
        pos = seg_end
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next real marker
            scan = pos
            while True:
                ff = data.find(b"\xff", scan)
                if ff < 0 or ff + 1 >= end:
                    raise _Broken("JPEG: scan data without an end marker (truncated)")
                nxt = data[ff + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                    scan = ff + (2 if nxt != 0xFF else 1)
                    continue
                out.append(data[pos:ff])
                pos = ff
                break


# PNG chunks a decoder needs (critical ones) and the colour-space ones; text, time, eXIf, the rest go
_PNG_KEEP = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"iCCP"})


def strip_png(data: bytes) -> bytes:
    """The PNG with only :data:`_PNG_KEEP` chunks, every chunk's CRC checked, up to its IEND."""
    out = [data[:8]]
    pos, end = 8, len(data)
    while True:
        if pos + 12 > end:
            raise _Broken("PNG: no IEND (truncated)")
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        chunk_end = pos + 12 + length
        if chunk_end > end:
            raise _Broken("PNG: chunk runs past the end (truncated)")
        (crc,) = struct.unpack(">I", data[chunk_end - 4:chunk_end])
        if zlib.crc32(data[pos + 4:chunk_end - 4]) != crc:
            raise _Broken(f"PNG: bad CRC in {kind!r}")
        if kind in _PNG_KEEP:
            out.append(data[pos:chunk_end])
        elif kind[0:1].isupper():  # an unknown critical chunk: a decoder must refuse the file
            raise _Broken(f"PNG: unknown critical chunk {kind!r}")
        pos = chunk_end
        if kind == b"IEND":
            return b"".join(out)


_WEBP_KEEP = frozenset({b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ICCP", b"ANIM", b"ANMF"})
_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04


def strip_webp(data: bytes) -> bytes:
    """The WebP without its EXIF and XMP chunks (and their VP8X flags), every chunk inside the file."""
    (riff_size,) = struct.unpack("<I", data[4:8])
    end = 8 + riff_size
    if end > len(data):
        raise _Broken("WebP: shorter than its RIFF header says (truncated)")
    out: list[bytes] = []
    pos = 12
    while pos < end:
        if pos + 8 > end:
            raise _Broken("WebP: truncated chunk header")
        kind = data[pos:pos + 4]
        (length,) = struct.unpack("<I", data[pos + 4:pos + 8])
        chunk_end = pos + 8 + length + (length & 1)
        if pos + 8 + length > end:
            raise _Broken("WebP: chunk runs past the end (truncated)")
        if kind == b"VP8X" and length >= 1:
            flags = data[pos + 8] & ~(_VP8X_EXIF | _VP8X_XMP) & 0xFF
            out.append(data[pos:pos + 8] + bytes([flags]) + data[pos + 9:chunk_end])
        elif kind in _WEBP_KEEP:
            out.append(data[pos:chunk_end])
        pos = chunk_end
    body = b"WEBP" + b"".join(out)
    return b"RIFF" + struct.pack("<I", len(body)) + body


_STRIP = {"JPEG": strip_jpeg, "PNG": strip_png, "WEBP": strip_webp}


# --- the check --------------------------------------------------------------------------------

class _Heif:
    """A HEIF file opened lazily, sized like a Pillow image: decoding waits for :meth:`decode`."""

    def __init__(self, data: bytes) -> None:
        import pillow_heif  # pinned in requirements.txt (its wheel ships libheif)

        self.heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)  # the header only
        self.size = self.heif.size

    def decode(self) -> Image.Image:
        return self.heif.to_pillow()  # pillow-heif applies the file's rotation/mirroring while decoding


def _open(data: bytes, fmt: str) -> Image.Image | _Heif:
    return _Heif(data) if fmt == "HEIF" else Image.open(io.BytesIO(data), formats=[fmt])


def decode(data: bytes) -> Image.Image:
    """A stored image's pixels, loaded (what the OCR job reads: stored images are JPEG, PNG or WebP)."""
    img = Image.open(io.BytesIO(data), formats=list(FORMATS))
    img.load()
    return img


def _normalised(img: Image.Image | _Heif, fmt: str) -> tuple[bytes, str, tuple[int, int]]:
    """Decode, turn upright, re-encode without metadata: ``(bytes, format, size)`` (HEIF becomes JPEG)."""
    if isinstance(img, _Heif):
        picture, fmt = img.decode(), "JPEG"
    else:
        img.load()
        picture = ImageOps.exif_transpose(img)
    if fmt == "JPEG":
        picture = picture.convert("RGB") if picture.mode not in ("RGB", "L") else picture
    elif picture.mode not in ("RGB", "RGBA", "L", "LA"):
        picture = picture.convert("RGBA")
    out = io.BytesIO()
    picture.save(out, format=fmt, **({"quality": 90} if fmt in ("JPEG", "WEBP") else {}))
    return out.getvalue(), fmt, picture.size


def _turned(img: Image.Image | _Heif) -> bool:
    if isinstance(img, _Heif):
        return True  # always re-encoded (to JPEG)
    raw = img.info.get("exif")  # what the header held (``getexif()`` would decode a PNG to look further)
    if not raw:
        return False
    exif = Image.Exif()
    exif.load(raw)
    return exif.get(ORIENTATION, 1) not in (0, 1)


def check_image(data: bytes, *, n: int, max_bytes: int, max_pixels: int) -> CheckedImage:
    """Refuse or clean the ``n``-th uploaded image (see the module docstring)."""
    which = f"第 {n} 张图片"
    if not data:
        raise ImageRefused(f"{which}是空文件", code="IMAGE_EMPTY")
    if len(data) > max_bytes:
        raise ImageRefused(f"{which}超过 {max_bytes // 1024 // 1024} MB，请压缩或截图后再上传", code="IMAGE_TOO_LARGE",
                           status=413)
    fmt = sniff(data)
    if fmt is None:
        raise ImageRefused(f"{which}不是 JPG、PNG、WebP 或 HEIC 图片（按文件内容判断），请上传支付截图", code="IMAGE_TYPE")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = _open(data, fmt)
            width, height = img.size
            if width * height > max_pixels:
                raise ImageRefused(f"{which}像素过多（{width}×{height}），请上传普通截图", code="IMAGE_TOO_MANY_PIXELS")
            if min(width, height) < MIN_SIDE:
                raise ImageRefused(f"{which}尺寸过小（{width}×{height}），无法辨认", code="IMAGE_TOO_SMALL")
            if _turned(img):
                clean, fmt, (width, height) = _normalised(img, fmt)
            else:
                clean = _STRIP[fmt](data)
                if isinstance(img, Image.Image) and fmt == "JPEG":  # the scan data read through at 1/8 scale: a cut or corrupt stream fails
                    img.draft("L", (max(1, width // 8), max(1, height // 8)))
                    img.load()
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused(f"{which}像素过多，请上传普通截图", code="IMAGE_TOO_MANY_PIXELS") from None
    except (_Broken, UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error, RuntimeError) as exc:
        raise ImageRefused(f"{which}已损坏或不完整，无法打开，请重新截图上传", code="IMAGE_CORRUPT") from exc
    content_type, ext = FORMATS[fmt]
    return CheckedImage(clean, content_type, ext, width, height, hashlib.sha256(clean).hexdigest())
