import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from gc_admin.accounts.service import Principal
from gc_admin.audit.models import AuditLog
from gc_admin.core.errors import Forbidden, InvalidInput
from gc_admin.core.http import install_error_handlers
from gc_admin.partners.deps import require_partner
from gc_admin.db import session_scope
from gc_admin.partners import service
from gc_admin.partners.models import PartnerKey

ADMIN = Principal(1, "admin", "王敏", "admin")


def _create(scopes=("issuance:write",), name="人保之友俱乐部"):
    with session_scope() as s:
        return service.create_key(s, actor=ADMIN, partner_name=name, programme_code="picc_gx", scopes=list(scopes))


def test_key_is_hashed_and_authenticates(any_db, make_staff):
    make_staff("admin", "admin")
    row, key = _create()
    with session_scope() as s:
        stored = s.get(PartnerKey, row.id)
        assert key not in (stored.key_hash, stored.prefix) and stored.key_hash != key
        p = service.authenticate(s, key)
        assert (p.partner_name, p.programme_code, p.scopes) == ("人保之友俱乐部", "picc_gx", frozenset({"issuance:write"}))
        assert service.authenticate(s, key[:-1] + ("x" if key[-1] != "x" else "y")) is None
        assert service.authenticate(s, "") is None and service.authenticate(s, "gcp_short") is None
        audit = " ".join(a.summary for a in s.exec(__import__("sqlmodel").select(AuditLog)).all())
        assert key not in audit


def test_revoked_key_stops_working(db, make_staff):
    make_staff("admin", "admin")
    row, key = _create()
    with session_scope() as s:
        service.revoke_key(s, actor=ADMIN, key_id=row.id)
    with session_scope() as s:
        assert service.authenticate(s, key) is None


def test_only_admins_and_valid_input(db):
    with pytest.raises(Forbidden) as err:
        with session_scope() as s:
            service.create_key(s, actor=Principal(2, "c", "c", "clerk"), partner_name="x", programme_code="picc_gx",
                               scopes=["issuance:write"])
    assert err.value.code == "FORBIDDEN"
    with pytest.raises(InvalidInput) as err:
        _create(scopes=("everything",))
    assert err.value.code == "INVALID_SCOPES"
    with pytest.raises(InvalidInput) as err:
        _create(scopes=())
    assert err.value.code == "INVALID_SCOPES"


def test_dependency_checks_key_and_scope(db, make_staff):
    make_staff("admin", "admin")
    _, key = _create(scopes=("issuance:read",))
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/w")
    def w(p=Depends(require_partner("issuance:write"))):
        return {"who": p.partner_name}

    @app.get("/r")
    def r(p=Depends(require_partner("issuance:read"))):
        return {"who": p.partner_name}

    c = TestClient(app)
    assert c.get("/r", headers={"X-Api-Key": key}).json() == {"who": "人保之友俱乐部"}
    denied = c.get("/w", headers={"X-Api-Key": key})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "SCOPE_MISSING"
    missing = c.get("/r")
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "INVALID_API_KEY"
