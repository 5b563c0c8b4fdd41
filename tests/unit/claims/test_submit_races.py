"""Submission races, on SQLite and PostgreSQL: one coupon backs at most one open claim; one client_ref
makes one claim (the loser's stored files are removed again)."""

from __future__ import annotations

import pytest

from tests.support import race, rows, scalar, sms_user, statuses
from tests.unit.claims.conftest import stored_files
from tests.unit.claims.support import give_coupons, post_claim

pytestmark = pytest.mark.usefixtures("any_db")
N = 4


def test_one_coupon_backs_one_claim_when_claims_race(api, claims_env):
    (coupon_id,) = give_coupons("13812345678", "fuel")
    user = sms_user(api, "13812345678")
    answers = race(N, lambda i: post_claim(api, user, client_ref=f"r{i}", amount_paid_fen=12800 + i))
    assert statuses(answers) == {201: N}
    got = sorted(a.json()["status"] for a in answers)
    assert got == ["pending_review"] + ["refused"] * (N - 1)
    holder = [a.json() for a in answers if a.json()["status"] == "pending_review"][0]
    assert holder["coupon_id"] == coupon_id
    assert rows("SELECT status, reserved_for FROM coupon") == [("reserved", f"claim:{holder['id']}")]
    assert scalar("SELECT count(*) FROM claim WHERE coupon_id IS NOT NULL") == 1


def test_one_client_ref_makes_one_claim_when_retries_race(api, claims_env):
    give_coupons("13812345678", "fuel", n=2)
    user = sms_user(api, "13812345678")
    answers = race(N, lambda i: post_claim(api, user, client_ref="same"))
    assert not [a for a in answers if isinstance(a, Exception)]
    assert {a.status_code for a in answers} <= {200, 201} and [a.status_code for a in answers].count(201) == 1
    assert len({a.json()["id"] for a in answers}) == 1
    assert scalar("SELECT count(*) FROM claim") == 1 and scalar("SELECT count(*) FROM claim_image") == 1
    assert len(stored_files(claims_env)) == 1  # the losers' files are gone
    assert scalar("SELECT count(*) FROM coupon WHERE status = 'reserved'") == 1
