"""返现审核 page: the queue on the left, the claim under review on the right — images large (zoom,
rotate), the claim's figures beside what OCR read, mismatches, duplicates, the user's history — and
the keyboard (a window key listener, unmounted while a text field has the focus; see
:mod:`gc_admin.claims.state`; the cheat sheet is on the page)."""

from __future__ import annotations

import reflex as rx

from gc_admin.claims.models import CATEGORIES, STATUSES
from gc_admin.claims.state import ClaimsState as S
from gc_admin.ui.layout import staff_page

NUM = {"text_align": "right", "white_space": "nowrap", "font_variant_numeric": "tabular-nums"}
KEYS = "j/k 下一条/上一条 · a 通过 · r 驳回 · +/- 缩放 · o 旋转 · b 批量通过无异常 · Enter 确认 · Esc 取消"


def _filters() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.select.root(rx.select.trigger(width="9rem", data_testid="claims-status"),
                           rx.select.content(rx.select.item("全部状态", value="all"),
                                             *[rx.select.item(v, value=k) for k, v in STATUSES.items()]),
                           value=S.status, on_change=S.set_status),
            rx.select.root(rx.select.trigger(width="8rem", data_testid="claims-category"),
                           rx.select.content(rx.select.item("全部类别", value="all"),
                                             *[rx.select.item(v, value=k) for k, v in CATEGORIES.items()]),
                           value=S.category, on_change=S.set_category),
            rx.select.root(rx.select.trigger(width="8rem", data_testid="claims-flagged"),
                           rx.select.content(rx.select.item("全部", value="all"), rx.select.item("有异常", value="yes"),
                                             rx.select.item("无异常", value="no")),
                           value=S.flagged, on_change=S.set_flagged),
            rx.input(placeholder="手机号 / 后四位 / 申请号", value=S.q, on_change=S.set_q, width="13rem",
                     on_focus=S.focus_field, on_blur=S.blur_field, data_testid="claims-q"),
            rx.button(rx.icon("search", size=14), "查询", type="submit", variant="soft"),
            rx.spacer(),
            rx.text("共 ", S.total, " 条", size="2", color_scheme="gray", data_testid="claims-total"),
            rx.button("批量通过无异常（", S.batch_count, "）", variant="soft", color_scheme="green",
                      on_click=S.ask("batch"), data_testid="claims-batch"),
            align="center", wrap="wrap", spacing="2", width="100%",
        ),
        on_submit=lambda _f: S.search(), reset_on_submit=False, width="100%",
    )


def _row(r: rx.Var, i: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell("#", r["id"]),
        rx.table.cell(r["category"]),
        rx.table.cell(r["amount"], style=NUM),
        rx.table.cell(r["phone"]),
        rx.table.cell(rx.cond(r["flagged"] != "", rx.badge("异常 ", r["flags"], color_scheme="red"), rx.badge("无", color_scheme="green"))),
        rx.table.cell(rx.text(r["sla"], color_scheme=rx.cond(r["overdue"] != "", "red", "gray"), size="1")),
        rx.table.cell(rx.cond(r["leased_by"] != "", rx.text(r["leased_by"], " 审核中", size="1"), r["status_label"])),
        on_click=S.pick(i), cursor="pointer",
        background=rx.cond(S.cur == i, rx.color("accent", 4), "transparent"),
        data_testid="claim-row-" + r["id"],
    )


def _queue() -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in
                                           ("申请", "类别", "实付", "手机", "异常", "时效", "状态")])),
            rx.table.body(rx.foreach(S.rows, _row)),
            size="1", width="100%",
        ),
        rx.cond(S.total == 0, rx.text("暂无待处理申请", color_scheme="gray", padding="1rem", data_testid="claims-empty")),
        width="40%", min_width="24rem", overflow_x="auto",
    )


def _kv(label: str, value, testid: str = "") -> rx.Component:
    return rx.hstack(rx.text(label, size="2", color_scheme="gray", width="5rem"),
                     rx.text(value, size="2", weight="medium", data_testid=testid or None), spacing="2")


def _image(img: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.box(
            rx.image(src=img["url"], alt="凭证", width=S.zoom.to_string() + "%",
                     style={"transform": "rotate(" + S.rotate.to_string() + "deg)", "transition": "transform .15s"},
                     data_testid="claim-image"),
            max_height="70vh", overflow="auto", border=f"1px solid {rx.color('gray', 5)}", border_radius="6px",
            width="100%",
        ),
        rx.table.root(rx.table.body(
            rx.table.row(rx.table.cell("识别"), rx.table.cell(img["ocr_status"]), rx.table.cell("申请")),
            rx.table.row(rx.table.cell("金额"),
                         rx.table.cell(rx.text(img["amount"], color_scheme=rx.cond(img["amount_differs"] != "", "red", "gray"),
                                               weight="bold"), " ", rx.text(img["amount_conf"], size="1", as_="span"),
                                       data_testid="ocr-amount"),
                         rx.table.cell(S.claim["amount"], data_testid="claim-amount")),
            rx.table.row(rx.table.cell("支付时间"), rx.table.cell(img["paid_at"]), rx.table.cell(S.claim["created"])),
            rx.table.row(rx.table.cell("商户"), rx.table.cell(img["merchant"], data_testid="ocr-merchant"),
                         rx.table.cell(S.claim["station"])),
            rx.table.row(rx.table.cell("交易单号"), rx.table.cell(img["txn"], data_testid="ocr-txn"), rx.table.cell("")),
        ), size="1", width="100%"),
        width="100%", spacing="2",
    )


