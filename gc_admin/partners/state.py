"""合作方接口 page state (admin only)."""

from __future__ import annotations

from typing import Any, ClassVar

import reflex as rx

from gc_admin.core.clock import fmt_local
from gc_admin.core.errors import DomainError
from gc_admin.core.params import parse_id
from gc_admin.partners import service
from gc_admin.programmes.service import list_programmes
from gc_admin.ui.auth import current_principal, guarded, public, run_db
from gc_admin.ui.paging import CreateMixin, RowsMixin

SECTION = "partners"


class PartnersState(CreateMixin, RowsMixin, rx.State):
    SECTION: ClassVar[str] = SECTION  # RowsMixin.load checks it
    programmes: list[dict[str, str]] = []  # the create form's picker: name (code)
    default_programme: str = ""
    new_key: str = ""
    scope_choice: list[str] = ["issuance:write", "issuance:read", "members:read", "statements:read"]

    async def _reload(self):  # only from a guarded handler
        keys, programmes = await run_db(lambda s: (service.list_keys(s), list_programmes(s)))
        names = {g.code: g.name for g in programmes}
        self.programmes = [{"code": g.code, "label": f"{g.name}（{g.code}）"} for g in programmes]
        codes = [g.code for g in programmes]
        self.default_programme = "picc_gx" if "picc_gx" in codes else (codes[0] if codes else "")
        self.rows = [
            {
                "id": str(k.id),
                "partner": k.partner_name,
                "programme": names.get(k.programme_code, k.programme_code),
                "programme_code": k.programme_code,
                "scopes": "、".join(service.SCOPES.get(s, s) for s in k.scopes.split()),
                "prefix": f"gcp_{k.prefix}_••••",
                "created": fmt_local(k.created_at),
                "last_used": fmt_local(k.last_used_at) or "从未使用",
                "live": "" if k.revoked_at else "1",
            }
            for k in keys
        ]
        return None

    def _fresh_form(self) -> None:
        self.new_key = ""

    @rx.event
    @public
    def toggle_scope(self, scope: str, checked: bool):
        chosen = set(self.scope_choice)
        (chosen.add if checked else chosen.discard)(scope)
        self.scope_choice = sorted(chosen)

    @rx.event
    @guarded(SECTION)
    async def create(self, form: dict[str, Any]):
        p = current_principal()
        scopes = list(self.scope_choice)
        try:
            _row, key = await run_db(lambda s: service.create_key(
                s, actor=p, partner_name=str(form.get("partner_name", "")),
                programme_code=str(form.get("programme_code", "")).strip(), scopes=scopes))
        except DomainError as exc:
            self.form_error = exc.message
            return None
        self.form_error = ""
        self.new_key = key
        return await self._reload()

    @rx.event
    @public
    def dismiss_key(self):
        self.new_key = ""
        self.create_open = False

    @rx.event
    @guarded(SECTION)
    async def revoke(self, key_id: str):
        p = current_principal()
        try:
            await run_db(lambda s: service.revoke_key(s, actor=p, key_id=parse_id(key_id, what="密钥")))
        except DomainError as exc:
            return rx.toast.error(exc.message)
        await self._reload()
        return rx.toast.success("密钥已吊销，使用该密钥的请求将被拒绝")
