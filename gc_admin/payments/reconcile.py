"""Reconciliation (对账): a WeChat Pay trade bill against the ledger for the same day.

The bill (CSV bytes as ``/v3/bill/tradebill`` serves it, parsed by
:func:`gc_admin.integrations.wechatpay.billing.read_trade_bill`, its summary checked) gives one
row per payment (``SUCCESS``: key ``out_trade_no``, amount ``订单金额``) and per refund
(``REFUND``: key ``out_refund_no``, amount ``-退款金额``). The ledger gives the ``wechatpay``
``payment`` / ``refund`` entries whose ``occurred_at`` (the provider's success time) falls on that
Asia/Shanghai day, keyed the same way (``pay:<out_trade_no>``, ``refund:<out_refund_no>``).

The two sides are joined in polars (full outer join on kind + key); each key is ``matched``,
``missing_in_ledger`` (the provider has it, we do not: a lost notify — run a payment query),
``missing_in_bill`` (we recorded money the provider does not show) or ``amount_differs``. The
run and its mismatches are stored in ``reconciliation_run`` for the dashboard, and audited.

An uploaded or downloaded bill passes :func:`gc_admin.core.uploads.check_upload` before polars reads
it (size, rows, line length, columns: ``UPLOAD_*`` codes); a refused bill stores no run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import polars as pl
from sqlmodel import Session, col, select

from gc_admin.audit.service import record
from gc_admin.core.clock import SHANGHAI, iso, utcnow
from gc_admin.core.errors import Conflict, InvalidInput, NotFound, UpstreamError
from gc_admin.core.money import format_fen
from gc_admin.core.principal import Actor
from gc_admin.core.uploads import check_upload
from gc_admin.integrations.wechatpay.billing import TradeBillError, read_trade_bill
from gc_admin.integrations.wechatpay.client import WxPayError
from gc_admin.payments.ledger import day_start
from gc_admin.payments.models import LedgerEntry, ReconciliationRun
from gc_admin.payments.service import PROVIDER

BILL_KEPT_DAYS = 92  # WeChat Pay serves trade bills of the last three months
KINDS = {"missing_in_ledger": "账单有、流水无", "missing_in_bill": "流水有、账单无", "amount_differs": "金额不一致"}
_SCHEMA = {"entry": pl.String, "key": pl.String, "amount_fen": pl.Int64, "ref": pl.String}


@dataclasses.dataclass(frozen=True)
class Mismatch:
    kind: str  # missing_in_ledger | missing_in_bill | amount_differs
    entry: str  # payment | refund
    key: str  # out_trade_no / out_refund_no
    bill_fen: int | None
    ledger_fen: int | None
    provider_ref: str | None

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "kind_label": KINDS[self.kind]}


@dataclasses.dataclass(frozen=True)
class ReconcileResult:
    run_id: int
    bill_date: dt.date
    bill_rows: int
    ledger_rows: int
    matched: int
    mismatches: list[Mismatch]
    bill_net_fen: int
    ledger_net_fen: int
    created_at: dt.datetime

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def count(self, kind: str) -> int:
        return sum(m.kind == kind for m in self.mismatches)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.run_id, "bill_date": self.bill_date.isoformat(), "bill_rows": self.bill_rows,
            "ledger_rows": self.ledger_rows, "matched": self.matched, "ok": self.ok,
            "missing_in_ledger": self.count("missing_in_ledger"), "missing_in_bill": self.count("missing_in_bill"),
            "amount_differs": self.count("amount_differs"), "bill_net_fen": self.bill_net_fen,
            "ledger_net_fen": self.ledger_net_fen, "created_at": iso(self.created_at),
            "mismatches": [m.to_dict() for m in self.mismatches],
        }


def _bill_side(rows: pl.DataFrame) -> pl.DataFrame:
    pay = rows.filter(pl.col("trade_state") == "SUCCESS").select(
        pl.lit("payment").alias("entry"), pl.col("out_trade_no").alias("key"),
        pl.col("total_fen").fill_null(pl.col("settlement_total_fen")).alias("amount_fen"),
        pl.col("transaction_id").alias("ref"))
    ref = rows.filter(pl.col("trade_state") == "REFUND").select(
        pl.lit("refund").alias("entry"), pl.col("out_refund_no").alias("key"),
        (-pl.col("refund_fen")).alias("amount_fen"), pl.col("refund_id").alias("ref"))
    return pl.concat([pay.cast(_SCHEMA), ref.cast(_SCHEMA)])  # type: ignore[arg-type]


def _ledger_side(session: Session, day: dt.date) -> pl.DataFrame:
    rows = session.exec(
        select(LedgerEntry.kind, LedgerEntry.ref, LedgerEntry.amount_fen, LedgerEntry.provider_ref)
        .where(col(LedgerEntry.provider) == PROVIDER, col(LedgerEntry.kind).in_(("payment", "refund")),
               col(LedgerEntry.occurred_at) >= day_start(day),
               col(LedgerEntry.occurred_at) < day_start(day + dt.timedelta(days=1)))).all()
    return pl.DataFrame({
        "entry": [k for k, *_ in rows],
        "key": [ref.split(":", 1)[1] for _, ref, *_ in rows],
        "amount_fen": [a for _, _, a, _ in rows],
        "ref": [p for *_, p in rows],
    }, schema=_SCHEMA)


def compare(bill: pl.DataFrame, ledger: pl.DataFrame) -> tuple[int, list[Mismatch]]:
    """``(matched, mismatches)`` of two ``entry, key, amount_fen, ref`` frames."""
    joined = bill.join(ledger, on=["entry", "key"], how="full", coalesce=True, suffix="_ledger")
    kind = (pl.when(pl.col("amount_fen").is_null()).then(pl.lit("missing_in_bill"))
            .when(pl.col("amount_fen_ledger").is_null()).then(pl.lit("missing_in_ledger"))
            .when(pl.col("amount_fen") != pl.col("amount_fen_ledger")).then(pl.lit("amount_differs"))
            .otherwise(pl.lit("matched")))
    joined = joined.with_columns(kind.alias("result")).sort("entry", "key")
    matched = joined.filter(pl.col("result") == "matched").height
    mismatches = [
        Mismatch(kind=r["result"], entry=r["entry"], key=r["key"], bill_fen=r["amount_fen"],
                 ledger_fen=r["amount_fen_ledger"], provider_ref=r["ref"] or r["ref_ledger"])
        for r in joined.filter(pl.col("result") != "matched").iter_rows(named=True)
    ]
    return matched, mismatches


def reconcile_trade_bill(session: Session, *, data: bytes, actor: Actor, bill_date: dt.date | None = None,
                         filename: str = "") -> ReconcileResult:
    """Compare a trade bill (bytes) with the ledger of its day; store and audit the run.

    ``bill_date`` is required for a bill without rows and must agree with the rows' dates otherwise."""
    bill_side = pl.DataFrame(schema=_SCHEMA)
    if data.strip():
        if check_upload(data) != "text":
            raise InvalidInput("交易账单应为微信支付下载的 CSV 文本文件，不是 Excel 或压缩包", code="BAD_BILL")
        try:
            bill = read_trade_bill(data)
        except TradeBillError as exc:
            raise InvalidInput(f"无法识别的微信支付交易账单：{exc}", code="BAD_BILL") from exc
        days = sorted({t.date() for t in bill.rows["trade_time"].dt.convert_time_zone("Asia/Shanghai").to_list()})
        if len(days) > 1:
            raise InvalidInput("账单包含多天的交易，请按天导入", code="BAD_BILL")
        if days:
            if bill_date is not None and bill_date != days[0]:
                raise InvalidInput(f"账单日期为 {days[0].isoformat()}，与所选日期不符", code="BILL_DATE_MISMATCH")
            bill_date = days[0]
        bill_side = _bill_side(bill.rows)
    if bill_date is None:
        raise InvalidInput("空账单需指定账单日期", code="BILL_DATE_REQUIRED")
    ledger_side = _ledger_side(session, bill_date)
    matched, mismatches = compare(bill_side, ledger_side)
    now = utcnow()
    bill_net = int(bill_side["amount_fen"].sum() or 0)
    ledger_net = int(ledger_side["amount_fen"].sum() or 0)
    run = ReconciliationRun(
        bill_date=bill_date, provider=PROVIDER, filename=filename[:255], bill_rows=bill_side.height,
        ledger_rows=ledger_side.height, matched=matched,
        missing_in_ledger=sum(m.kind == "missing_in_ledger" for m in mismatches),
        missing_in_bill=sum(m.kind == "missing_in_bill" for m in mismatches),
        amount_mismatch=sum(m.kind == "amount_differs" for m in mismatches), bill_net_fen=bill_net,
        ledger_net_fen=ledger_net, ok=not mismatches, details=[m.to_dict() for m in mismatches[:5000]],
        actor_name=actor.name[:64], created_at=now,
    )
    session.add(run)
    session.flush()
    assert run.id is not None
    record(session, actor=actor, action="payment.reconciled", target_type="reconciliation_run", target_id=run.id,
           summary=(f"对账 {bill_date.isoformat()}：账单 {bill_side.height} 笔 / 流水 {ledger_side.height} 笔，"
                    f"一致 {matched} 笔，差异 {len(mismatches)} 笔；账单净额 {format_fen(bill_net)}，"
                    f"流水净额 {format_fen(ledger_net)}"),
           after={"bill_date": bill_date.isoformat(), "matched": matched, "mismatches": len(mismatches)})
    return ReconcileResult(run.id, bill_date, bill_side.height, ledger_side.height, matched, mismatches, bill_net,
                           ledger_net, now)


