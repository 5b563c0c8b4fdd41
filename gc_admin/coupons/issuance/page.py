"""发券 page: batch issuance form, confirmation dialog, result, batch history."""

from __future__ import annotations

import reflex as rx

from gc_admin.core.uploads import limits as upload_limits
from gc_admin.coupons.issuance.state import MAX_PER_PHONE, UPLOAD_ID, IssuanceState
from gc_admin.ui.components import NUM, Col, confirm_dialog, empty_row, export_button, list_table, table_header
from gc_admin.ui.layout import staff_page

ROW_COLORS = {"issued": "green", "invalid_phone": "red", "duplicate": "amber", "no_stock": "orange"}


def _label(text: str, *children: rx.Component) -> rx.Component:
    return rx.vstack(rx.text(text, size="2", weight="medium"), *children, spacing="1", width="100%")


def _phones_input() -> rx.Component:
    s = IssuanceState
    return rx.cond(
        s.file_token != "",
        rx.card(
            rx.hstack(
                rx.icon("file-spreadsheet", size=20, color=rx.color("green", 10)),
                rx.vstack(rx.text(s.file_name, weight="medium"),
                          rx.text("共 ", s.file_count, " 行，将按文件中的手机号发放", size="1", color_scheme="gray"),
                          spacing="0"),
                rx.spacer(),
                rx.button("移除文件", size="1", variant="soft", color_scheme="gray", on_click=s.clear_file, type="button"),
                align="center", width="100%",
            ),
            width="100%", data_testid="phones-file-chip",
        ),
        rx.vstack(
            rx.text_area(name="phones", id="phones-text", placeholder="每行一个手机号，也可用逗号或空格分隔\n13812345678\n13912345678",
                         rows="8", width="100%", resize="vertical", font_family="var(--code-font-family)",
                         data_testid="phones-text"),
            rx.hstack(
                rx.upload.root(
                    rx.button(rx.icon("file-up", size=14), "或上传手机号文件（CSV / Excel / TXT）", size="1",
                              variant="soft", type="button"),
                    id=UPLOAD_ID, multiple=False, max_files=1, max_size=upload_limits().max_bytes,
                    accept={"text/csv": [".csv"], "text/plain": [".txt"],
                            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": [".xlsx"],
                            "application/vnd.ms-excel": [".xls"]},
                    on_drop=s.upload_phones(rx.upload_files(upload_id=UPLOAD_ID)),
                    data_testid="phones-upload",
                ),
                rx.text("粘贴适合 1 万个以内的号码；更多请上传文件。文件可带“手机号”列名，或每行一个号码。", size="1",
                        color_scheme="gray"),
                align="center", spacing="3", wrap="wrap",
            ),
            width="100%", spacing="2",
        ),
    )


def _form() -> rx.Component:
    s = IssuanceState
    return rx.card(
        rx.form(
            rx.vstack(
                rx.hstack(rx.text("批量发券", weight="bold", size="3"), rx.spacer(),
                          rx.button(rx.icon("file-plus", size=14), "新批次", type="button", variant="ghost", size="1",
                                    on_click=s.new_batch, data_testid="new-batch"),
                          width="100%", align="center"),
                rx.grid(
                    _label("券种", rx.select.root(
                        rx.select.trigger(placeholder="选择要发放的券种", width="100%", data_testid="issue-product"),
                        rx.select.content(rx.foreach(s.products, lambda p: rx.select.item(p["label"], value=p["code"]))),
                        value=s.product_code, on_change=s.set_product,
                    )),
                    _label("每个手机号张数", rx.select.root(
                        rx.select.trigger(width="100%", data_testid="issue-per-phone"),
                        rx.select.content(*[rx.select.item(f"{n} 张", value=str(n)) for n in range(1, MAX_PER_PHONE + 1)]),
                        value=s.per_phone, on_change=s.set_per_phone,
                    )),
                    _label("批次号", rx.input(value=s.batch_id, on_change=s.set_batch_id, max_length=64, width="100%",
                                            data_testid="issue-batch-id"),
                           rx.text("同一批次号只会发放一次；重复提交将显示首次结果", size="1", color_scheme="gray")),
                    grid_template_columns=rx.breakpoints(initial="1fr", md="2fr 1fr 1.2fr"), spacing="4", width="100%",
                ),
                _label("手机号", _phones_input()),
                rx.cond(s.error != "", rx.callout(s.error, icon="triangle-alert", color_scheme="red", size="1",
                                                  width="100%", data_testid="issue-error")),
                rx.hstack(
                    rx.button(rx.icon("eye", size=14), "预览", type="submit", disabled=s.issuing, data_testid="issue-preview"),
                    rx.text("预览后会弹出确认框，确认后才会发券。", size="1", color_scheme="gray"),
                    align="center", spacing="3",
                ),
                spacing="4", width="100%",
            ),
            on_submit=s.preview_batch,
            reset_on_submit=False,
        ),
        width="100%",
    )


