"""Staff management page state (admin only; every handler re-checks)."""

from __future__ import annotations

from typing import Any, ClassVar

import reflex as rx

from gc_admin.accounts import service
from gc_admin.core.clock import fmt_local
from gc_admin.core.errors import DomainError
from gc_admin.core.params import parse_id
from gc_admin.core.phone import mask_phone
from gc_admin.core.roles import ROLE_LABELS
from gc_admin.ui.auth import current_principal, guarded, public, run_db
from gc_admin.ui.paging import PAGE_SIZE, CreateMixin, PagedMixin

SECTION = "staff"
NO_PROGRAMME = "none"  # the pickers' value for "no programme" (a select item cannot have an empty value)


def _programme(value: object) -> str | None:
    text = str(value or "").strip()
    return None if text in ("", NO_PROGRAMME) else text


class StaffState(CreateMixin, PagedMixin, rx.State):
    SECTION: ClassVar[str] = SECTION  # the paging handlers check it (ui.paging)
    SORT_KEYS: ClassVar = service.STAFF_SORT_KEYS
    programmes: list[dict[str, str]] = []  # {code, label}: what an insurer account can act for
    q: str = ""
    role_filter: str = "all"
    reset_open: bool = False
    reset_target_id: int = 0
    reset_target_name: str = ""

    @rx.event
    @public
    def set_q(self, value: str):
        self.q = value[:32]

    @rx.event
    @guarded(SECTION)
    async def set_role_filter(self, value: str):
        self.role_filter = value
        self.page = 1
        return await self._reload()

    async def _reload(self):  # only from a guarded handler
        p = current_principal()
        role = "" if self.role_filter == "all" else self.role_filter
        page = await run_db(service.list_staff, q=self.q, role=role, sort=self._sort(), offset=self._offset(),
                            limit=PAGE_SIZE)
        choices = await run_db(service.programme_choices)
        names = dict(choices)
        self.programmes = [{"code": c, "label": f"{n}（{c}）"} for c, n in choices]
        self.total = page.total
        self.rows = [
            {
                "id": str(u.id),
                "username": u.username,
                "display_name": u.display_name,
                "role": u.role,
                "role_label": ROLE_LABELS.get(u.role, u.role),
                "enabled": "1" if u.enabled else "",
                "phone": mask_phone(u.phone),
                "last_login": fmt_local(u.last_login_at) or "从未登录",
                "self": "1" if u.id == p.id else "",
                "has_programme": "1" if u.role in service.PROGRAMME_ROLES else "",
                "programme": u.programme_code or NO_PROGRAMME,
                "programme_label": names.get(u.programme_code or "", "未关联项目（不能操作项目数据）")
                if u.role in service.PROGRAMME_ROLES else "—",
            }
            for u in page.rows
        ]
        return None

    @rx.event
    @guarded(SECTION)
    async def create(self, form: dict[str, Any]):
        p = current_principal()
        try:
            user = await run_db(
                lambda s: service.create_staff(
                    s, actor=p.actor(), username=str(form.get("username", "")), display_name=str(form.get("display_name", "")),
                    password=str(form.get("password", "")), role=str(form.get("role", "")), phone=str(form.get("phone", "")) or None,
                    programme_code=_programme(form.get("programme_code")),
                )
            )
        except DomainError as exc:
            self.form_error = exc.message
            return None
        self._created()
        await self._reload()
        return rx.toast.success(f"已创建员工 {user.username}")

    @rx.event
    @guarded(SECTION)
    async def change_role(self, staff_id: str, role: str):
        p = current_principal()
        return await self._act(
            lambda s: service.set_role(s, actor=p, staff_id=parse_id(staff_id, what="员工"), role=role),
            lambda _user: f"角色已改为 {ROLE_LABELS.get(role, role)}，该员工需重新登录")

    @rx.event
    @guarded(SECTION)
    async def change_programme(self, staff_id: str, programme_code: str):
        p = current_principal()
        code = _programme(programme_code)
        return await self._act(
            lambda s: service.set_programme(s, actor=p, staff_id=int(staff_id), programme_code=code),
            lambda user: f"{user.username} 的所属项目已改为 {code}" if code else f"{user.username} 已不再关联项目",
            missing="员工不存在")

    @rx.event
    @guarded(SECTION)
    async def toggle_enabled(self, staff_id: str, enable: bool):
        p = current_principal()
        try:
            sid = parse_id(staff_id, what="员工")
            await run_db(lambda s: service.set_enabled(s, actor=p, staff_id=sid, enabled=enable))
        except DomainError as exc:
            return rx.toast.error(exc.message)
        await self._reload()
        return rx.toast.success("账号已启用" if enable else "账号已停用，已强制下线")

    @rx.event
    @public
    def open_reset(self, staff_id: str, name: str):
        try:
            self.reset_target_id = parse_id(staff_id, what="员工")
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.reset_target_name = name
        self.form_error = ""
        self.reset_open = True

    @rx.event
    @public
    def close_reset(self, value: bool):
        self.reset_open = value

    @rx.event
    @guarded(SECTION)
    async def reset_password(self, form: dict[str, Any]):
        p = current_principal()
        password = str(form.get("password", ""))
        if password != str(form.get("confirm", "")):
            self.form_error = "两次输入的密码不一致"
            return None
        try:
            target = self.reset_target_id
            await run_db(lambda s: service.reset_password(s, actor=p, staff_id=target, new_password=password))
        except DomainError as exc:
            self.form_error = exc.message
            return None
        self.reset_open = False
        return rx.toast.success(f"已重置 {self.reset_target_name} 的密码，并强制其下线")
