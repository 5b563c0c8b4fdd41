"""Programmes: create, list, look up, with Chinese validation. Plain functions, session first; no commit."""

from __future__ import annotations

import re

from sqlmodel import Session, col, select

from gc_admin.audit.service import record
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import Conflict, InvalidInput, NotFound
from gc_admin.core.principal import Actor
from gc_admin.db import insert_first
from gc_admin.programmes.models import Programme

#: What a programme code (and a product code, :mod:`gc_admin.coupons.catalog.service`) looks like.
CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{1,31}$")


def create_programme(session: Session, *, actor: Actor, code: str, name: str, insurer: str = "") -> Programme:
    """Create an insurer programme (e.g. ``picc_gx`` 广西人保车主权益)."""
    code = (code or "").strip().lower()
    name = (name or "").strip()
    if not CODE_RE.match(code):
        raise InvalidInput("项目编码需 2–32 位小写字母、数字、_ 或 -", code="INVALID_PROGRAMME")
    if not name or len(name) > 64:
        raise InvalidInput("项目名称不能为空，且不超过 64 个字", code="INVALID_PROGRAMME")

    def taken() -> None:
        if session.exec(select(Programme.id).where(Programme.code == code)).first() is not None:
            raise Conflict(f"项目编码 {code} 已存在", code="PROGRAMME_EXISTS")

    programme = Programme(code=code, name=name, insurer=(insurer or "").strip()[:64], created_at=utcnow())
    insert_first(session, programme, taken=taken)  # a twin's code first: PROGRAMME_EXISTS
    record(session, actor=actor, action="programme.created", target_type="programme", target_id=programme.id,
           summary=f"创建项目 {name}（{code}）", after={"code": code, "name": name, "insurer": programme.insurer})
    return programme


def list_programmes(session: Session) -> list[Programme]:
    """All programmes, by code."""
    return list(session.exec(select(Programme).order_by(col(Programme.code))).all())


def get_programme(session: Session, code: str) -> Programme:
    """The programme with ``code``, or :class:`NotFound`."""
    programme = session.exec(select(Programme).where(Programme.code == code)).first()
    if programme is None:
        raise NotFound("项目不存在", code="PROGRAMME_NOT_FOUND")
    return programme
