"""订单看板 first cards: :func:`gc_admin.orders.kanban.service.board` (every column's capped count and first
page of cards, as the board's load runs it) with 100,000 orders in the database against the same with 100,
in one run. SQLite always; PostgreSQL too when ``GC_TEST_PG_URL`` is set.

Prints ``kanban_first_cards_<db>: ratio`` (time with 100,000 / time with 100; target <= 1.5).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FULL = 100_000
SMALL = 100
# a realistic spread: most orders are finished; a few hundred are being worked on
WEIGHTS = {"completed": 80, "refunded": 4, "cancelled": 8, "created": 1, "paid": 2, "accepted": 2,
           "in_fulfilment": 1, "after_sales": 1, "refund_requested": 1}


def _fill(url: str, n: int) -> None:
    from sqlalchemy import insert

    from gc_admin.db import session_scope
    from gc_admin.orders.models import ServiceOrder
    from gc_admin.users.models import MpUser

    rng = random.Random(7)
    now = dt.datetime.now(dt.timezone.utc)
    statuses, weights = list(WEIGHTS), list(WEIGHTS.values())
    with session_scope(url) as s:
        users = [{"phone": f"139{i:08d}", "openid": f"oBench{i:020d}", "created_at": now}
                 for i in range(1000)]
        s.execute(insert(MpUser), users)
        uid = [r[0] for r in s.execute(MpUser.__table__.select().with_only_columns(MpUser.__table__.c.id)).all()]
        rows = []
        for i in range(n):
            st = rng.choices(statuses, weights)[0]
            created = now - dt.timedelta(minutes=rng.randint(1, 60 * 24 * 180))
            paid = None if st in ("created", "cancelled") else created + dt.timedelta(minutes=1)
            t = rng.choice(("topup", "coupon_purchase", "flower"))
            rows.append({"order_no": f"GC{i:018d}", "type": t, "status": st, "user_id": rng.choice(uid),
                         "list_fen": 5000, "payable_fen": 5000, "paid_fen": 5000 if paid else 0, "refunded_fen": 0,
                         "pricing": {}, "details": {"lines": [{"name": "话费充值 50 元", "quantity": 1}],
                                                    "mobile": "13812345678", "face_fen": 5000},
                         "fulfilment": {}, "points_used": 0, "stored_value_fen": 0, "pay_expires_at": created,
                         "created_at": created, "updated_at": created, "paid_at": paid,
                         "city": rng.choice(("南宁", "柳州", "桂林", None))})
            if len(rows) == 5000:
                s.execute(insert(ServiceOrder), rows)
                rows = []
        if rows:
            s.execute(insert(ServiceOrder), rows)
    if url.startswith("postgresql"):  # what autovacuum does to a live table: statistics and the visibility map
        import sqlalchemy as sa

        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            c.execute(sa.text("VACUUM ANALYZE service_order"))
            c.execute(sa.text("VACUUM ANALYZE mp_user"))
        engine.dispose()


def _time_board(url: str, repeats: int) -> float:
    from gc_admin.db import session_scope
    from gc_admin.orders import service as orders
    from gc_admin.orders.kanban import service as kanban

    scope = orders.scope_for("clerk")
    filters = kanban.BoardFilters.within(scope)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with session_scope(url) as s:
            orders.change_mark(s)
            cols = kanban.board(s, filters=filters)
        times.append(time.perf_counter() - t0)
        assert sum(len(c.cards) for c in cols) > 0
    return statistics.median(times)


def _databases(tmp: str) -> list[tuple[str, str, str]]:
    from tests.support import fresh_pg

    out = [("sqlite", f"sqlite:///{Path(tmp) / 'small.db'}", f"sqlite:///{Path(tmp) / 'big.db'}")]
    pg = os.environ.get("GC_TEST_PG_URL")
    if pg:
        small, big = fresh_pg(pg), fresh_pg(pg)
        out.append(("postgresql", next(small), next(big)))
        _databases.keep = (small, big)  # type: ignore[attr-defined]  # the schemas live until the bench ends
    return out


def main(scale: float = 1.0) -> None:
    from tests.support import migrate, use_database

    n_big = max(1000, int(FULL * scale))
    with tempfile.TemporaryDirectory() as tmp:
        for name, small, big in _databases(tmp):
            for url, n in ((small, SMALL), (big, n_big)):
                if name == "sqlite":
                    migrate(url)
                use_database(url)
                _fill(url, n)
            use_database(small)
            _time_board(small, 3)  # warm-up
            t_small = _time_board(small, 15)
            use_database(big)
            _time_board(big, 3)
            t_big = _time_board(big, 15)
            print(f"kanban_first_cards_{name}: {t_big / t_small:.2f}  ({n_big} orders {t_big * 1000:.1f} ms, "
                  f"{SMALL} orders {t_small * 1000:.1f} ms)", flush=True)
    for gen in getattr(_databases, "keep", ()):
        gen.close()  # drop the PostgreSQL schemas