def _prompt() -> rx.Component:
    return rx.fragment(
        rx.cond(S.mode == "approve", rx.callout(
            rx.text("通过申请 #", S.claim["id"], "，向 ", S.claim["account"], "（", S.claim["method"], "）返现 ",
                    S.claim["payout"], "？按 Enter 确认，Esc 取消"),
            icon="badge-check", color_scheme="green", data_testid="claims-confirm-approve")),
        rx.cond(S.mode == "batch", rx.callout(
            rx.text("批量通过本页 ", S.batch_count, " 条无异常申请并打款？按 Enter 确认，Esc 取消"),
            icon="list-checks", color_scheme="green", data_testid="claims-confirm-batch")),
        rx.cond(S.mode == "reject", rx.callout(
            rx.vstack(
                rx.text("驳回原因（按数字选择，Enter 确认，Esc 取消）："),
                rx.foreach(S.reasons, lambda r, i: rx.text(
                    (i + 1).to_string(), ". ", r["label"], weight=rx.cond(S.reason == r["code"], "bold", "regular"),
                    color_scheme=rx.cond(S.reason == r["code"], "red", "gray"), on_click=S.set_reason(r["code"]),
                    cursor="pointer", data_testid="reject-reason-" + r["code"])),
                spacing="1"),
            icon="ban", color_scheme="red", data_testid="claims-confirm-reject")),
    )


def _review() -> rx.Component:
    c = S.claim
    return rx.cond(
        S.cur >= 0,
        rx.vstack(
            rx.el.div(
                rx.vstack(
                    rx.hstack(rx.heading("申请 #", c["id"], size="4", data_testid="claim-title"),
                              rx.badge(c["status_label"], data_testid="claim-status"), rx.badge(c["category"]),
                              rx.cond(c["four_eyes"] != "", rx.badge("双人复核", color_scheme="amber")),
                              rx.spacer(), rx.text("时效 ", c["sla"], size="1", color_scheme="gray"),
                              width="100%", align="center"),
                    rx.cond(S.lease_note != "", rx.callout(S.lease_note, icon="lock", color_scheme="amber",
                                                           data_testid="claim-lease-note")),
                    _prompt(),
                    rx.hstack(
                        rx.vstack(_kv("实付金额", c["amount"], "claim-detail-amount"), _kv("返现金额", c["payout"]),
                                  _kv("门店/运营商", c["station"]), _kv("保养项目", c["items"]),
                                  _kv("手机", c["phone"]), _kv("城市", c["city"]), spacing="1"),
                        rx.vstack(_kv("收款方式", c["method"]), _kv("收款账号", c["account"], "claim-account"),
                                  _kv("姓名", c["name"]), _kv("提交时间", c["created"]),
                                  rx.cond(c["reviewer"] != "", _kv("初审", c["reviewer"])),
                                  rx.cond(c["reason"] != "", _kv("原因", c["reason"])), spacing="1"),
                        spacing="6", width="100%", wrap="wrap",
                    ),
                    rx.foreach(S.mismatches, lambda m: rx.callout(m, icon="triangle-alert", color_scheme="red",
                                                                  size="1", data_testid="claim-mismatch")),
                    rx.foreach(S.duplicates, lambda m: rx.callout(m, icon="copy", color_scheme="orange", size="1",
                                                                  data_testid="claim-duplicate")),
                    rx.foreach(S.images, _image),
                    width="100%", spacing="3",
                ),
                id="claims-review", data_testid="claims-review", style={"width": "100%"},
            ),
            rx.cond(S.mode == "reject", rx.hstack(
                rx.input(placeholder="或填写其他原因", value=S.reason_text, on_change=S.set_reason_text, width="20rem",
                         on_focus=S.focus_field, on_blur=S.blur_field, data_testid="reject-text"),
                rx.button("确认驳回", color_scheme="red", on_click=S.confirm, data_testid="reject-confirm"),
                rx.button("取消", variant="ghost", on_click=S.ask(""), color_scheme="gray"),
            )),
            rx.hstack(
                rx.button("通过 (a)", color_scheme="green", on_click=S.ask("approve"), data_testid="claim-approve",
                          disabled=c["status"] != "pending_review"),
                rx.button("驳回 (r)", color_scheme="red", variant="soft", on_click=S.ask("reject"),
                          data_testid="claim-reject", disabled=c["status"] != "pending_review"),
                rx.cond(S.mode != "", rx.button("确认 (Enter)", on_click=S.confirm, data_testid="claims-confirm")),
                spacing="2",
            ),
            rx.text("用户历史申请", size="2", weight="bold"),
            rx.foreach(S.user_claims, lambda u: rx.text(u, size="1", color_scheme="gray")),
            rx.text("处理记录", size="2", weight="bold"),
            rx.foreach(S.history, lambda h: rx.text(h, size="1", color_scheme="gray", data_testid="claim-history")),
            width="60%", spacing="2", align="start",
        ),
        rx.box(width="60%"),
    )


@staff_page("claims", "返现审核")
def claims_page() -> rx.Component:
    return rx.vstack(
        _filters(),
        rx.hstack(
            rx.cond(S.typing,  # the listener and the badge change in the same render: "ready" means keys work
                    rx.badge("输入中 · 快捷键暂停", color_scheme="gray", data_testid="claims-keys-paused"),
                    rx.fragment(rx.badge("快捷键可用", color_scheme="green", data_testid="claims-keys-ready"),
                                rx.window_event_listener(on_key_down=S.key))),
            rx.text(KEYS, size="1", color_scheme="gray", data_testid="claims-keys"),
            rx.moment(interval=1000, format="HH:mm:ss", on_change=S.tick, display="none"),  # live queue
            spacing="2", align="center",
        ),
        rx.hstack(_queue(), _review(), width="100%", align="start", spacing="4"),
        width="100%", spacing="3",
    )
