"""Programmes (保险项目): one programme per code, however many twins race to create it (SQLite and PostgreSQL)."""

from __future__ import annotations

from gc_admin.db import session_scope
from tests.support import SETUP, only_one_created, race, scalar

N = 8  # threads released at once in a race


def test_concurrent_programmes_with_one_code_create_one(any_db) -> None:
    from gc_admin.programmes import service as programmes

    def work(i: int) -> int:
        with session_scope() as s:
            return programmes.create_programme(s, actor=SETUP, code="picc_gx", name=f"广西人保{i}").id

    only_one_created(race(N, work), "PROGRAMME_EXISTS")
    assert scalar("SELECT count(*) FROM programme") == 1
