"""订单导入与批量发货 page state: ship goods by sheet (a supplier its own orders; platform staff any) and
import a third-party channel's orders (mapping editor, preview, import, report).

The uploaded file is kept in a private staging file (``coupons.staging``) between the preview and the
apply — the state holds its token and a page of report rows, never the file. Every handler that reads
or changes data is ``@guarded("orders")`` and re-checks on the server what the member may do (the
supplier scope; the import roles); setters of form fields are ``@public``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import reflex as rx

from gc_admin.core.errors import DomainError
from gc_admin.core.uploads import read_upload
from gc_admin.coupons.staging import discard_staged, staged_path, staging_file
from gc_admin.orders import service as orders
from gc_admin.orders.imports import flows as import_flows
from gc_admin.orders.imports import service as imports
from gc_admin.orders.suppliers import flows as ship_flows
from gc_admin.orders.suppliers import shipments
from gc_admin.orders.suppliers.shipments import IMPORT_ROLES
from gc_admin.ui.auth import current_principal, guarded, public, run_db

SECTION = "orders"
SHOWN = 50  # report rows on the page (the counts cover all)
SHIP_UPLOAD = "ship-upload"
ORDERS_UPLOAD = "orders-upload"
OUTCOME_LABELS = {"ship": "将发货", "skip": "已发货（跳过）", "error": "有误", "shipped": "已发货", "failed": "失败",
                  "ok": "将导入", "duplicate": "重复（跳过）", "imported": "已导入"}


def _ship_scope() -> orders.Scope | None:
    p = current_principal()
    return shipments.ship_scope(p.role, supplier_code=p.supplier_code)


def _rows(items: list[dict[str, Any]], key: str) -> list[dict[str, str]]:
    return [{"line": str(r["line"]), "key": str(r.get(key, "")), "outcome": OUTCOME_LABELS.get(r["outcome"], r["outcome"]),
             "message": r.get("message", "")} for r in items[:SHOWN]]


class OrderImportsState(rx.State):
    SECTION = SECTION

    can_ship: bool = False
    can_import: bool = False
    error: str = ""
    ship_token: str = ""
    ship_name: str = ""
    ship_summary: str = ""
    ship_rows: list[dict[str, str]] = []
    ship_ready: bool = False  # a previewed sheet with rows to ship
    source: str = ""
    mapping: dict[str, str] = {}
    default_type: str = "goods"
    imp_token: str = ""
    imp_name: str = ""
    imp_summary: str = ""
    imp_rows: list[dict[str, str]] = []
    imp_ready: bool = False

    def _on_denied(self) -> None:
        self.can_ship = self.can_import = self.ship_ready = self.imp_ready = False
        self.ship_rows, self.imp_rows = [], []

    @rx.event
    @guarded(SECTION)
    async def load(self):
        self.can_ship = _ship_scope() is not None
        self.can_import = current_principal().role in IMPORT_ROLES
        self.error = ""

    # --- 批量发货 ---------------------------------------------------------------------------------

    @rx.event
    @guarded(SECTION)
    async def preview_shipments(self, files: list[rx.UploadFile]):
        scope = _ship_scope()
        if scope is None or not files:
            self.error = "" if files else "请选择发货表"
            return
        try:
            data = await read_upload(files[0])
            plan = await run_db(lambda s: shipments.plan(s, data=data, scope=scope))
        except DomainError as exc:
            self.error, self.ship_ready, self.ship_rows = exc.message, False, []
            return
        if self.ship_token:
            discard_staged("shipments", self.ship_token)
        token, path = staging_file("shipments")
        path.write_bytes(data)
        self.ship_token, self.ship_name, self.error = token, (files[0].name or "发货表").rsplit("/", 1)[-1], ""
        self.ship_rows = _rows([r.to_dict() for r in plan.rows], "order_no")
        self.ship_summary = (f"预览：共 {len(plan.rows)} 行，将发货 {plan.count('ship')} 单，已发货跳过 "
                             f"{plan.count('skip')} 单，有误 {plan.count('error')} 行")
        self.ship_ready = plan.count("ship") > 0

    @rx.event
    @guarded(SECTION)
    async def apply_shipments(self):
        scope = _ship_scope()
        if scope is None or not self.ship_token:
            return
        path = staged_path("shipments", self.ship_token)
        if not path.exists():
            self.error, self.ship_ready = "预览已过期，请重新上传发货表", False
            return
        data, name, p = path.read_bytes(), self.ship_name, current_principal()
        try:  # the orders.ship_import task, waited for off the event loop (its own units of work)
            rec = await asyncio.to_thread(ship_flows.ship_file, actor=p.actor(), role=p.role,
                                          supplier_code=p.supplier_code, data=data, filename=name)
        except DomainError as exc:
            self.error = exc.message
            return
        discard_staged("shipments", self.ship_token)
        self.ship_token, self.ship_ready = "", False
        if rec.status not in ("done", "failed"):
            self.ship_rows = []
            self.ship_summary = f"仍在处理…（第 {rec.id} 号发货），完成后订单状态会变为已发货"
            return rx.toast.info("仍在处理…，稍后查看发货结果")
        self.ship_rows = _rows(rec.report, "order_no")
        self.ship_summary = f"已完成：发货 {rec.shipped} 单，已发货跳过 {rec.skipped} 单，有误 {rec.failed} 行"
        return rx.toast.success(f"已发货 {rec.shipped} 单")

    # --- 第三方订单导入 -----------------------------------------------------------------------------

    @rx.event
    @public
    def set_source(self, value: str):
        self.source = value.strip().lower()[:32]

    @rx.event
    @public
    def set_map_field(self, field: str, value: str):
        if field in imports.FIELDS:
            self.mapping = {**self.mapping, field: value.strip()[:64]}

    @rx.event
    @public
    def set_default_type(self, value: str):
        self.default_type = value

    @rx.event
    @guarded(SECTION)
    async def load_mapping(self):
        if current_principal().role not in IMPORT_ROLES:
            return
        source = self.source
        try:
            m = await run_db(lambda s: imports.get_mapping(s, source=source))
            self.mapping, self.default_type, self.error = dict(m.mapping), m.default_type, ""
        except DomainError as exc:
            self.mapping, self.error = {}, exc.message

    @rx.event
    @guarded(SECTION)
    async def save_mapping(self):
        p = current_principal()
        if p.role not in IMPORT_ROLES:
            return
        source, mapping, default_type = self.source, dict(self.mapping), self.default_type
        try:
            await run_db(lambda s: imports.save_mapping(s, actor=p.actor(), source=source, mapping=mapping,
                                                        default_type=default_type))
        except DomainError as exc:
            self.error = exc.message
            return
        self.error = ""
        return rx.toast.success("列映射已保存")

    @rx.event
    @guarded(SECTION)
    async def preview_orders(self, files: list[rx.UploadFile]):
        if current_principal().role not in IMPORT_ROLES or not files:
            return
        source = self.source
        try:
            data = await read_upload(files[0])
            plan = await run_db(lambda s: imports.plan(s, source=source, data=data))
        except DomainError as exc:
            self.error, self.imp_ready, self.imp_rows = exc.message, False, []
            return
        if self.imp_token:
            discard_staged("orders", self.imp_token)
        token, path = staging_file("orders")
        path.write_bytes(data)
        self.imp_token, self.imp_name, self.error = token, (files[0].name or "订单").rsplit("/", 1)[-1], ""
        self.imp_rows = _rows([r.to_dict() for r in plan.rows], "external_id")
        self.imp_summary = (f"预览：共 {len(plan.rows)} 行，将导入 {plan.count('ok')} 单，重复 {plan.count('duplicate')} 单，"
                            f"有误 {plan.count('error')} 行")
        self.imp_ready = plan.count("ok") > 0

    @rx.event
    @guarded(SECTION)
    async def apply_orders(self):
        p = current_principal()
        if p.role not in IMPORT_ROLES or not self.imp_token:
            return
        path = staged_path("orders", self.imp_token)
        if not path.exists():
            self.error, self.imp_ready = "预览已过期，请重新上传文件", False
            return
        data, name, source = path.read_bytes(), self.imp_name, self.source
        try:  # the orders.import task, waited for off the event loop (its own units of work)
            rec = await asyncio.to_thread(import_flows.import_file, actor=p.actor(), source=source, data=data,
                                          filename=name)
        except DomainError as exc:
            self.error = exc.message
            return
        discard_staged("orders", self.imp_token)
        self.imp_token, self.imp_ready = "", False
        if rec.status not in ("done", "failed"):
            self.imp_rows = []
            self.imp_summary = f"导入仍在进行（第 {rec.id} 号导入），完成后订单会出现在订单列表中"
            return rx.toast.info("导入进行中，稍后查看结果")
        self.imp_rows = _rows(rec.report, "external_id")
        self.imp_summary = f"已完成：导入 {rec.imported} 单，重复跳过 {rec.duplicates} 单，有误 {rec.failed} 行"
        return rx.toast.success(f"已导入 {rec.imported} 单")