def _count(label: str, value: rx.Var, testid: str, color: str = "gray") -> rx.Component:
    return rx.hstack(rx.text(label, size="2", color_scheme="gray"), rx.spacer(),
                     rx.text(value, size="2", weight="bold", color_scheme=color, data_testid=testid),
                     width="100%")


def _problems() -> rx.Component:
    """Which lines will not be issued, as the clerk wrote them: 第 n 行, the text, why."""
    s = IssuanceState
    return rx.vstack(
        rx.text("以下行不会发放，请核对：", size="2", weight="medium"),
        rx.scroll_area(
            rx.table.root(
                rx.table.header(rx.table.row(
                    rx.table.column_header_cell("行号", **NUM), rx.table.column_header_cell("内容"),
                    rx.table.column_header_cell("原因"))),
                rx.table.body(rx.foreach(s.preview_problems, lambda r: rx.table.row(
                    rx.table.cell(r["row"], **NUM),
                    rx.table.cell(rx.code(r["text"], variant="ghost", size="1", word_break="break-all")),
                    rx.table.cell(rx.text(r["reason"], size="1",
                                          color_scheme=rx.cond(r["status"] == "duplicate", "amber", "red"))),
                    data_testid="preview-problem",
                ))),
                size="1", variant="ghost", width="100%",
            ),
            max_height="12rem", type="auto", scrollbars="vertical",
        ),
        rx.cond(s.preview["problems_more"] != "",
                rx.text("另有 ", s.preview["problems_more"], " 行未列出，发放后可在“下载结果”中查看每一行。", size="1",
                        color_scheme="gray")),
        spacing="1", width="100%", margin_top="0.75rem", data_testid="preview-problems",
    )


def _confirm_dialog() -> rx.Component:
    s = IssuanceState
    pv = s.preview
    return confirm_dialog(
        rx.fragment("确认发放：", pv["product"]),
        rx.text.span(pv["headline"], data_testid="preview-headline"),
        open=s.preview_open,
        on_open_change=s.set_preview_open,
        extra=(
            rx.vstack(
                _count("批次号", pv["batch_id"], "preview-batch"),
                _count("提交行数", pv["requested"], "preview-requested"),
                _count("有效手机号（去重后）", pv["valid"], "preview-valid"),
                _count("每个手机号张数", pv["per_phone"], "preview-per-phone"),
                _count("手机号格式无效", pv["invalid"], "preview-invalid", "red"),
                _count("重复手机号（只发一次）", pv["duplicate"], "preview-duplicate", "amber"),
                _count("库存不足无法发放", pv["no_stock"], "preview-no-stock", "orange"),
                _count("当前可发库存", pv["stock"], "preview-stock"),
                _count("发放面值合计", pv["face"], "preview-face"),
                spacing="1", width="100%", padding="0.75rem", border_radius="var(--radius-3)",
                background=rx.color("gray", 2),
            ),
            rx.cond(s.preview_problems.length() > 0, _problems()),
            rx.cond(pv["replay"] == "1", rx.callout(
                "批次号 " + pv["batch_id"] + " 已发放过：确认后不会重复发券，只显示首次发放结果。如要发新的一批，请点“新批次”。",
                icon="info", color_scheme="blue", size="1", margin_top="0.75rem", data_testid="preview-replay")),
            rx.cond(pv["nothing"] == "1", rx.callout("没有可发放的手机号（或库存不足），确认后所有行都将记为失败。",
                                                     icon="triangle-alert", color_scheme="orange", size="1",
                                                     margin_top="0.75rem")),
            rx.text("发放后券立即进入用户“我的礼券”；未注册的手机号会在用户登录后自动归属。已发放的券不能撤回。",
                    size="1", color_scheme="gray", padding_top="0.75rem"),
        ),
        back=rx.alert_dialog.cancel(rx.button("取消", variant="soft", color_scheme="gray")),
        confirm=rx.alert_dialog.action(rx.button(rx.icon("send", size=14), "确认发放", on_click=s.confirm_issue,
                                                 data_testid="issue-confirm")),
        max_width="32rem",
        testid="preview-dialog",
    )


def _result_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row["row"], **NUM),
        rx.table.cell(row["phone"], white_space="nowrap"),
        rx.table.cell(rx.badge(row["label"], variant="soft",
                               color_scheme=rx.match(row["status"], *ROW_COLORS.items(), "gray"))),
        rx.table.cell(row["coupons"], **NUM),
        rx.table.cell(row["reason"]),
        data_testid="result-row",
    )


