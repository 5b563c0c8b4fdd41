"""Partner API keys: create (shown once), authenticate, revoke, list."""

from __future__ import annotations

import dataclasses
import hmac
import re
import secrets

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from gc_admin.audit.service import record
from gc_admin.core.clock import utcnow
from gc_admin.core.errors import Forbidden, InvalidInput, NotFound
from gc_admin.core.principal import Actor, Principal
from gc_admin.core.security import hash_token
from gc_admin.partners.models import PartnerKey

SCOPES: dict[str, str] = {
    "issuance:write": "批量发券",
    "issuance:read": "查询发券批次",
    "members:read": "查询会员的券",
    "statements:read": "查询结算单",
}
KEY_RE = re.compile(r"^gcp_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{20,64})$")


@dataclasses.dataclass(frozen=True)
class PartnerPrincipal:
    key_id: int
    partner_name: str
    programme_code: str
    scopes: frozenset[str]

    def actor(self, ip: str | None = None) -> Actor:
        return Actor("partner", str(self.key_id), self.partner_name, ip)


def _alnum(n: int) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    return "".join(secrets.choice(alphabet) for _ in range(n))


def create_key(session: Session, *, actor: Principal, partner_name: str, programme_code: str,
               scopes: list[str]) -> tuple[PartnerKey, str]:
    """Create a key; returns the row and the full key, which is never shown again."""
    if actor.role != "admin":
        raise Forbidden("只有管理员可以创建合作方密钥", code="FORBIDDEN")
    partner_name = partner_name.strip()
    if not partner_name or len(partner_name) > 64:
        raise InvalidInput("合作方名称不能为空，且不超过 64 个字", code="INVALID_NAME")
    if not re.match(r"^[a-z][a-z0-9_]{1,31}$", programme_code or ""):
        raise InvalidInput("项目编码格式不正确", code="INVALID_PROGRAMME")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise InvalidInput(f"未知或缺少权限范围：{', '.join(unknown) or '（空）'}", code="INVALID_SCOPES")
    prefix = _alnum(12)
    secret = secrets.token_urlsafe(30)
    key = f"gcp_{prefix}_{secret}"
    row = PartnerKey(partner_name=partner_name, programme_code=programme_code, scopes=" ".join(sorted(set(scopes))),
                     prefix=prefix, key_hash=hash_token(key), created_by=actor.id, created_at=utcnow())
    session.add(row)
    session.flush()
    record(session, actor=actor.actor(), action="partner.key_created", target_type="partner_key", target_id=row.id,
           summary=f"为 {partner_name} 创建接口密钥 gcp_{prefix}_…（{row.scopes}）",
           after={"programme": programme_code, "scopes": row.scopes})
    return row, key


def authenticate(session: Session, api_key: str | None) -> PartnerPrincipal | None:
    """The partner behind a live key, or ``None`` (constant-time comparison of the hash)."""
    m = KEY_RE.match(api_key or "")
    if not m:
        return None
    row = session.exec(select(PartnerKey).where(PartnerKey.prefix == m.group(1))).first()
    if row is None or row.revoked_at is not None or not hmac.compare_digest(row.key_hash, hash_token(api_key or "")):
        return None
    session.exec(update(PartnerKey).where(col(PartnerKey.id) == row.id).values(last_used_at=utcnow()))
    assert row.id is not None
    return PartnerPrincipal(row.id, row.partner_name, row.programme_code, frozenset(row.scopes.split()))


def revoke_key(session: Session, *, actor: Principal, key_id: int) -> PartnerKey:
    if actor.role != "admin":
        raise Forbidden("只有管理员可以吊销合作方密钥", code="FORBIDDEN")
    row = session.get(PartnerKey, key_id)
    if row is None:
        raise NotFound("密钥不存在", code="KEY_NOT_FOUND")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        record(session, actor=actor.actor(), action="partner.key_revoked", target_type="partner_key", target_id=row.id,
               summary=f"吊销 {row.partner_name} 的接口密钥 gcp_{row.prefix}_…")
    return row


def list_keys(session: Session) -> list[PartnerKey]:
    return list(session.exec(select(PartnerKey).order_by(col(PartnerKey.id).desc()).limit(200)).all())


def count_live(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(PartnerKey).where(col(PartnerKey.revoked_at).is_(None))).one())
