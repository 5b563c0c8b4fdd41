"""订单看板 display: the shapes (strings only) of a queue row and of an order's detail panel, ages,
labels and the refund confirmation's sentence.

Pure functions, no database (unit-tested without the browser): who sees what is
:func:`gc_admin.orders.service.scope_for`, the panel's data :func:`gc_admin.orders.flows.staff_detail`.

Age / SLA at a glance (DESIGN.md §5): a paid order waits for a clerk to accept it; its age counts
from payment and turns red after :data:`PAID_SLA`. Other open statuses show their age since the
order was created.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gc_admin.core.clock import as_utc, fmt_local, utcnow
from gc_admin.core.money import format_fen
from gc_admin.orders import service as orders
from gc_admin.orders.flows import StaffDetail
from gc_admin.orders.kinds import kind_of
from gc_admin.orders.models import ORDER_STATUSES, ORDER_TYPES
from gc_admin.orders.pricing import STEP_LABELS
from gc_admin.orders.service import REASON_REQUIRED, Scope, staff_actions

PAID_SLA = dt.timedelta(minutes=30)
OPEN_STATUSES = ("paid", "accepted", "in_fulfilment", "refund_requested", "after_sales")
FUNDED_BY = {"merchant": "商家", "platform": "平台", "insurer": "保险公司", "user": "用户"}
PROVIDERS = {"wechatpay": "微信支付", "none": "无需支付（积分 / 储值全额抵扣）"}
ACTOR_TYPES = {"staff": "员工", "user": "用户", "system": "系统", "partner": "合作方"}
EVENT_LABELS = {name: t.label for name, t in orders.TRANSITIONS.items()} | {
    "create": "下单",
    "refund_partial": "申请部分退款",
    "refund_succeeded": "退款到账",
    "refund_failed": "退款失败",
}
# the one obvious next step of a status, offered as a button on the queue row
NEXT_ACTION = {"paid": "accept", "accepted": "fulfil", "in_fulfilment": "complete", "after_sales": "resolve"}
ACTION_COLORS = {"accept": "blue", "fulfil": "blue", "complete": "green", "resolve": "green", "cancel": "red",
                 "after_sales": "orange", "fail": "red"}
ACTION_HINTS = {
    "accept": "接单后订单进入“已接单”，请尽快安排履约。",
    "fulfil": "订单进入“履约中”。",
    "complete": "订单将标记为“已完成”。",
    "resolve": "售后处理完毕，订单将标记为“已完成”。",
    "cancel": "只能取消待支付的订单：将关闭微信支付订单，释放锁定的库存、优惠券、积分与储值。",
    "after_sales": "订单转入售后处理（开售后工单）；退款请使用“退款”。",
    "fail": "标记失败后将自动全额退款给用户。",
}


def _claim_and_case(view: dict[str, Any], now: dt.datetime) -> dict[str, str]:
    """The detail panel's assignee / lease line and after-sales case, as text."""
    claim = view.get("claim") or {}
    text_ = ""
    if claim.get("by"):
        until = _local(claim.get("until"))
        text_ = f"{claim['by']} 认领中（至 {until[-5:]}）" if claim.get("live") else f"处理人：{claim['by']}（认领已到期）"
    case = view.get("case") or {}
    calls = "；".join(f"{_local(c['called_at'])} {c['outcome_label']}" + (f"（{c['note']}）" if c["note"] else "")
                     + f" · {c['by']}" for c in case.get("calls") or [])
    case_text = ""
    if case:
        case_text = f"{case['status_label']} · 原因：{case['reason']}" + (f" · 备注：{case['notes']}" if case["notes"] else "")
        if case.get("outcome_label"):
            case_text += f" · 结果：{case['outcome_label']}"
    return {"claim": text_, "case": case_text, "case_calls": calls}


FIELD_LABELS = {"shop_name": "店铺名称", "shop_phone": "店铺电话", "eta": "预计送达时间", "provider_ref": "充值平台交易单号",
                "driver_id": "司机编号", "platform": "代驾平台", "fee_fen": "费用（分）", "carrier": "快递公司",
                "tracking_no": "快递单号", "notes": "售后备注", "failed": "充值失败", "channel": "渠道"}
INT_FIELDS = ("driver_id", "fee_fen")


def type_options(scope: Scope) -> list[dict[str, str]]:
    keys = scope.types if scope.types is not None else tuple(ORDER_TYPES)
    return [{"value": k, "label": ORDER_TYPES[k]} for k in keys]


# --- age ----------------------------------------------------------------------------------------------