def _result() -> rx.Component:
    s = IssuanceState
    r = s.result
    return rx.fragment(
        rx.cond(
            s.issuing,
            rx.callout.root(
                rx.callout.icon(rx.spinner(size="2")),
                rx.callout.text(s.issuing_text, "。可以离开此页面，发放会在后台继续；回到本页即可看到结果。"),
                color_scheme="blue", width="100%", data_testid="issuing",
            ),
        ),
        rx.cond(
            r.contains("id"),
            rx.card(
                rx.vstack(
                    rx.cond(s.replayed, rx.callout("该批次已发放过，以下为首次结果（本次没有发放新券）。", icon="info",
                                                   color_scheme="blue", size="1", width="100%", data_testid="result-replayed")),
                    rx.hstack(
                        rx.icon("circle-check", size=18, color=rx.color("green", 10)),
                        rx.text("批次 ", r["batch_id"], " · ", r["product"], weight="bold"),
                        rx.text(r["at"], size="1", color_scheme="gray"),
                        rx.spacer(),
                        rx.button(rx.icon("download", size=14), "下载结果", size="1", variant="soft",
                                  on_click=s.download_result(r["id"]), data_testid="result-download"),
                        align="center", width="100%",
                    ),
                    rx.hstack(
                        rx.vstack(rx.text("提交行数", size="1", color_scheme="gray"),
                                  rx.text(r["requested"], size="5", weight="bold", data_testid="result-requested"), spacing="0"),
                        rx.vstack(rx.text("成功", size="1", color_scheme="gray"),
                                  rx.text(r["issued"], size="5", weight="bold", color_scheme="green",
                                          data_testid="result-issued"), spacing="0"),
                        rx.vstack(rx.text("失败", size="1", color_scheme="gray"),
                                  rx.text(r["failed"], size="5", weight="bold", color_scheme="red",
                                          data_testid="result-failed"), spacing="0"),
                        rx.vstack(rx.text("发出券数", size="1", color_scheme="gray"),
                                  rx.text(r["coupons"], size="5", weight="bold", data_testid="result-coupons"), spacing="0"),
                        spacing="6",
                    ),
                    rx.table.root(
                        rx.table.header(rx.table.row(
                            rx.table.column_header_cell("行号", **NUM, width="5rem"), rx.table.column_header_cell("手机号"),
                            rx.table.column_header_cell("结果"), rx.table.column_header_cell("券数", **NUM),
                            rx.table.column_header_cell("说明"),
                        )),
                        rx.table.body(rx.foreach(s.result_rows, _result_row)),
                        size="1", variant="surface", width="100%", data_testid="result-table",
                    ),
                    rx.cond(r["more"] != "", rx.text("仅显示前 200 行，另有 ", r["more"], " 行请下载结果查看。", size="1",
                                                     color_scheme="gray")),
                    spacing="3", width="100%",
                ),
                width="100%", data_testid="issue-result",
            ),
        ),
    )


def _history_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row["at"], white_space="nowrap"),
        rx.table.cell(rx.code(row["batch_id"], variant="ghost", size="1")),
        rx.table.cell(row["source"]),
        rx.table.cell(row["product"]),
        rx.table.cell(row["per_phone"], **NUM),
        rx.table.cell(row["requested"], **NUM),
        rx.table.cell(rx.cond(row["pending"] == "1",
                              rx.badge(row["status"], color_scheme=rx.cond(row["broken"] == "1", "red", "blue")),
                              row["issued"]),
                      **NUM),
        rx.table.cell(row["failed"], **NUM),
        rx.table.cell(row["coupons"], **NUM),
        rx.table.cell(row["actor"]),
        rx.table.cell(rx.button(rx.icon("download", size=12), "结果", size="1", variant="ghost",
                                on_click=IssuanceState.download_result(row["id"])), text_align="right"),
        data_testid="batch-row",
    )


@staff_page("issuance", "发券")
def issuance_page() -> rx.Component:
    s = IssuanceState
    return rx.vstack(
        _form(),
        _result(),
        _confirm_dialog(),
        rx.hstack(rx.text("发券批次", weight="bold", size="3"), rx.spacer(),
                  rx.button(rx.icon("refresh-cw", size=12), "刷新", size="1", variant="ghost", on_click=s.search),
                  export_button(s, "batches-export"),
                  width="100%", align="center", padding_top="0.5rem"),
        list_table(s, table_header(s, Col("时间", "created_at"), Col("批次号", "batch_id"), Col("来源", "source"),
                                   Col("券种", "product"), Col("每人", "per_phone", num=True),
                                   Col("行数", "requested", num=True), Col("成功", "issued", num=True),
                                   Col("失败", "failed", num=True), Col("券数", "coupons", num=True),
                                   Col("操作人", "actor"), ""),
                   _history_row, empty_row(11, "暂无发券批次"), size="1", data_testid="batch-table"),
        width="100%",
        spacing="4",
    )