def fetch_and_reconcile(session: Session, *, bill_date: dt.date, actor: Actor) -> ReconcileResult:
    """Download the day's trade bill from WeChat Pay and reconcile it (no bill that day = an empty bill).

    WeChat Pay serves bills of the last three months up to today (Asia/Shanghai); a day outside
    that is refused here with a 422 instead of being asked for. Its answers about the date itself
    (``INVALID_REQUEST`` / ``PARAM_ERROR``: e.g. its "today" is not ours; ``STATEMENT_CREATING``)
    are the clerk's to act on (4xx); only a failure of WeChat Pay is a 502.
    """
    from gc_admin.integrations.wechatpay.setup import get_client

    today = utcnow().astimezone(SHANGHAI).date()
    if bill_date > today:
        raise InvalidInput(f"账单日期 {bill_date.isoformat()} 晚于今天，请选择今天或之前的日期", code="BILL_DATE_IN_FUTURE")
    if bill_date < today - dt.timedelta(days=BILL_KEPT_DAYS):
        raise InvalidInput(f"微信支付只提供最近三个月的账单（{(today - dt.timedelta(days=BILL_KEPT_DAYS)).isoformat()} 起），"
                           "更早的日期请上传当时下载的账单文件", code="BILL_DATE_TOO_OLD")
    try:
        data = get_client().trade_bill(bill_date)
    except WxPayError as exc:
        if exc.code in ("INVALID_REQUEST", "PARAM_ERROR"):
            raise InvalidInput(f"微信支付不接受账单日期 {bill_date.isoformat()}（{exc.code}），请换一个日期再试",
                               code="BILL_DATE_REFUSED") from exc
        if exc.code == "STATEMENT_CREATING":
            raise Conflict(f"{bill_date.isoformat()} 的账单还在生成中（{exc.code}），请次日上午 10 点后再对账",
                           code="BILL_NOT_READY") from exc
        if exc.code != "NO_STATEMENT_EXIST":
            raise UpstreamError(f"下载微信支付账单失败（{exc.code}），请稍后再试", code="BILL_UNAVAILABLE") from exc
        data = b""
    return reconcile_trade_bill(session, data=data, actor=actor, bill_date=bill_date,
                                filename=f"wechatpay-{bill_date.isoformat()}.csv")


def _result(run: ReconciliationRun) -> ReconcileResult:
    mismatches = [Mismatch(d["kind"], d["entry"], d["key"], d["bill_fen"], d["ledger_fen"], d.get("provider_ref"))
                  for d in run.details or []]
    return ReconcileResult(run.id or 0, run.bill_date, run.bill_rows, run.ledger_rows, run.matched, mismatches,
                           run.bill_net_fen, run.ledger_net_fen, run.created_at)


def get_reconciliation(session: Session, *, run_id: int) -> ReconcileResult:
    run = session.get(ReconciliationRun, run_id)
    if run is None:
        raise NotFound("对账记录不存在", code="RECONCILIATION_NOT_FOUND")
    return _result(run)


def list_reconciliations(session: Session, *, offset: int = 0, limit: int = 50) -> list[ReconcileResult]:
    """Stored runs, newest first."""
    runs = session.exec(select(ReconciliationRun).order_by(col(ReconciliationRun.id).desc())
                        .offset(max(offset, 0)).limit(min(max(limit, 1), 200))).all()
    return [_result(r) for r in runs]


def bill_day_of(value: dt.datetime) -> dt.date:
    """The Asia/Shanghai day a provider time belongs to."""
    return value.astimezone(SHANGHAI).date()
