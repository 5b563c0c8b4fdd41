"""Receipt reading, offline: rapidocr-onnxruntime (PP-OCR detection + recognition models shipped
inside the wheel; nothing is downloaded at run time) and a parser for WeChat Pay and Alipay payment
details screens and fuel-station / shop slips.

Off the request path: :func:`process_pending` takes pending images with a lease (a conditional
``UPDATE ... WHERE ocr_status = 'pending' AND lease free``, so two workers never read one image twice),
commits, decodes each image once — its perceptual hash (for duplicate receipts) and the OCR both come
from that decode — with no transaction open, and writes the hash and the fields in a short unit of its
own, then refreshes the claim's flags and those of later claims that may now name it
(:mod:`gc_admin.claims.checks`). The submission route runs it for its own
claim after the response (:func:`process_claim_images`); the ``claims.ocr`` job picks up anything left
(a worker that died mid-read: its lease runs out). A claim is reviewable before OCR is done.

:func:`parse` turns the engine's boxes into :class:`Receipt` fields, each with a confidence in 0..1:
the recogniser's score of the text it came from, lowered when the field was found by a fallback rule
(an unlabelled amount, the top line as merchant) rather than beside its label.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import threading
from typing import Any

from PIL import Image
from sqlalchemy import or_, update
from sqlmodel import col, select

from gc_admin.claims import images
from gc_admin.claims.models import Claim, ClaimImage
from gc_admin.claims.storage import get_storage
from gc_admin.core.clock import SHANGHAI, UTC, utcnow
from gc_admin.db import session_scope

log = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)
#: rapidocr settings measured on this machine's 2 cores (bench/bench_claims.py): onnxruntime's
#: intra-op threads pinned to the 2 cores (its default of one per logical CPU oversubscribes a shared
#: box) and no inter-op pool; no angle classifier (payment screenshots and slips are upright: the
#: classifier only costs time on every text line)
ENGINE_OPTIONS: dict[str, Any] = {"intra_op_num_threads": 2, "inter_op_num_threads": 1, "use_cls": False}
DETECT_MAX_SIDE = 1600  # a phone photo of a slip (4000 px) is read at this size
FALLBACK = 0.6  # confidence factor of a field found without its label

_engine: Any = None
_engine_lock = threading.Lock()
_run_lock = threading.Lock()  # one read at a time per process: the 2 cores are shared with the web workers


def engine() -> Any:
    """The OCR engine (loaded once per process, from the models inside the wheel)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            from rapidocr_onnxruntime import RapidOCR

            _engine = RapidOCR(**ENGINE_OPTIONS)
        return _engine


@dataclasses.dataclass
class Field:
    value: Any
    confidence: float


@dataclasses.dataclass
class Receipt:
    source: str  # wechat | alipay | slip
    text: str
    amount_fen: Field | None = None
    paid_at: Field | None = None  # aware UTC
    merchant: Field | None = None
    transaction_no: Field | None = None


def read_boxes(img: Image.Image) -> list[tuple[list, str, float]]:
    """The engine's ``[box, text, score]`` for a decoded image, in the image's own coordinates. A large
    photo is shrunk to :data:`DETECT_MAX_SIDE` first (a receipt's text stays legible; detection's cost
    grows with the pixel count)."""
    import numpy as np

    rgb = img.convert("RGB")
    scale = 1.0
    if max(rgb.size) > DETECT_MAX_SIDE:
        scale = max(rgb.size) / DETECT_MAX_SIDE
        rgb = rgb.resize((round(rgb.width / scale), round(rgb.height / scale)), Image.Resampling.LANCZOS)
    with _run_lock:
        result, _ = engine()(np.asarray(rgb)[:, :, ::-1])  # the engine takes BGR like OpenCV
    return [([[p[0] * scale, p[1] * scale] for p in r[0]], str(r[1]), float(r[2])) for r in (result or [])]


@dataclasses.dataclass
class _Row:
    text: str
    score: float
    height: float


def rows_of(boxes: list[tuple[list, str, float]]) -> list[_Row]:
    """Boxes grouped into visual rows (top to bottom), each row's texts left to right."""
    items = []
    for box, text, score in boxes:
        ys = [p[1] for p in box]
        xs = [p[0] for p in box]
        items.append(((min(ys) + max(ys)) / 2, max(ys) - min(ys), min(xs), text, score))
    items.sort()
    rows: list[list[tuple]] = []
    for it in items:
        if rows and abs(it[0] - rows[-1][0][0]) <= max(it[1], rows[-1][0][1]) / 2:
            rows[-1].append(it)
        else:
            rows.append([it])
    out = []
    for row in rows:
        row.sort(key=lambda it: it[2])
        out.append(_Row(" ".join(it[3] for it in row), min(it[4] for it in row), max(it[1] for it in row)))
    return out


