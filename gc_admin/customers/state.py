"""Users page state (用户): search by phone; phones masked in the list; a user's coupons and their history.

A whole phone number that nobody has registered but that coupons were issued to shows as a 待领取
entry (they wait for the phone and are claimed at sign-up), whose coupons open like a user's.
"""

from __future__ import annotations

from typing import ClassVar

import reflex as rx

from gc_admin.audit.service import ACTION_LABELS
from gc_admin.core.clock import fmt_local
from gc_admin.core.errors import DomainError
from gc_admin.core.money import format_fen
from gc_admin.core.params import parse_id
from gc_admin.core.phone import mask_phone
from gc_admin.coupons.wallet import service as coupons
from gc_admin.coupons.wallet import service as coupon_views
from gc_admin.coupons.models import KINDS, SHOWN_STATUSES
from gc_admin.ui.auth import guarded, public, run_db
from gc_admin.ui.paging import PAGE_SIZE, PagedMixin
from gc_admin.users import service

SECTION = "users"
ACTOR_TYPES = {"staff": "员工", "user": "用户", "partner": "合作方", "system": "系统"}
SOURCES = {"staff": "后台发放", "partner": "合作方接口", "purchase": "小程序购买"}


def _coupon_rows(items: list[coupons.StaffCouponView]) -> list[dict[str, str]]:
    return [
        {
            "id": str(c.id), "product": c.product_name, "kind": KINDS.get(c.kind, c.kind),
            "face": format_fen(c.face_fen), "status": c.status, "status_label": SHOWN_STATUSES.get(c.status, c.status),
            "code": c.code_masked or "—", "issued_at": fmt_local(c.issued_at), "expires_at": fmt_local(c.expires_at),
            "use_by": fmt_local(c.use_by) or "—", "used_at": fmt_local(c.used_at) or "—",
            "source": SOURCES.get(c.source, c.source) + (f" · {c.batch_id}" if c.batch_id else ""),
        }
        for c in items
    ]


class UsersState(PagedMixin, rx.State):
    SECTION: ClassVar[str] = SECTION  # the paging handlers check it (ui.paging)
    SORT_KEYS: ClassVar = service.USER_SORT_KEYS
    phone_q: str = ""
    waiting: dict[str, str] = {}  # {phone (masked), count, available}: coupons waiting for an unregistered phone
    # the user detail dialog: their coupons (masked) and one coupon's history
    detail_open: bool = False
    detail: dict[str, str] = {}
    coupons: list[dict[str, str]] = []
    history_for: str = ""
    history: list[dict[str, str]] = []
    detail_error: str = ""

    def _on_denied(self) -> None:
        self.rows, self.total, self.waiting = [], 0, {}

    @rx.event
    @public
    def set_phone_q(self, value: str):
        self.phone_q = "".join(ch for ch in value if ch.isdigit())[:11]

    async def _reload(self):  # only from a guarded handler
        phone, sort = self.phone_q, self._sort()

        def _work(s):
            return (service.list_users(s, phone=phone, sort=sort, offset=self._offset(), limit=PAGE_SIZE),
                    coupon_views.waiting_phone(s, phone=phone))

        page, waiting = await run_db(_work)
        self.waiting = {} if waiting is None else {
            "phone": mask_phone(waiting.phone), "count": f"{waiting.coupons:,}", "available": f"{waiting.available:,}"}
        self.total = page.total
        self.rows = [
            {
                "id": str(u.id),
                "phone": mask_phone(u.phone) or "未绑定",
                "wechat": "已授权" if u.openid else "—",
                "city": u.city or "—",
                "created_at": fmt_local(u.created_at),
                "last_login": fmt_local(u.last_login_at) or "—",
            }
            for u in page.rows
        ]
        return None

    @rx.event
    @guarded(SECTION)
    async def export(self):
        """Every user matching the search (not just this page) as Excel, phones masked."""
        async for event in self._export("users", {"phone": self.phone_q, "sort": self._sort()}):
            yield event

    @rx.event
    @guarded(SECTION)
    async def open_user(self, user_id: str):
        try:
            user, items = await run_db(lambda s: coupon_views.user_coupons(s, user_id=parse_id(user_id, what="用户")))
        except (DomainError, ValueError) as exc:
            return rx.toast.error(getattr(exc, "message", "用户不存在"))
        self.detail = {
            "id": str(user.id), "phone": mask_phone(user.phone) or "未绑定手机号", "city": user.city or "—",
            "created_at": fmt_local(user.created_at), "count": str(len(items)),
            "available": str(sum(1 for c in items if c.status == "available")),
            "no_phone": "" if user.phone else "1", "waiting": "",
        }
        self.coupons = _coupon_rows(items)
        self.history_for, self.history, self.detail_error = "", [], ""
        self.detail_open = True
        return None

    @rx.event
    @guarded(SECTION)
    async def open_waiting(self):
        """The coupons waiting for the searched phone (no user has registered it yet)."""
        phone = self.phone_q
        try:
            waiting, items = await run_db(lambda s: (coupon_views.waiting_phone(s, phone=phone),
                                                     coupon_views.phone_coupons(s, phone=phone)))
        except DomainError as exc:
            return rx.toast.error(exc.message)
        if waiting is None:
            self.waiting = {}
            return rx.toast.error("该手机号没有待领取的券")
        self.detail = {
            "id": "未注册", "phone": mask_phone(waiting.phone), "city": "—", "created_at": "—",
            "count": str(len(items)), "available": str(sum(1 for c in items if c.status == "available")),
            "no_phone": "", "waiting": "1",
        }
        self.coupons = _coupon_rows(items)
        self.history_for, self.history, self.detail_error = "", [], ""
        self.detail_open = True
        return None

    @rx.event
    @public
    def set_detail_open(self, value: bool):
        self.detail_open = value
        if not value:
            self.coupons, self.history, self.history_for = [], [], ""

    @rx.event
    @guarded(SECTION)
    async def show_history(self, coupon_id: str):
        if self.history_for == coupon_id:
            self.history_for, self.history = "", []
            return None
        try:
            rows = await run_db(lambda s: coupons.coupon_history(s, coupon_id=parse_id(coupon_id, what="券")))
        except (DomainError, ValueError) as exc:
            self.detail_error = getattr(exc, "message", "券不存在")
            return None
        self.history_for = coupon_id
        self.history = [
            {
                "at": fmt_local(r.at, seconds=True),
                "actor": f"{ACTOR_TYPES.get(r.actor_type, r.actor_type)} · {r.actor_name or r.actor_id or ''}",
                "action": coupon_views.COUPON_ACTION_LABELS.get(r.action) or ACTION_LABELS.get(r.action, r.action),
                "summary": r.summary,
            }
            for r in rows
        ]
        return None
