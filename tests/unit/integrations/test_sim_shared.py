"""The simulators on a shared Redis store: two "workers" (two apps, each with its own simulator objects, as
two processes would have) see one WeChat, one WeChat Pay and one SMS vendor. A code minted through one is
redeemed through the other, an order opened on one is paid, queried, refunded and finished on the other, and
the decisions WeChat Pay makes once (pay a prepay_id, refund within the balance) are made once under races."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from gc_admin.integrations.simstore import Codec, MemoryStore, RedisStore, store_for
from gc_admin.integrations.wechat.client import MiniProgramClient, WeChatError
from gc_admin.integrations.wechat.simulator import WeChatSimState, build_wechat_simulator
from gc_admin.integrations.wechatpay.client import WxPayError
from gc_admin.integrations.wechatpay.simulator import (
    SimError,
    SimOrder,
    build_wxpay_simulator,
    finish_refund,
    pay_order,
    sim_state_for,
)
from tests.support import InProcessTransport, race
from tests.unit.integrations.test_wechatpay import APPID, KEYS, MCHID, OPENID, Inbox, make_client

REDIS_URL = os.environ.get("GC_TEST_REDIS_URL")
pytestmark = pytest.mark.skipif(not REDIS_URL, reason="GC_TEST_REDIS_URL is not set: the shared store needs Redis")
WX_BASE = "http://wx.test"
SECRET = "s3cret"


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"gc:test-sim:{uuid.uuid4().hex[:12]}"
    yield name
    RedisStore(REDIS_URL, prefix=name).clear()


def _wechat_worker(prefix: str) -> tuple[WeChatSimState, MiniProgramClient, httpx.Client]:
    state = WeChatSimState(appid=APPID, secret=SECRET, store=RedisStore(REDIS_URL, prefix=prefix))
    app = FastAPI()
    app.include_router(build_wechat_simulator(state))
    transport = InProcessTransport(app)
    client = MiniProgramClient(appid=APPID, secret=SECRET, base_url=WX_BASE, transport=transport)
    return state, client, httpx.Client(base_url=WX_BASE, transport=transport)


def test_a_code_minted_on_one_worker_is_redeemed_once_on_another(prefix):
    _, client_a, phone_a = _wechat_worker(prefix)
    _, client_b, _ = _wechat_worker(prefix)
    minted = phone_a.post("/_mint", json={"openid": "o-alice", "phone": "13812345678"}).json()
    assert client_b.code2session(minted["code"]).openid == "o-alice"
    with pytest.raises(WeChatError) as again:
        client_a.code2session(minted["code"])  # one use, whichever worker is asked
    assert again.value.errcode == 40029
    assert client_b.get_phone_number(minted["phone_code"]) == "13812345678"
    # Both workers hold the same access token (stable_token answers the live one).
    assert client_a.access_token() == client_b.access_token()


def _wxpay_worker(prefix: str, inbox: Inbox):
    state = sim_state_for(KEYS, mchid=MCHID, appid=APPID, deliver=inbox.deliver,
                          store=RedisStore(REDIS_URL, prefix=prefix))
    app = FastAPI()
    app.include_router(build_wxpay_simulator(state), prefix="/sim/wechatpay")
    client = make_client(InProcessTransport(app))
    inbox.client = client
    return state, client


def test_an_order_opened_on_one_worker_is_paid_and_refunded_through_the_other(prefix):
    inbox = Inbox()
    state_a, client_a = _wxpay_worker(prefix, inbox)
    state_b, client_b = _wxpay_worker(prefix, inbox)
    prepay_id = client_a.jsapi_prepay(out_trade_no="GC20261201000001", description="电影券", amount_fen=4500,
                                      payer_openid=OPENID)
    # A retry through the other worker is the same order (same body -> same prepay_id).
    assert client_b.jsapi_prepay(out_trade_no="GC20261201000001", description="电影券", amount_fen=4500,
                                 payer_openid=OPENID) == prepay_id
    notify = pay_order(state_b, prepay_id)
    assert notify is not None and notify.status == 204
    assert [n["resource"]["trade_state"] for n in inbox.accepted] == ["SUCCESS"]
    paid = client_a.query_order("GC20261201000001")
    assert paid["trade_state"] == "SUCCESS" and paid["transaction_id"].startswith("4200")
    with pytest.raises(SimError) as twice:
        pay_order(state_a, prepay_id)
    assert twice.value.code == "ORDERPAID"
    refund = client_b.refund(out_refund_no="RF1", out_trade_no="GC20261201000001", refund_fen=3000, total_fen=4500)
    assert refund["status"] == "PROCESSING" and state_a.refunded("GC20261201000001") == 3000
    with pytest.raises(WxPayError):  # 3000 + 2000 > 4500, whichever worker is asked
        client_a.refund(out_refund_no="RF2", out_trade_no="GC20261201000001", refund_fen=2000, total_fen=4500)
    finish_refund(state_a, "RF1")
    assert client_b.query_refund("RF1")["status"] == "SUCCESS"
    assert [n.event_type for n in state_b.notifies] == ["TRANSACTION.SUCCESS", "REFUND.SUCCESS"]
    assert isinstance(state_b.orders["GC20261201000001"], SimOrder)
    assert state_b.orders["GC20261201000001"].success_time.tzinfo is not None


def test_a_prepay_id_is_paid_once_however_many_workers_race(prefix):
    inbox = Inbox()
    workers = [_wxpay_worker(prefix, inbox) for _ in range(3)]
    prepay_id = workers[0][1].jsapi_prepay(out_trade_no="GC20261201000002", description="x", amount_fen=100,
                                           payer_openid=OPENID)
    results = race(9, lambda i: pay_order(workers[i % 3][0], prepay_id))
    assert len([r for r in results if not isinstance(r, Exception)]) == 1, results
    assert {r.code for r in results if isinstance(r, SimError)} == {"ORDERPAID"}
    assert len(inbox.accepted) == 1


def test_refunds_race_within_the_balance(prefix):
    inbox = Inbox()
    workers = [_wxpay_worker(prefix, inbox) for _ in range(2)]
    prepay_id = workers[0][1].jsapi_prepay(out_trade_no="GC20261201000003", description="x", amount_fen=1000,
                                           payer_openid=OPENID)
    pay_order(workers[1][0], prepay_id)
    results = race(6, lambda i: workers[i % 2][1].refund(out_refund_no=f"R{i}", out_trade_no="GC20261201000003",
                                                         refund_fen=400, total_fen=1000))
    assert len([r for r in results if not isinstance(r, Exception)]) == 2, results  # 2 x 400 <= 1000 < 3 x 400
    assert workers[0][0].refunded("GC20261201000003") == 800


def test_store_choice_and_codec():
    assert isinstance(store_for(redis_url="", database_url="sqlite://"), MemoryStore)
    a = store_for(redis_url=REDIS_URL, database_url="postgresql://a")
    b = store_for(redis_url=REDIS_URL, database_url="postgresql://b")
    assert isinstance(a, RedisStore) and a.prefix != b.prefix  # two deployments on one Redis stay apart
    assert store_for(redis_url=REDIS_URL, database_url="postgresql://a").prefix == a.prefix
    when = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.timezone.utc)
    codec = Codec(dict)
    assert codec.loads(codec.dumps({"at": when, "raw": b"\x00\xff", "n": [1, "x"]})) == {
        "at": when, "raw": b"\x00\xff", "n": [1, "x"]}
    assert Codec(tuple).loads(Codec(tuple).dumps(("o-1", 1.5))) == ("o-1", 1.5)