_AMOUNT = re.compile(r"^[-−–]?\s*[¥￥]?\s*([0-9]{1,6}(?:,[0-9]{3})*\.[0-9]{2})$")
_AMOUNT_ANY = re.compile(r"[¥￥]?\s*([0-9]{1,6}(?:,[0-9]{3})*\.[0-9]{2})")
_TIME = re.compile(r"(20[0-9]{2})[-/年.]([0-9]{1,2})[-/月.]([0-9]{1,2})日?\s*([0-9]{1,2})[:：]([0-9]{2})(?:[:：]([0-9]{2}))?")
_AMOUNT_LABELS = ("实付金额", "实付", "支付金额", "实收金额", "实收", "付款金额", "消费金额", "应付金额", "合计", "金额")
_TIME_LABELS = ("支付时间", "付款时间", "创建时间", "交易时间", "消费时间", "时间", "日期")
_MERCHANT_LABELS = ("商户全称", "收款方全称", "商户名称", "收款方", "商家", "商户", "油站名称", "站点", "门店")
_TXN_LABELS = (("交易单号", 1.0), ("订单号", 1.0), ("交易号", 1.0), ("流水号", 1.0), ("商户单号", 0.95),
               ("商家订单号", 0.95), ("单号", 0.9))
_ID = re.compile(r"[A-Za-z0-9]{8,40}")
_NOT_MERCHANT = ("支付成功", "交易成功", "当前状态", "账单详情", "支付", "全部账单", "微信支付", "支付宝")


def _fen(text: str) -> int:
    yuan, _, cents = text.replace(",", "").partition(".")
    return int(yuan) * 100 + int(cents[:2].ljust(2, "0"))


def _after(label: str, text: str) -> str:
    return text.split(label, 1)[1].lstrip(" :：")


def _compact(text: str) -> str:
    return text.replace(" ", "")


def parse(boxes: list[tuple[list, str, float]]) -> Receipt:
    """A receipt's fields from the engine's boxes (see the module docstring)."""
    rows = rows_of(boxes)
    full = "\n".join(r.text for r in rows)
    flat = _compact(full)
    if "交易单号" in flat or "微信支付" in flat or "零钱" in flat:
        source = "wechat"
    elif "支付宝" in flat or "商家订单号" in flat or "花呗" in flat or "余额宝" in flat:
        source = "alipay"
    else:
        source = "slip"
    receipt = Receipt(source=source, text=full[:4000])

    # amount: beside a label first; else the biggest standalone number (the payment screens' headline)
    for label in _AMOUNT_LABELS:
        for r in rows:
            t = _compact(r.text)
            if t.startswith(label) or (label in t and label != "金额"):
                m = _AMOUNT_ANY.search(_after(label, t))
                if m:
                    receipt.amount_fen = Field(_fen(m.group(1)), round(r.score, 3))
                    break
        if receipt.amount_fen:
            break
    if receipt.amount_fen is None:
        alone = [(r.height, r) for r in rows if _AMOUNT.match(_compact(r.text))]
        if alone:
            _, r = max(alone, key=lambda a: a[0])
            m = _AMOUNT.match(_compact(r.text))
            assert m
            receipt.amount_fen = Field(_fen(m.group(1)), round(r.score * (0.95 if source != "slip" else FALLBACK), 3))

    for r in rows:
        m = _TIME.search(_compact(r.text))
        if m:
            y, mo, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
            try:
                local = dt.datetime(y, mo, d, h, mi, s, tzinfo=SHANGHAI)
            except ValueError:
                continue
            labelled = any(_compact(r.text).startswith(lb) for lb in _TIME_LABELS)
            receipt.paid_at = Field(local.astimezone(UTC), round(r.score * (1 if labelled else 0.85), 3))
            break

    for label in _MERCHANT_LABELS:
        for r in rows:
            t = _compact(r.text)
            if t.startswith(label) and len(_after(label, t)) >= 2:
                receipt.merchant = Field(_after(label, r.text.replace(" ", ""))[:100], round(r.score, 3))
                break
        if receipt.merchant:
            break
    if receipt.merchant is None:
        for r in rows[:3]:
            t = _compact(r.text)
            if re.search(r"[\u4e00-\u9fff]{4,}", t) and not any(w in t for w in _NOT_MERCHANT) and not _AMOUNT_ANY.search(t):
                receipt.merchant = Field(t[:100], round(r.score * FALLBACK, 3))
                break

    best: tuple[float, str, float] | None = None
    for label, weight in _TXN_LABELS:
        for r in rows:
            t = _compact(r.text)
            if t.startswith(label):
                m = _ID.search(_after(label, t))
                if m and (best is None or weight > best[0]):
                    best = (weight, m.group(0), r.score * weight)
    if best:
        receipt.transaction_no = Field(best[1], round(best[2], 3))
    return receipt