def age_text(delta: dt.timedelta) -> str:
    """``刚刚`` / ``12 分钟`` / ``3 小时 5 分`` / ``2 天 3 小时``."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 1:
        return "刚刚"
    if minutes < 60:
        return f"{minutes} 分钟"
    hours, mins = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} 小时" + (f" {mins} 分" if mins else "")
    days, hours = divmod(hours, 24)
    return f"{days} 天" + (f" {hours} 小时" if hours else "")


def age_of(*, status: str, created_at: dt.datetime, paid_at: dt.datetime | None,
           now: dt.datetime | None = None) -> tuple[str, str]:
    """``(text, level)``: level ``late`` (paid, not accepted past :data:`PAID_SLA`), ``wait`` (needs
    a clerk: paid, after-sales, refund in progress), ``open`` (other open statuses) or ``""`` (closed)."""
    now = now or utcnow()
    if status == "paid":
        since = as_utc(paid_at or created_at)
        waited = now - since
        return age_text(waited), "late" if waited > PAID_SLA else "wait"
    text = age_text(now - as_utc(created_at))
    if status in ("after_sales", "refund_requested"):
        return text, "wait"
    return text, "open" if status in OPEN_STATUSES or status == "created" else ""


# --- actions ------------------------------------------------------------------------------------------

def action_label(action: str) -> str:
    return orders.TRANSITIONS[action].label


# --- queue rows -----------------------------------------------------------------------------------------

def queue_row(r: orders.OrderRow, *, scope: Scope, now: dt.datetime | None = None) -> dict[str, str]:
    age, level = age_of(status=r.status, created_at=r.created_at, paid_at=r.paid_at, now=now)
    nxt = NEXT_ACTION.get(r.status, "")
    if nxt not in staff_actions(r.status, scope, kind_of(r.type).actions):
        nxt = ""
    return {
        "id": str(r.id), "order_no": r.order_no, "type": r.type, "type_label": ORDER_TYPES.get(r.type, r.type),
        "status": r.status, "status_label": ORDER_STATUSES.get(r.status, r.status), "phone": r.phone_masked or "—",
        "summary": r.summary or "—", "payable": format_fen(r.payable_fen),
        "refunded": format_fen(r.refunded_fen) if r.refunded_fen else "",
        "age": age, "age_level": level, "created_at": fmt_local(r.created_at),
        "next": nxt, "next_label": action_label(nxt) if nxt else "",
        "anomaly": "取消后收到支付，需退款" if (r.anomaly or "").startswith("paid_after") else (r.anomaly or ""),
    }


# --- the detail panel -------------------------------------------------------------------------------------

def _local(iso_value: str | None, *, seconds: bool = False) -> str:
    if not iso_value:
        return ""
    try:
        return fmt_local(dt.datetime.fromisoformat(iso_value), seconds=seconds)
    except ValueError:
        return iso_value


def order_detail(detail: StaffDetail, *, scope: Scope, now: dt.datetime | None = None) -> dict[str, Any]:
    """Everything the detail panel shows, as strings: the order, lines, price steps with who funds
    each, payment, history, refunds, the allowed actions and the refund form's defaults."""
    now = now or utcnow()
    order, view = detail.order, detail.view
    pricing = view.get("pricing") or {}
    age, level = age_of(status=order.status, created_at=order.created_at, paid_at=order.paid_at, now=now)
    refunds = view.get("refunds") or []
    in_flight = [r for r in refunds if r["status"] in ("pending", "processing")]
    refundable = int(view.get("refundable_fen") or 0)  # flows.refundable_fen: used coupons not counted
    values = detail.refund_values
    can_refund = scope.can_refund and refundable > 0 and not in_flight
    if not scope.can_refund:
        refund_note = ""
    elif in_flight:
        refund_note = "有一笔退款正在处理中，完成后才能再次退款。"
    elif values == [] and order.paid_fen > order.refunded_fen:
        refund_note = "该订单购买的券已全部使用或已退，不能再退款。"
    else:
        refund_note = ""
    default_fen = refundable if can_refund else 0
    payment = view.get("payment") or None
    head = {
        "id": str(order.id), "order_no": order.order_no, "type": order.type,
        "type_label": ORDER_TYPES.get(order.type, order.type), "status": order.status,
        "status_label": ORDER_STATUSES.get(order.status, order.status), "phone": view.get("phone_masked") or "—",
        "user_id": str(view.get("user_id") or ""), "created_at": _local(view.get("created_at")),
        "paid_at": _local(view.get("paid_at")) or "—", "age": age, "age_level": level,
        "list": format_fen(int(pricing.get("list_fen", order.list_fen))),
        "payable": format_fen(int(pricing.get("payable_fen", order.payable_fen))),
        "paid": format_fen(order.paid_fen), "refunded": format_fen(order.refunded_fen),
        "refundable": format_fen(refundable), "refundable_fen": str(refundable),
        "details": kind_of(order.type).details_text(view.get("details") or {}),
        "fulfilment": " · ".join(f"{FIELD_LABELS.get(k, k)}：{'是' if v is True else v}"
                                 for k, v in (view.get("fulfilment") or {}).items()
                                 if v not in (None, "") and k != "case" and not isinstance(v, dict)),
        **_claim_and_case(view, now),
        "coupons": str(len(view.get("coupon_ids") or [])) if order.type == "coupon_purchase" else "",
        "anomaly": "取消后收到支付，需退款给用户" if (order.anomaly or "").startswith("paid_after") else (order.anomaly or ""),
        "pay_provider": PROVIDERS.get(payment["provider"], payment["provider"]) if payment else "",
        "pay_txn": (payment or {}).get("transaction_id") or "",
        "pay_amount": format_fen(int(payment["amount_fen"])) if payment else "",
        "pay_time": _local((payment or {}).get("success_time"), seconds=True),
        "pay_source": {"notify": "支付通知", "query": "主动查询", "internal": "系统"}.get((payment or {}).get("source", ""), ""),
        "can_refund": "1" if can_refund else "", "refund_note": refund_note,
        "refund_default": format_fen(default_fen, symbol=False).replace(",", "") if can_refund else "",
        "per_coupon": "1" if values else "",
        "refund_choices": "、".join(f"{k} 张 {format_fen(v)}" for k, v in enumerate(values or [], 1)),
    }
    lines = [{"name": str(ln.get("name", "")), "code": str(ln.get("code", "")), "qty": str(ln.get("quantity", 1)),
              "unit": format_fen(int(ln.get("unit_fen", 0))), "amount": format_fen(int(ln.get("amount_fen", 0)))}
             for ln in view.get("lines") or []]
    steps = [{"label": "标价", "amount": format_fen(int(pricing.get("list_fen", order.list_fen))), "funded_by": "—",
              "kind": "list"}]
    steps += [{"label": str(s.get("label") or STEP_LABELS.get(s.get("kind", ""), s.get("kind", ""))),
               "amount": "-" + format_fen(int(s.get("amount_fen", 0))),
               "funded_by": FUNDED_BY.get(str(s.get("funded_by")), str(s.get("funded_by") or "—")), "kind": "step"}
              for s in pricing.get("steps") or []]
    steps.append({"label": "应付（微信支付）", "amount": format_fen(int(pricing.get("payable_fen", order.payable_fen))),
                  "funded_by": "用户", "kind": "payable"})
    history = [{"at": _local(h.get("at"), seconds=True), "action": EVENT_LABELS.get(h["action"], h["action"]),
                "from": ORDER_STATUSES.get(h.get("from_status") or "", ""),
                "to": ORDER_STATUSES.get(h.get("status") or "", ""),
                "changed": "1" if h.get("from_status") != h.get("status") else "",
                "by": h.get("by") or "", "reason": h.get("reason") or ""}
               for h in view.get("history") or []]
    refund_rows = [{"id": str(r["id"]), "no": r["out_refund_no"], "amount": format_fen(int(r["amount_fen"])),
                    "coupons": str(r.get("coupons") or 0), "full": "全额" if r.get("full") else "部分",
                    "status": r["status"], "status_label": r.get("status_label", r["status"]),
                    "reason": r.get("reason") or "", "by": r.get("actor_name") or "",
                    "at": _local(r.get("created_at")), "done_at": _local(r.get("succeeded_at")) or "—",
                    "wx_no": r.get("refund_id") or "", "error": r.get("error") or "",
                    "open": "1" if r["status"] in ("pending", "processing") else ""}
                   for r in refunds]
    actions = [{"key": a, "label": action_label(a), "color": ACTION_COLORS.get(a, "gray"),
                "reason": "1" if a in REASON_REQUIRED else ""}
               for a in staff_actions(order.status, scope, kind_of(order.type).actions)]
    options = [{"label": f"{k} 张（{format_fen(v)}）", "value": format_fen(v, symbol=False).replace(",", "")}
               for k, v in enumerate(values or [], 1)] if can_refund else []
    return {"order": head, "lines": lines, "steps": steps, "history": history, "refunds": refund_rows,
            "actions": actions, "refund_options": options}


# --- refund -----------------------------------------------------------------------------------------------

def refund_consequence(*, amount_fen: int, paid_fen: int, refunded_fen: int, coupons: int = 0,
                       order_type: str = "") -> str:
    """The confirmation sentence for a refund (DESIGN.md §5: state what will happen)."""
    text = (f"将向用户退款 {format_fen(amount_fen)}（原支付 {format_fen(paid_fen)}，"
            f"已退 {format_fen(refunded_fen)}），原路退回用户的微信支付")
    full = refunded_fen + amount_fen >= paid_fen
    if order_type == "coupon_purchase":
        text += f"；该订单购买的 {coupons} 张未使用券将作废并回到库存" if coupons else "；该订单购买的未使用券将作废并回到库存"
    if full:
        text += "；全额退款后订单变为“已退款”，订单使用的优惠券（仍在有效期内）、积分与储值退回用户"
    return text + "。提交后不可撤销。"
