"""Batch issuance of one coupon to each of 100,000 phones through :func:`gc_admin.coupons.service.issue_batch`
(validate phones, idempotency record, claim codes, create coupons, per-row results, audit; committed),
against the minimal SQL doing the same assignment on an identical copy of the database: the phone
list joined by rank to the earliest-expiring issuable codes, coupons inserted and codes marked
issued — one statement on PostgreSQL (data-modifying CTE over ``unnest(phones)``). SQLite can
neither change two tables in one statement nor join a JSON array by position efficiently, so its
baseline is: the phones into an INTEGER PRIMARY KEY temp table from ``json_each`` (one statement),
one INSERT ... SELECT, one UPDATE. 10% of the phones belong to
registered users in both runs (the coupon gets their user id).

Prints ``issue_100k_sqlite: ratio`` (and ``issue_100k_pg: ratio`` when ``GC_TEST_PG_URL`` is set);
ratio = our time / baseline time. Target: <= 2.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FULL = 100_000

BASE_SQLITE = (
    "CREATE TEMP TABLE p (rn INTEGER PRIMARY KEY, phone TEXT)",
    "INSERT INTO p SELECT key, value FROM json_each(:phones)",
    """
INSERT INTO coupon (product_id, phone, user_id, stock_code_id, status, face_fen, cost_fen, issued_at, expires_at, source)
SELECT :pid, p.phone, u.id, c.id, 'available', c.face_fen, c.cost_fen, :now, c.expires_at, 'staff'
FROM (SELECT id, face_fen, cost_fen, expires_at, row_number() OVER (ORDER BY expires_at, id) - 1 AS rn
      FROM stock_code WHERE product_id = :pid AND state = 'in_stock' AND expires_at >= :min_exp
      ORDER BY expires_at, id LIMIT :n) c
JOIN p ON p.rn = c.rn
LEFT JOIN mp_user u ON u.phone = p.phone""",
    "UPDATE stock_code SET state = 'issued' WHERE id IN (SELECT stock_code_id FROM coupon)",
    "DROP TABLE temp.p",
)

BASE_PG = """
WITH p AS (SELECT phone, ord - 1 AS rn FROM unnest(CAST(:phones AS text[])) WITH ORDINALITY AS x(phone, ord)),
c AS (SELECT id, face_fen, cost_fen, expires_at, row_number() OVER (ORDER BY expires_at, id) - 1 AS rn
      FROM stock_code WHERE product_id = :pid AND state = 'in_stock' AND expires_at >= :min_exp
      ORDER BY expires_at, id LIMIT :n),
u AS (UPDATE stock_code s SET state = 'issued' FROM c WHERE s.id = c.id)
INSERT INTO coupon (product_id, phone, user_id, stock_code_id, status, face_fen, cost_fen, issued_at, expires_at, source)
SELECT :pid, p.phone, m.id, c.id, 'available', c.face_fen, c.cost_fen, :now, c.expires_at, 'staff'
FROM p JOIN c ON c.rn = p.rn LEFT JOIN mp_user m ON m.phone = p.phone"""


def phones(n: int) -> list[str]:
    return [f"139{i:08d}" for i in range(n)]


def _setup(url: str, n: int) -> None:
    """Migrate, a product, 1.2 n codes in stock (mixed expiries), users for every tenth phone."""
    import sqlalchemy as sa

    from bench.bench_import import make_csv
    from gc_admin.audit.service import SYSTEM
    from gc_admin.cli import migrate
    from gc_admin.core.clock import utcnow
    from gc_admin.coupons.service import create_product, import_codes
    from gc_admin.db import session_scope

    migrate(url)
    with session_scope(url) as s:
        create_product(s, actor=SYSTEM, code="tpp50", name="淘票票通兑券50", kind="redemption_code", face_fen=5000,
                       cost_fen=4500)
    data, _ = make_csv(int(n * 1.2), seed=11)
    with session_scope(url) as s:
        import_codes(s, actor=SYSTEM, product_code="tpp50", data=data, filename="stock.csv")
    now = utcnow()
    with session_scope(url) as s:
        s.execute(sa.text("INSERT INTO mp_user (phone, nickname, city, created_at) VALUES (:p, '', '', :t)"),
                  [{"p": p, "t": now} for p in phones(n)[::10]])


def _ours(url: str, n: int) -> float:
    from gc_admin.audit.service import SYSTEM
    from gc_admin.coupons.service import issue_batch
    from gc_admin.db import session_scope

    batch = phones(n)
    start = time.perf_counter()
    with session_scope(url) as s:
        result = issue_batch(s, actor=SYSTEM, source="staff", batch_id="bench-1", product_code="tpp50", phones=batch)
    took = time.perf_counter() - start
    assert result.issued == n and result.coupons == n, (result.issued, result.coupons)
    return took


def _baseline(url: str, n: int) -> float:
    import sqlalchemy as sa

    from gc_admin.core.bulk import db_time
    from gc_admin.core.clock import utcnow
    from gc_admin.db import session_scope

    batch = phones(n)
    start = time.perf_counter()
    with session_scope(url) as s:
        now = utcnow()
        pid = s.execute(sa.text("SELECT id FROM product WHERE code = 'tpp50'")).scalar_one()
        params = {"pid": pid, "n": n, "now": db_time(s, now), "min_exp": db_time(s, now + dt.timedelta(days=30))}
        if s.get_bind().dialect.name == "postgresql":
            s.execute(sa.text(BASE_PG), {**params, "phones": batch})
        else:
            params["phones"] = json.dumps(batch)
            for sql in BASE_SQLITE:
                s.execute(sa.text(sql), {k: v for k, v in params.items() if f":{k}" in sql})
    took = time.perf_counter() - start
    with session_scope(url) as s:
        assert s.execute(sa.text("SELECT count(*) FROM coupon")).scalar_one() == n
    return took


def main(scale: float = 1.0) -> None:
    from bench.common import pg_schema
    from gc_admin.db import dispose_engines

    n = max(1000, int(FULL * scale))
    label = "100k" if n == FULL else f"{n}"
    with tempfile.TemporaryDirectory() as tmp:
        ours_url = f"sqlite:///{Path(tmp) / 'ours.db'}"
        base_url = f"sqlite:///{Path(tmp) / 'base.db'}"
        _setup(ours_url, n)
        dispose_engines()
        shutil.copyfile(Path(tmp) / "ours.db", Path(tmp) / "base.db")
        base = _baseline(base_url, n)
        ours = _ours(ours_url, n)
        dispose_engines()
        print(f"issue_{label}_sqlite: {ours / base:.2f}  (ours {ours:.2f}s, baseline SQL {base:.2f}s, {n:,} phones)",
              flush=True)
    pg = os.environ.get("GC_TEST_PG_URL")
    if pg:
        with pg_schema(pg) as ours_url, pg_schema(pg) as base_url:
            _setup(ours_url, n)
            _setup(base_url, n)
            base = _baseline(base_url, n)
            ours = _ours(ours_url, n)
            print(f"issue_{label}_pg: {ours / base:.2f}  (ours {ours:.2f}s, baseline SQL {base:.2f}s, {n:,} phones)",
                  flush=True)


if __name__ == "__main__":
    from bench.common import cli

    cli(main)
