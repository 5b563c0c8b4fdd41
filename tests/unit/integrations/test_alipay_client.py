"""The Alipay client against the simulator mounted in the app (``/sim/alipay``), as a payout would use it.

Every call goes through the real client, the app's routes, the simulator's signature checks and its
database state; timeouts go over a real socket (uvicorn on loopback) so that httpx's own timeout fires.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from gc_admin.core.clock import utcnow
from gc_admin.integrations import sims
from gc_admin.integrations.alipay import AlipayClient, Payee, setup
from gc_admin.integrations.alipay import client as client_module
from gc_admin.integrations.alipay import protocol as p
from gc_admin.integrations.alipay.certs import DevPki
from gc_admin.integrations.alipay.simulator import inject_fault, transfers_for
from tests.support import race

PAYEE = Payee.login_id("13800000001", "张三")


@pytest.fixture
def alipay(api):
    """The app's Alipay client, wired into the app's own simulator."""
    return setup.get_client()


@pytest.fixture
def sim(api):
    return sims.simulators().alipay


def pay(client: AlipayClient, out_biz_no: str, amount_fen: int = 1230, payee: Payee = PAYEE):
    return client.transfer(out_biz_no=out_biz_no, amount_fen=amount_fen, payee=payee, order_title="加油返现")


def count(sim, out_biz_no: str) -> int:
    return len(transfers_for(sim, out_biz_no))


@pytest.fixture(scope="module")
def stranger() -> DevPki:
    """Credentials of nobody Alipay knows (one set for the module: RSA keys are slow to make)."""
    return DevPki.generate()


def client_like(client: AlipayClient, **changes) -> AlipayClient:
    """Another client for the same gateway and transport, with some credentials changed."""
    pki = setup.dev_pki()
    kw = dict(app_id=client.app_id, app_private_key_pem=pki.app_private_key, app_cert_pem=pki.app_cert,
              alipay_cert_pem=pki.alipay_cert, alipay_root_cert_pem=pki.alipay_root_cert, gateway=client.gateway,
              transport=setup._holder.transport)
    kw.update(changes)
    return AlipayClient(**kw)


# --- the transfer -------------------------------------------------------------------------------------

def test_a_transfer_succeeds_once_and_is_queryable(alipay, sim):
    result = pay(alipay, "GC-CB-1-1", 1230)
    assert result.status == "SUCCESS" and result.alipay_status == "SUCCESS"
    assert result.order_id and result.pay_fund_order_id and result.error_code == p.CODE_SUCCESS
    assert count(sim, "GC-CB-1-1") == 1 and transfers_for(sim, "GC-CB-1-1")[0].amount_fen == 1230
    found = alipay.query(out_biz_no="GC-CB-1-1")
    assert (found.status, found.order_id, found.amount_fen) == ("SUCCESS", result.order_id, 1230)
    assert found.pay_fund_order_id == result.pay_fund_order_id and found.pay_date


def test_the_request_is_a_signed_cert_mode_form_in_beijing_time(alipay):
    params = alipay.request_params(p.METHOD_TRANSFER, {"out_biz_no": "x", "trans_amount": p.fen_to_yuan(5)})
    assert params["app_cert_sn"] == alipay.app_cert_sn and params["alipay_root_cert_sn"].count("_") == 1
    assert params["sign_type"] == "RSA2" and params["biz_content"] == '{"out_biz_no":"x","trans_amount":"0.05"}'
    sent = p.parse_alipay_timestamp(params["timestamp"])
    assert abs((sent - utcnow()).total_seconds()) < 60  # Beijing wall time, not the server's UTC one


def test_the_same_out_biz_no_again_is_the_same_order_never_a_second_transfer(alipay, sim):
    first = pay(alipay, "GC-CB-2-1")
    again = pay(alipay, "GC-CB-2-1")
    assert again.status == "SUCCESS" and again.order_id == first.order_id
    assert count(sim, "GC-CB-2-1") == 1


def test_a_different_amount_under_a_used_out_biz_no_is_refused_and_is_not_a_failure(alipay, sim):
    first = pay(alipay, "GC-CB-3-1", 1230)
    other = pay(alipay, "GC-CB-3-1", 9990)
    assert (other.status, other.sub_code) == ("UNKNOWN", p.PAYMENT_INFO_INCONSISTENCY)  # query, do not pay again
    other_payee = pay(alipay, "GC-CB-3-1", 1230, Payee.login_id("13800000002", "李四"))
    assert other_payee.sub_code == p.PAYMENT_INFO_INCONSISTENCY
    found = alipay.query(out_biz_no="GC-CB-3-1")
    assert (found.status, found.order_id, found.amount_fen) == ("SUCCESS", first.order_id, 1230)
    assert count(sim, "GC-CB-3-1") == 1


def test_concurrent_identical_transfers_move_money_once(any_db, alipay, sim):
    results = race(6, lambda i: pay(alipay, "GC-CB-RACE-1"))
    assert {r.status for r in results} == {"SUCCESS"}, results
    assert len({r.order_id for r in results}) == 1
    assert count(sim, "GC-CB-RACE-1") == 1


@pytest.mark.parametrize("fen, sub_code", [(9, p.EXCEED_LIMIT_SM_MIN_AMOUNT), (5_000_001, p.EXCEED_LIMIT_SM_AMOUNT)])
def test_amounts_outside_the_single_transfer_range_fail(alipay, sim, fen, sub_code):
    result = pay(alipay, f"GC-CB-LIM-{fen}", fen)
    assert (result.status, result.error_code, result.sub_code) == ("FAIL", p.CODE_BUSINESS, sub_code)
    assert count(sim, f"GC-CB-LIM-{fen}") == 0


def test_boundary_amounts_pass(alipay, sim):
    assert pay(alipay, "GC-CB-MIN", 10).status == "SUCCESS"
    assert pay(alipay, "GC-CB-MAX", 5_000_000).status == "SUCCESS"
    assert alipay.query(out_biz_no="GC-CB-MAX").amount_fen == 5_000_000


def test_a_payee_that_cannot_exist_fails(alipay):
    result = pay(alipay, "GC-CB-4-1", payee=Payee.login_id("not-an-account", "张三"))
    assert (result.status, result.sub_code) == ("FAIL", p.PAYEE_NOT_EXIST)
    assert pay(alipay, "GC-CB-4-2", payee=Payee.user_id("2088123412341234")).status == "SUCCESS"


def test_caller_bugs_raise_before_anything_is_sent(alipay, sim):
    for bad in [dict(amount_fen=12.3), dict(amount_fen=True), dict(amount_fen=0), dict(amount_fen=-5),
                dict(out_biz_no="has space"), dict(out_biz_no="x" * 65), dict(payee="13800000001")]:
        kw = dict(out_biz_no="GC-CB-BUG", amount_fen=100, payee=PAYEE, order_title="返现") | bad
        with pytest.raises((TypeError, ValueError)):
            alipay.transfer(**kw)
    with pytest.raises(ValueError):
        Payee.login_id("13800000001", "")  # Alipay needs the real name of a login id
    assert count(sim, "GC-CB-BUG") == 0
    assert "13800000001" not in repr(PAYEE) and "张三" not in repr(PAYEE)


# --- injected failures: each maps to the status a payout can act on --------------------------------------

@pytest.mark.parametrize("kind, status, code, sub_code, executed", [
    ("system_error", "UNKNOWN", "40004", p.SYSTEM_ERROR, False),
    ("system_error_after", "UNKNOWN", "40004", p.SYSTEM_ERROR, True),
    ("unavailable", "UNKNOWN", "20000", "isp.unknow-error", False),
    ("payee_not_exist", "FAIL", "40004", p.PAYEE_NOT_EXIST, False),
    ("balance_not_enough", "FAIL", "40004", p.PAYER_BALANCE_NOT_ENOUGH, False),
    ("paycard_unable", "FAIL", "40004", p.PAYCARD_UNABLE_PAYMENT, False),
    ("exceed_limit", "FAIL", "40004", p.EXCEED_LIMIT_SM_AMOUNT, False),
    ("bad_signature", "UNKNOWN", client_module.BAD_SIGNATURE, None, True),
    ("unsigned", "UNKNOWN", client_module.BAD_SIGNATURE, None, True),
])
def test_injected_failure_maps_to_the_right_result(alipay, sim, kind, status, code, sub_code, executed):
    no = f"GC-F-{kind}"
    inject_fault(sim, kind)
    result = pay(alipay, no)
    assert (result.status, result.error_code, result.sub_code) == (status, code, sub_code), result
    assert result.order_id is None
    assert count(sim, no) == int(executed)
    found = alipay.query(out_biz_no=no)
    assert found.status == ("SUCCESS" if executed else "NOT_FOUND")
    if status == "UNKNOWN" and not executed:  # never arrived: the same out_biz_no again, once
        assert pay(alipay, no).status == "SUCCESS"
        assert count(sim, no) == 1
    assert pay(alipay, "GC-F-next-" + kind).status == "SUCCESS"  # a fault is consumed by one call only


def test_faults_queue_in_order_and_per_method(alipay, sim):
    inject_fault(sim, "system_error", method=p.METHOD_QUERY)
    inject_fault(sim, "balance_not_enough")
    inject_fault(sim, "payee_not_exist")
    assert pay(alipay, "GC-Q-1").sub_code == p.PAYER_BALANCE_NOT_ENOUGH
    assert alipay.query(out_biz_no="GC-Q-1").status == "UNKNOWN"  # the query's own fault
    assert alipay.query(out_biz_no="GC-Q-1").status == "NOT_FOUND"
    assert pay(alipay, "GC-Q-1").sub_code == p.PAYEE_NOT_EXIST
    assert pay(alipay, "GC-Q-1").status == "SUCCESS"


def test_the_helpers_over_http(api, alipay):
    assert api.post("/sim/alipay/_fault", json={"kind": "payee_not_exist"}).status_code == 200
    assert api.post("/sim/alipay/_fault", json={"kind": "melt"}).status_code == 400
    assert api.post("/sim/alipay/_fault", json={"kind": "payee_not_exist", "method": p.METHOD_QUERY}).status_code == 400
    assert pay(alipay, "GC-H-1").sub_code == p.PAYEE_NOT_EXIST
    assert api.get("/sim/alipay/_transfers", params={"out_biz_no": "GC-H-1"}).json()["transfers"] == 0
    pay(alipay, "GC-H-1")
    seen = api.get("/sim/alipay/_transfers", params={"out_biz_no": "GC-H-1"}).json()
    assert seen["transfers"] == 1 and seen["orders"][0]["amount_fen"] == 1230


# --- what the client refuses to believe ------------------------------------------------------------------

def test_a_response_tampered_in_transit_is_refused(api, alipay, sim):
    def tamper(request: httpx.Request) -> httpx.Response:
        with httpx.Client(transport=setup._holder.transport) as inner:
            real = inner.send(request)
        return httpx.Response(200, content=real.content.replace(b'"code":"40004"', b'"code":"10000"')
                              .replace(b'"status":"SUCCESS"', b'"status":"FAIL"'))

    tampering = client_like(alipay, transport=httpx.MockTransport(tamper))
    inject_fault(sim, "payee_not_exist")
    forged = pay(tampering, "GC-T-1")  # a FAIL rewritten as success must not read as success
    assert (forged.status, forged.error_code) == ("UNKNOWN", client_module.BAD_SIGNATURE)
    honest = pay(tampering, "GC-T-2")  # a SUCCESS rewritten as FAIL must not read as failure
    assert (honest.status, honest.error_code) == ("UNKNOWN", client_module.BAD_SIGNATURE)
    assert alipay.query(out_biz_no="GC-T-2").status == "SUCCESS"


def test_an_answer_signed_by_another_key_or_naming_another_cert_is_refused(alipay, stranger):
    other_cert = client_like(alipay, alipay_cert_pem=stranger.alipay_cert)
    assert pay(other_cert, "GC-T-3").status == "UNKNOWN"
    answer = other_cert.verify_answer(p.METHOD_TRANSFER, '{"alipay_fund_trans_uni_transfer_response":{"code":"10000"}}')
    assert answer.node is None and answer.problem == client_module.BAD_SIGNATURE


@pytest.mark.parametrize("content, status", [(b"<html>502 Bad Gateway</html>", 502), (b"not json", 200),
                                             (b'{"sign":"x"}', 200), (b"\xff\xfe", 200)])
def test_non_answers_are_unknown(alipay, content, status):
    broken = client_like(alipay, transport=httpx.MockTransport(lambda r: httpx.Response(status, content=content)))
    result = pay(broken, "GC-T-4")
    assert result.status == "UNKNOWN" and result.error_code in (client_module.HTTP_ERROR, client_module.BAD_RESPONSE)
    assert broken.query(out_biz_no="GC-T-4").status == "UNKNOWN"


def test_network_errors_are_unknown(alipay):
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    down = client_like(alipay, transport=httpx.MockTransport(refuse))
    assert (pay(down, "GC-T-5").status, pay(down, "GC-T-5").error_code) == ("UNKNOWN", client_module.TRANSPORT_ERROR)
    assert down.query(out_biz_no="GC-T-5").status == "UNKNOWN"


# --- what the simulator refuses (the real gateway's checks) ---------------------------------------------

def test_a_request_signed_with_another_key_is_refused(alipay, sim, stranger):
    forger = client_like(alipay, app_private_key_pem=stranger.app_private_key)
    result = pay(forger, "GC-S-1")
    assert (result.status, result.error_code, result.sub_code) == ("FAIL", p.CODE_INVALID, "isv.invalid-signature")
    assert count(sim, "GC-S-1") == 0


def test_wrong_certificate_sns_are_refused(alipay, sim, stranger):
    assert pay(client_like(alipay, app_cert_pem=stranger.app_cert), "GC-S-2").sub_code == "isv.app-cert-sn-mismatch"
    assert pay(client_like(alipay, alipay_root_cert_pem=stranger.alipay_root_cert), "GC-S-2").sub_code == \
        "isv.alipay-root-cert-sn-mismatch"
    assert count(sim, "GC-S-2") == 0


def test_a_stale_timestamp_and_an_unknown_app_are_refused(alipay, sim):
    stale = client_like(alipay, clock=lambda: utcnow() - dt.timedelta(hours=1))
    assert (pay(stale, "GC-S-3").status, pay(stale, "GC-S-3").sub_code) == ("FAIL", "isv.invalid-timestamp")
    stranger = client_like(alipay, app_id="2021999999999999")
    unknown_app = pay(stranger, "GC-S-3")  # Alipay cannot sign for an app it does not know: unverifiable
    assert (unknown_app.status, unknown_app.error_code) == ("UNKNOWN", client_module.BAD_SIGNATURE)
    assert count(sim, "GC-S-3") == 0


def test_the_gateway_reads_query_string_and_form_together(api, alipay, sim):
    params = alipay.request_params(p.METHOD_QUERY, {"out_biz_no": "GC-S-4", "product_code": p.PRODUCT_CODE,
                                                    "biz_scene": p.BIZ_SCENE})
    common = {k: v for k, v in params.items() if k != "biz_content"}
    answer = api.post("/sim/alipay/gateway.do", params=common, data={"biz_content": params["biz_content"]})
    assert alipay._query_result("GC-S-4", alipay.verify_answer(p.METHOD_QUERY, answer.text)).status == "NOT_FOUND"
    conflicting = api.post("/sim/alipay/gateway.do", params={**common, "app_id": "2021999999999999"},
                           data={**params})
    assert "isv.invalid-parameter" in conflicting.text


def test_simulator_is_not_mounted_in_prod(db, monkeypatch):
    import gc_admin.api as api_module
    from fastapi.testclient import TestClient

    from gc_admin.config import get_settings

    prod = dataclasses.replace(get_settings(), env="prod")
    monkeypatch.setattr(api_module, "get_settings", lambda: prod)
    with TestClient(api_module.build_api(), raise_server_exceptions=False) as tc:
        assert tc.post("/sim/alipay/gateway.do", data={"method": p.METHOD_TRANSFER}).status_code == 404
        assert tc.get("/sim/alipay/_transfers", params={"out_biz_no": "x"}).status_code == 404


# --- timeouts, over a real socket -------------------------------------------------------------------------

@contextlib.contextmanager
def served(app) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/sim/alipay/gateway.do"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def over_socket(api, alipay):
    """A client with a 1-second timeout talking to the app over loopback."""
    from gc_admin.api import build_api

    with served(build_api()) as gateway:
        yield client_like(alipay, gateway=gateway, transport=None, timeout=1.0)


def test_a_timeout_after_the_transfer_is_unknown_and_the_query_finds_it_paid(over_socket, sim):
    inject_fault(sim, "timeout", delay_ms=2500)
    result = pay(over_socket, "GC-TO-1")
    assert (result.status, result.error_code) == ("UNKNOWN", client_module.TRANSPORT_ERROR)
    found = over_socket.query(out_biz_no="GC-TO-1")
    assert found.status == "SUCCESS" and found.amount_fen == 1230
    assert pay(over_socket, "GC-TO-1").status == "SUCCESS"  # a retry of the same out_biz_no: no second transfer
    assert count(sim, "GC-TO-1") == 1


def test_a_request_lost_before_execution_is_unknown_and_the_query_finds_nothing(over_socket, sim):
    inject_fault(sim, "timeout_before", delay_ms=2500)
    assert pay(over_socket, "GC-TO-2").status == "UNKNOWN"
    assert over_socket.query(out_biz_no="GC-TO-2").status == "NOT_FOUND"
    assert count(sim, "GC-TO-2") == 0
    assert pay(over_socket, "GC-TO-2").status == "SUCCESS" and count(sim, "GC-TO-2") == 1


def test_a_query_that_times_out_is_unknown(over_socket, sim):
    pay(over_socket, "GC-TO-3")
    inject_fault(sim, "timeout", method=p.METHOD_QUERY, delay_ms=2500)
    assert over_socket.query(out_biz_no="GC-TO-3").status == "UNKNOWN"
    assert over_socket.query(out_biz_no="GC-TO-3").status == "SUCCESS"


# --- signed answers the simulator does not give, read by the client's rules -------------------------------

def signed_answers(alipay, node: dict, key: str | None = None) -> AlipayClient:
    """A client whose gateway answers ``node``, signed with the (dev) Alipay key like a real answer."""
    from gc_admin.integrations.alipay import signing

    pki = setup.dev_pki()
    alipay_key = signing.load_private_key(pki.alipay_private_key)

    def answer(request: httpx.Request) -> httpx.Response:
        method = dict(httpx.QueryParams(request.content.decode()))["method"]
        body = signing.signed_body(alipay_key, key or p.response_key(method), node,
                                   alipay_cert_sn=signing.cert_sn(pki.alipay_cert))
        return httpx.Response(200, content=body.encode())

    return client_like(alipay, transport=httpx.MockTransport(answer))


@pytest.mark.parametrize("node, status", [
    ({"code": "10000", "out_biz_no": "GC-M-1", "status": "SUCCESS", "order_id": "1"}, "SUCCESS"),
    ({"code": "10000", "out_biz_no": "GC-M-1", "status": "DEALING", "order_id": "1"}, "UNKNOWN"),
    ({"code": "10000", "out_biz_no": "GC-M-1", "status": "FAIL"}, "FAIL"),
    ({"code": "10000", "out_biz_no": "GC-M-1", "status": "REFUND"}, "FAIL"),
    ({"code": "10000", "out_biz_no": "GC-M-1"}, "UNKNOWN"),
    ({"code": "10000", "out_biz_no": "GC-OTHER", "status": "SUCCESS"}, "UNKNOWN"),  # about another transfer
    ({"code": "40004", "sub_code": "PAYEE_USER_INFO_ERROR"}, "FAIL"),
    ({"code": "40004"}, "UNKNOWN"),  # a business failure without a reason is no confirmed failure
    ({"code": "40006", "sub_code": "isv.insufficient-isv-permissions"}, "FAIL"),
    ({"code": "20000", "sub_code": "aop.unknow-error"}, "UNKNOWN"),
    ({"code": "99999"}, "UNKNOWN"),
])
def test_transfer_answers_map_to_results(alipay, node, status):
    assert pay(signed_answers(alipay, node), "GC-M-1").status == status


def test_a_signed_error_response_is_read_as_alipay_wrote_it(alipay):
    refused = signed_answers(alipay, {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-app-id",
                                      "sub_msg": "无效的AppID参数"}, key="error_response")
    result = pay(refused, "GC-M-2")
    assert (result.status, result.sub_code, result.message) == ("FAIL", "isv.invalid-app-id", "无效的AppID参数")


@pytest.mark.parametrize("node, status, amount", [
    ({"code": "10000", "status": "SUCCESS", "trans_amount": "12.3"}, "SUCCESS", 1230),
    ({"code": "10000", "status": "FAIL", "error_code": "PAYEE_NOT_EXIST", "fail_reason": "收款账号不存在"}, "FAIL", None),
    ({"code": "10000", "status": "CLOSED"}, "FAIL", None),
    ({"code": "10000", "status": "DEALING"}, "DEALING", None),
    ({"code": "10000", "status": "WAIT_PAY"}, "DEALING", None),
    ({"code": "10000", "status": "REFUND", "trans_amount": "12.30"}, "REFUND", 1230),
    ({"code": "10000", "status": "SOMETHING_NEW"}, "UNKNOWN", None),
    ({"code": "10000", "status": "SUCCESS", "trans_amount": "12.345"}, "UNKNOWN", None),  # not a yuan amount
    ({"code": "10000", "status": "SUCCESS", "out_biz_no": "GC-OTHER"}, "UNKNOWN", None),
    ({"code": "40004", "sub_code": "ORDER_NOT_EXIST"}, "NOT_FOUND", None),
    ({"code": "40004", "sub_code": "SYSTEM_ERROR"}, "UNKNOWN", None),
    ({"code": "40002", "sub_code": "isv.invalid-signature"}, "UNKNOWN", None),
])
def test_query_answers_map_to_results(alipay, node, status, amount):
    found = signed_answers(alipay, node).query(out_biz_no="GC-M-3")
    assert (found.status, found.amount_fen) == (status, amount)
    if status == "FAIL" and "error_code" in node:
        assert (found.fail_code, found.fail_reason) == ("PAYEE_NOT_EXIST", "收款账号不存在")