def read_receipt(data: bytes) -> Receipt:
    return parse(read_boxes(images.decode(data)))


# --- the background job ---------------------------------------------------------------------------

def _take(image_ids: list[int] | None, limit: int) -> list[int]:
    """Lease up to ``limit`` pending images (of ``image_ids`` if given); commits."""
    now = utcnow()
    free = or_(col(ClaimImage.ocr_taken_until).is_(None), col(ClaimImage.ocr_taken_until) < now)
    with session_scope() as session:
        q = select(ClaimImage.id).where(col(ClaimImage.ocr_status) == "pending", free)
        if image_ids is not None:
            q = q.where(col(ClaimImage.id).in_(image_ids))
        ids = list(session.exec(q.order_by(col(ClaimImage.id)).limit(limit)).all())
        taken = []
        for image_id in ids:
            res = session.execute(update(ClaimImage).where(col(ClaimImage.id) == image_id,
                                                           col(ClaimImage.ocr_status) == "pending", free)
                                  .values(ocr_taken_until=now + LEASE).execution_options(synchronize_session=False))
            if res.rowcount == 1:
                taken.append(image_id)
    return taken


def _store(image_id: int, phash: str | None, receipt: Receipt | None, error: str | None) -> None:
    from gc_admin.claims.checks import refresh_flags, refresh_later

    def v(f: Field | None) -> Any:
        return None if f is None else f.value

    def c(f: Field | None) -> float | None:
        return None if f is None else f.confidence

    with session_scope() as session:
        values: dict[str, Any] = {"ocr_at": utcnow(), "ocr_taken_until": None, "phash": phash}
        if receipt is None:
            values.update(ocr_status="failed", ocr_error=(error or "")[:200])
        else:
            values.update(ocr_status="done", ocr_source=receipt.source, ocr_text=receipt.text,
                          ocr_amount_fen=v(receipt.amount_fen), ocr_amount_conf=c(receipt.amount_fen),
                          ocr_paid_at=v(receipt.paid_at), ocr_paid_at_conf=c(receipt.paid_at),
                          ocr_merchant=v(receipt.merchant), ocr_merchant_conf=c(receipt.merchant),
                          ocr_txn_no=v(receipt.transaction_no), ocr_txn_conf=c(receipt.transaction_no))
        res = session.execute(update(ClaimImage).where(col(ClaimImage.id) == image_id,
                                                       col(ClaimImage.ocr_status) == "pending")
                              .values(**values).execution_options(synchronize_session=False))
        if res.rowcount != 1:
            return  # another worker finished it after this one's lease ran out
        claim_id = session.exec(select(ClaimImage.claim_id).where(ClaimImage.id == image_id)).one()
        claim = session.get(Claim, claim_id)
        assert claim is not None
        refresh_flags(session, claim=claim)
        refresh_later(session, claim=claim)  # a later claim read first could not name this one yet


def process_images(image_ids: list[int] | None = None, *, limit: int = 20) -> dict[str, int]:
    """Read up to ``limit`` pending images (see the module docstring); counts of done / failed. Each
    image is decoded once: its perceptual hash and the OCR both come from that decode."""
    done = failed = 0
    storage = get_storage()
    for image_id in _take(image_ids, limit):
        with session_scope() as session:
            key = session.exec(select(ClaimImage.storage_key).where(ClaimImage.id == image_id)).one()
        phash = None
        try:
            img = images.decode(storage.get(key))
            phash = images.perceptual_hash(img)
            receipt = parse(read_boxes(img))
        except Exception as exc:  # a broken file must not stop the queue
            log.exception("OCR failed on claim image %s", image_id)
            _store(image_id, phash, None, f"{type(exc).__name__}: {exc}")
            failed += 1
            continue
        _store(image_id, phash, receipt, None)
        done += 1
    return {"done": done, "failed": failed}


def process_pending(limit: int = 20) -> dict[str, int]:
    return process_images(None, limit=limit)


def process_claim_images(claim_id: int) -> None:
    """The submission's after-response task: read this claim's images now (errors logged only)."""
    try:
        with session_scope() as session:
            ids = list(session.exec(select(ClaimImage.id).where(ClaimImage.claim_id == claim_id)).all())
        process_images(ids, limit=len(ids))
    except Exception:  # pragma: no cover - the job retries; the user already has the answer
        log.exception("OCR after submission failed for claim %s", claim_id)
