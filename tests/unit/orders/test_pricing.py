"""Pricing (SPEC.md §4.6): the fixed step order, the combination rules, and properties (hypothesis):
never negative, no step exceeds what remains, parts sum exactly to the list price, quoting twice
gives the same result, quoting has no side effects."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gc_admin.core.errors import Conflict, InvalidInput, NotFound
from gc_admin.coupons import service as coupons
from gc_admin.db import session_scope
from gc_admin.orders import pricing
from gc_admin.orders.pricing import FUNDERS, PERCENT_OFF_CAP_FEN, STEP_KINDS, OrderDraft, PricingInput, price
from gc_admin.payments import balances
from tests.unit.coupons.support import STAFF
from tests.unit.orders.support import buyer, shop, table_counts

fen = st.integers(min_value=0, max_value=10**8)


@st.composite
def inputs(draw) -> PricingInput:
    percent = draw(st.none() | st.integers(1, 99))
    return PricingInput(
        list_fen=draw(fen), exchange_voucher_fen=draw(st.just(0) | fen),
        exchange_funded_by=draw(st.sampled_from(["insurer", "platform"])), merchant_discount_fen=draw(fen),
        coupon_face_fen=0 if percent else draw(fen), coupon_percent_off=percent,
        coupon_funded_by=draw(st.sampled_from(["insurer", "platform"])), points_requested=draw(fen),
        points_balance=draw(fen), use_stored_value=draw(st.booleans()), stored_value_balance=draw(fen),
    )


@given(inputs())
@settings(max_examples=500, deadline=None)
def test_price_properties(inp: PricingInput) -> None:
    steps, payable = price(inp)
    assert isinstance(payable, int) and payable >= 0
    remaining = inp.list_fen
    for step in steps:
        assert type(step.amount_fen) is int and 0 < step.amount_fen <= remaining  # never more than what remains
        assert step.funded_by in FUNDERS
        remaining -= step.amount_fen
    assert remaining == payable
    assert sum(s.amount_fen for s in steps) + payable == inp.list_fen  # parts sum exactly to the list price
    kinds = [s.kind for s in steps]
    assert kinds == [k for k in STEP_KINDS if k in kinds] and len(set(kinds)) == len(kinds)  # the fixed order
    assert price(inp) == (steps, payable)  # deterministic
    by = {s.kind: s for s in steps}
    if "points" in by:
        assert by["points"].amount_fen <= min(inp.points_requested, inp.points_balance)
        assert by["points"].funded_by == "platform"
    if "stored_value" in by:
        assert inp.use_stored_value and by["stored_value"].amount_fen <= inp.stored_value_balance
        assert by["stored_value"].funded_by == "user"
    if "merchant_discount" in by:
        assert by["merchant_discount"].funded_by == "merchant"
    if inp.coupon_percent_off is not None and "coupon" in by:
        assert by["coupon"].amount_fen <= PERCENT_OFF_CAP_FEN


def test_step_order_and_funders_by_example() -> None:
    steps, payable = price(PricingInput(
        list_fen=20_000, exchange_voucher_fen=0, merchant_discount_fen=1_000, coupon_face_fen=3_000,
        coupon_funded_by="insurer", points_requested=500, points_balance=800, use_stored_value=True,
        stored_value_balance=2_000))
    assert [(s.kind, s.amount_fen, s.funded_by) for s in steps] == [
        ("merchant_discount", 1_000, "merchant"), ("coupon", 3_000, "insurer"), ("points", 500, "platform"),
        ("stored_value", 2_000, "user")]
    assert payable == 13_500
    # flower: 150 -> 30 off -> pays 120 (SPEC.md §4.1)
    steps, payable = price(PricingInput(list_fen=15_000, coupon_face_fen=3_000))
    assert payable == 12_000 and steps[0].amount_fen == 3_000


def test_percent_off_rounds_down_and_is_capped() -> None:
    steps, payable = price(PricingInput(list_fen=999, coupon_percent_off=15))
    assert steps[0].amount_fen == 149 and payable == 850  # 149.85 -> 149 fen
    steps, payable = price(PricingInput(list_fen=10_000_000, coupon_percent_off=50))
    assert steps[0].amount_fen == PERCENT_OFF_CAP_FEN and payable == 10_000_000 - PERCENT_OFF_CAP_FEN
    steps, _ = price(PricingInput(list_fen=10_000, merchant_discount_fen=4_000, coupon_percent_off=10))
    assert [s.amount_fen for s in steps] == [4_000, 600]  # percent of what remains after the merchant discount


def test_big_discounts_never_go_below_zero() -> None:
    steps, payable = price(PricingInput(list_fen=5_000, exchange_voucher_fen=5_000, merchant_discount_fen=100,
                                        coupon_face_fen=3_000, points_requested=99, points_balance=99))
    assert payable == 0 and [s.kind for s in steps] == ["exchange_voucher"]


def test_floats_and_negatives_are_refused() -> None:
    with pytest.raises(TypeError):
        price(PricingInput(list_fen=100.0))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        price(PricingInput(list_fen=100, coupon_face_fen=True))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        price(PricingInput(list_fen=-1))
    with pytest.raises(ValueError):
        price(PricingInput(list_fen=100, coupon_percent_off=100))


# --- quote() against the database ----------------------------------------------------------------------

@pytest.fixture
def world(db):
    shop()
    user = buyer()
    other = buyer("13900000000", openid="oOther")
    with session_scope() as s:
        r = coupons.issue_batch(s, actor=STAFF, source="staff", batch_id="flowers", product_code="flower30",
                                phones=[user.phone, other.phone])
        rows = r.rows()
        coupons.issue_batch(s, actor=STAFF, source="staff", batch_id="fuel", product_code="fuel50", phones=[user.phone])
        balances.move_points(s, user_id=user.id, delta=1_200, reason="注册赠送", ref="welcome:1")
        balances.move_stored_value(s, user_id=user.id, delta_fen=2_000, reason="充值", ref="load:1")
    mine, theirs = rows[0]["coupon_ids"][0], rows[1]["coupon_ids"][0]
    with session_scope() as s:
        fuel = [c.id for c in coupons.list_user_coupons(s, user=user) if c.kind == "cashback"][0]
    return user, mine, theirs, fuel


def _q(user, **body):
    with session_scope() as s:
        return pricing.quote(s, user=user, body=body)


def topup(**kw):
    return {"type": "topup", "details": {"mobile": "13812345678", "face_fen": 10_000}, **kw}


def test_quote_topup_with_coupon_points_and_stored_value(world) -> None:
    user, mine, _, _ = world
    q = _q(user, **topup(coupon_id=mine, points=700, use_stored_value=True))
    assert q.list_fen == 10_000
    assert [(s.kind, s.amount_fen, s.funded_by) for s in q.steps] == [
        ("coupon", 3_000, "insurer"), ("points", 700, "platform"), ("stored_value", 2_000, "user")]
    assert q.payable_fen == 4_300 and q.points_used == 700 and q.stored_value_fen == 2_000
    d = q.to_dict()
    assert d["pricing"] == {"list_fen": 10_000, "payable_fen": 4_300, "steps": [
        {"kind": "coupon", "label": "平台优惠券", "amount_fen": 3_000, "funded_by": "insurer", "ref": f"coupon:{mine}"},
        {"kind": "points", "label": "积分抵扣", "amount_fen": 700, "funded_by": "platform"},
        {"kind": "stored_value", "label": "储值卡", "amount_fen": 2_000, "funded_by": "user"}]}


def test_quote_rules(world) -> None:
    user, mine, theirs, fuel = world
    with pytest.raises(Conflict) as err:  # coupons do not buy coupons
        _q(user, type="coupon_purchase", product_code="tpp50", quantity=1, coupon_id=mine)
    assert err.value.code == "COUPON_NOT_APPLICABLE"
    with pytest.raises(Conflict) as err:  # cashback coupons are paid out, not used on an order
        _q(user, **topup(coupon_id=fuel))
    assert err.value.code == "COUPON_NOT_APPLICABLE"
    with pytest.raises(NotFound) as err:  # someone else's coupon is as good as missing
        _q(user, **topup(coupon_id=theirs))
    assert err.value.code == "COUPON_NOT_FOUND"
    with pytest.raises(Conflict) as err:
        _q(user, **topup(points=1_201))
    assert err.value.code == "POINTS_INSUFFICIENT"
    with pytest.raises(InvalidInput) as ierr:
        _q(user, type="coupon_purchase", product_code="tpp50", quantity=6)  # above the per-user limit
    assert ierr.value.code == "INVALID_ORDER"
    with pytest.raises(Conflict) as err:
        _q(user, type="coupon_purchase", product_code="tpp5", quantity=1)
    assert err.value.code == "PRODUCT_NOT_ON_SALE"
    for bad, code in (({"mobile": "12345", "face_fen": 5_000}, "INVALID_MOBILE"),
                      ({"mobile": "13812345678", "face_fen": 6_000}, "INVALID_FACE"),
                      ({"mobile": "13812345678", "face_fen": 5_000.0}, "INVALID_FACE")):
        with pytest.raises(InvalidInput) as err:
            _q(user, type="topup", details=bad)
        assert err.value.code == code, bad
    with pytest.raises(InvalidInput) as ierr:
        _q(user, type="goods")  # orderable since issue 10, but not without its goods body
    assert ierr.value.code == "INVALID_ORDER"
    with pytest.raises(InvalidInput) as err:
        _q(user, type="coupon_purchase", product_code="tpp50", quantity=1.0)
    assert err.value.code == "INVALID_ORDER"


def test_quote_coupon_purchase(world) -> None:
    user, *_ = world
    q = _q(user, type="coupon_purchase", product_code="tpp50", quantity=3, points=100)
    assert q.list_fen == 13_500 and q.payable_fen == 13_400
    assert q.to_dict()["lines"] == [{"code": "tpp50", "name": "淘票票通兑券 50 元", "quantity": 3, "unit_fen": 4_500,
                                     "amount_fen": 13_500}]


@given(points=st.integers(0, 1_200), use_sv=st.booleans(), with_coupon=st.booleans(),
       face=st.sampled_from([5_000, 10_000]))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_quote_is_repeatable_and_has_no_side_effects(world, points, use_sv, with_coupon, face) -> None:
    user, mine, _, _ = world
    body = {"type": "topup", "details": {"mobile": "13812345678", "face_fen": face}, "points": points,
            "use_stored_value": use_sv, **({"coupon_id": mine} if with_coupon else {})}
    before = table_counts()
    first, second = _q(user, **body), _q(user, **body)
    assert first == second
    assert table_counts() == before
    assert first.payable_fen >= 0
    assert sum(s.amount_fen for s in first.steps) + first.payable_fen == first.list_fen == face


def test_order_draft_refuses_unknown_fields() -> None:
    with pytest.raises(InvalidInput) as err:
        OrderDraft.of({"type": "topup", "discount_fen": 100})
    assert err.value.code == "INVALID_ORDER"
    assert dataclasses.replace(OrderDraft(type="topup"), points=3).points == 3
