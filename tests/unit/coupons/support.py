"""Helpers shared by the coupon tests (this module has no tests of its own)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from gc_admin.audit.service import Actor
from gc_admin.core.clock import SHANGHAI, utcnow
from gc_admin.coupons import service
from gc_admin.db import session_scope

STAFF = Actor("staff", "7", "陈静")
PARTNER = Actor("partner", "picc_gx", "人保之友俱乐部")
JUMP_APP = "wx1234567890abcdef"


def setup_catalogue() -> None:
    """The programme and one product of each kind used across the tests."""
    with session_scope() as s:
        service.create_programme(s, actor=STAFF, code="picc_gx", name="广西人保车主权益", insurer="中国人保广西分公司")
        service.create_programme(s, actor=STAFF, code="other", name="别的项目")
        service.create_product(s, actor=STAFF, code="tpp50", name="淘票票通兑券 50 元", kind="redemption_code",
                               face_fen=5000, cost_fen=4500, supplier="淘票票", programme_code="picc_gx",
                               jump_app_id=JUMP_APP, jump_path="pages/index/index")
        service.create_product(s, actor=STAFF, code="tpp5", name="淘票票代金券 5 元", kind="redemption_code",
                               face_fen=500, cost_fen=450, supplier="淘票票", programme_code="other")
        service.create_product(s, actor=STAFF, code="flower30", name="鲜花立减 30 元", kind="service_discount",
                               face_fen=3000, programme_code="picc_gx")
        service.create_product(s, actor=STAFF, code="fuel50", name="加油返现 50 元", kind="cashback", face_fen=5000,
                               category="fuel", programme_code="picc_gx")


def day(days: int, now: dt.datetime | None = None) -> str:
    """The local (Shanghai) date ``days`` from now, as a vendor would print it."""
    return ((now or utcnow()).astimezone(SHANGHAI) + dt.timedelta(days=days)).date().isoformat()


def codes_csv(codes: list[tuple[str, int]], *, header: str = "code,expires_at") -> bytes:
    """A CSV of ``(code, days until expiry)``."""
    return (header + "\n" + "".join(f"{c},{day(d)}\n" for c, d in codes)).encode()


def codes_file(prefix: str, n: int, days: int = 90) -> bytes:
    """A vendor's file with Chinese headers: ``n`` codes ``{prefix}000000Z``, ``{prefix}000001Z`` …, expiring
    in ``days``."""
    return ("券码,有效期\n" + "".join(f"{prefix}{i:06d}Z,{day(days)}\n" for i in range(n))).encode()


def import_codes(product: str, codes: list[tuple[str, int]], **kw) -> service.ImportReport:
    with session_scope() as s:
        return service.import_codes(s, actor=STAFF, product_code=product, data=codes_csv(codes),
                                    filename=kw.pop("filename", "codes.csv"), **kw)


def stock(product: str, n: int, *, days: int = 90, prefix: str = "C") -> list[str]:
    codes = [f"{prefix}{product.upper()}{i:06d}X" for i in range(n)]
    report = import_codes(product, [(c, days) for c in codes])
    assert report.imported == n, report
    return codes


def issue(phones: list[str], *, batch_id: str = "b1", product: str = "tpp50", **kw) -> service.IssuanceResult:
    with session_scope() as s:
        return service.issue_batch(s, actor=kw.pop("actor", STAFF), source=kw.pop("source", "staff"),
                                   batch_id=batch_id, product_code=product, phones=phones, **kw)


def audit_text() -> str:
    """Everything the audit log holds, as one string (to look for leaked codes)."""
    with session_scope() as s:
        rows = s.execute(sa.text(
            "SELECT action, summary, coalesce(before, ''), coalesce(after, '') FROM audit_log")).all()
    return "\n".join(" ".join(r) for r in rows)
