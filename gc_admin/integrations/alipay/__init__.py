"""Alipay single transfers (``alipay.fund.trans.uni.transfer``) for cashback payouts, in certificate mode.

Modules:

- ``protocol.py``: method names, result codes and ``sub_code``s, fen <-> yuan-string conversion;
- ``signing.py``: RSA2 request signing, response-node verification, certificate SNs (pure);
- ``client.py``: :class:`AlipayClient` (sync httpx) — ``transfer`` and ``query``;
- ``setup.py``: ``get_client()`` from ``GC_ALIPAY_*`` settings, ``set_transport()`` for tests;
- ``simulator.py`` + ``models.py``: a protocol-true local gateway under ``/sim/alipay`` (dev/test),
  its state in the database; ``certs.py``: throwaway certificates for it.

How a payout uses it (the caller — claims — owns the payout record; this package moves money)::

    from gc_admin.integrations.alipay import Payee, setup

    client = setup.get_client()
    result = client.transfer(out_biz_no=payout.out_biz_no, amount_fen=payout.amount_fen,
                             payee=Payee.login_id("13800000000", "张三"), order_title="返现")
    # result.status: "SUCCESS" | "FAIL" | "UNKNOWN"

1. Record the payout with its ``out_biz_no`` (unique, derived from the claim) and commit *before*
   calling ``transfer``.
2. ``SUCCESS``: paid; keep ``order_id`` / ``pay_fund_order_id``.
3. ``FAIL``: Alipay says (signed) nothing was transferred (``sub_code``: ``PAYEE_NOT_EXIST``,
   ``PAYEE_USER_INFO_ERROR``, ``PAYER_BALANCE_NOT_ENOUGH``, ``PAYCARD_UNABLE_PAYMENT``,
   ``EXCEED_LIMIT_SM_AMOUNT``, ``EXCEED_LIMIT_SM_MIN_AMOUNT``, ``INVALID_PARAMETER``, a ``40002``
   refusal such as ``isv.invalid-signature``...). Only now may a new attempt use a *new* ``out_biz_no``.
4. ``UNKNOWN`` (timeout, network error, ``SYSTEM_ERROR``, ``20000``, unsigned/badly signed answer,
   ``PAYMENT_INFO_INCONSISTENCY``): never retry blindly. Call ``client.query(out_biz_no=...)``:
   ``SUCCESS`` -> paid (compare ``amount_fen``); ``FAIL`` -> failed, as 3; ``NOT_FOUND`` (Alipay's
   ``ORDER_NOT_EXIST``: it never arrived) -> resend the *same* ``out_biz_no``, amount and payee (an
   idempotent retry); ``DEALING`` / ``UNKNOWN`` -> ask again later. A worker that died between 1
   and the answer is in the same position as ``UNKNOWN``.

Neither call raises for anything Alipay or the network does; both raise ``ValueError`` /
``TypeError`` for a caller's bug (malformed ``out_biz_no``, non-int or non-positive ``amount_fen``,
``Payee`` without the real name a login id needs). ``setup.get_client()`` raises
``setup.AlipayNotConfigured`` when ``GC_ALIPAY_GATEWAY`` is empty (prod default: manual payouts).
"""

from gc_admin.integrations.alipay.client import AlipayClient, Payee, QueryResult, TransferResult
from gc_admin.integrations.alipay.protocol import fen_to_yuan, yuan_to_fen

__all__ = ["AlipayClient", "Payee", "QueryResult", "TransferResult", "fen_to_yuan", "yuan_to_fen"]
