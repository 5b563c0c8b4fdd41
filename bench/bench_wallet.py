"""``GET /api/v1/mp/coupons`` for a user holding 100 coupons while 1,000,000 codes sit in stock,
against the app's trivial JSON endpoint ``GET /api/v1/health``, both served in-process by the
same FastAPI app (token check, unit of work, query, serialisation included).

Prints ``mp_coupons_1m_sqlite: ratio`` (time per request / baseline time per request; target:
<= 2, i.e. at least half the trivial endpoint's request rate).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import rate  # noqa: E402  (after the path: the file also runs as a script)

FULL_CODES = 1_000_000


def main(scale: float = 1.0) -> None:
    from fastapi.testclient import TestClient

    from gc_admin.api import build_api
    from gc_admin.audit.service import Actor
    from gc_admin.core.clock import utcnow
    from gc_admin.coupons import service
    from gc_admin.db import session_scope
    from gc_admin.users.models import MpUser
    from gc_admin.users.service import _grant
    from tests.support import migrate, use_database

    n_codes = max(1000, int(FULL_CODES * scale))
    actor = Actor("system", None, "bench")
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'wallet.db'}"
        use_database(url)
        migrate(url)
        csv = ("code,expires_at\n" + "".join(f"BENCH{i:09d},2099-12-31\n" for i in range(n_codes))).encode()
        with session_scope() as s:
            service.create_programme(s, actor=actor, code="picc_gx", name="广西人保车主权益")
            service.create_product(s, actor=actor, code="tpp50", name="淘票票通兑券 50 元", kind="redemption_code",
                                   face_fen=5000, cost_fen=4200, programme_code="picc_gx")
            service.import_codes(s, actor=actor, product_code="tpp50", data=csv, filename="bench.csv")
            user = MpUser(phone="13800001111", openid="bench-openid", created_at=utcnow())
            s.add(user)
            s.flush()
            service.issue_batch(s, actor=actor, source="staff", batch_id="bench-100", product_code="tpp50",
                                phones=["13800001111"], per_phone=20)
            for i in range(4):
                service.issue_batch(s, actor=actor, source="staff", batch_id=f"bench-100-{i}", product_code="tpp50",
                                    phones=["13800001111"], per_phone=20)
            token = _grant(user).token
        client = TestClient(build_api())
        auth = {"Authorization": f"Bearer {token}"}
        assert len(client.get("/api/v1/mp/coupons", headers=auth).json()["items"]) == 100
        seconds = max(2.0, 8.0 * scale)
        base = rate(client, "/api/v1/health", {}, seconds)
        ours = rate(client, "/api/v1/mp/coupons", auth, seconds)
        print(f"mp_coupons_{n_codes // 1000}k_sqlite: {base / ours:.2f}  (health {base:.0f} req/s, "
              f"my coupons {ours:.0f} req/s with {n_codes:,} codes in stock and 100 coupons)")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0)
