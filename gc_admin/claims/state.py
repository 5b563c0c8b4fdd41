"""返现审核 page state: one page of the queue and the one claim under review, keyboard-driven.

Keys (:meth:`ClaimsState.key`, a window key listener; ignored while a text field has the focus): ``j``/``k`` next/previous claim,
``a`` approve (asks; ``Enter`` confirms, ``Esc`` cancels), ``r`` reject (pick a reason with ``1``–``9``,
``Enter`` confirms), ``+``/``-`` zoom, ``o`` rotate, ``b`` batch-approve the page's unflagged claims (asks).
A clean claim is reviewed in three keystrokes: ``j``, ``a``, ``Enter``.

Opening a claim takes its review lease (:func:`gc_admin.claims.review.take_lease`); a claim another
clerk holds shows who, and deciding it is refused by the service. Every handler that reads or changes
data is ``@guarded("claims")``.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar


import reflex as rx

from gc_admin.claims import display, flows, review, service
from gc_admin.core.errors import DomainError
from gc_admin.ui.auth import current_principal, guarded, public, run_db

SECTION = "claims"
PAGE = 20


class ClaimsState(rx.State):
    SECTION: ClassVar[str] = SECTION
    rows: list[dict[str, str]] = []
    total: int = 0
    status: str = "pending_review"
    category: str = "all"
    flagged: str = "all"
    q: str = ""
    cur: int = -1
    claim: dict[str, str] = {}
    images: list[dict[str, str]] = []
    mismatches: list[str] = []
    duplicates: list[str] = []
    history: list[str] = []
    user_claims: list[str] = []
    lease_note: str = ""
    zoom: int = 100
    rotate: int = 0
    mode: str = ""  # "" | approve | reject | batch
    reasons: list[dict[str, str]] = []
    reason: str = ""
    reason_text: str = ""
    message: str = ""
    typing: bool = False  # a text field has the focus: keys are text, not commands

    def _on_denied(self) -> None:
        self.rows, self.total, self.claim, self.images = [], 0, {}, []

    # --- loading ---------------------------------------------------------------------------------
    def _filters(self) -> review.QueueFilter:
        return review.QueueFilter(status=None if self.status == "all" else self.status,
                                  category=None if self.category == "all" else self.category,
                                  flagged={"all": None, "yes": True, "no": False}[self.flagged], q=self.q or None)

    async def _reload(self) -> None:
        f = self._filters()

        def work(s):
            page = review.list_queue(s, filters=f, offset=0, limit=PAGE)
            return page.total, [display.queue_row(review.row_view(c)) for c in page.rows], service.reject_reasons(s)

        self.total, self.rows, self.reasons = await run_db(work)

    async def _open(self, index: int) -> None:
        self.mode, self.zoom, self.rotate, self.message = "", 100, 0, ""
        if not self.rows:
            self.cur, self.claim, self.images = -1, {}, []
            return
        self.cur = max(0, min(index, len(self.rows) - 1))
        claim_id = int(self.rows[self.cur]["id"])
        principal = current_principal()

        def work(s):
            note = ""
            if s.get(review.Claim, claim_id).status == "pending_review":
                try:
                    review.take_lease(s, claim_id=claim_id, principal=principal)
                except DomainError as exc:
                    note = exc.message
            return note, review.detail(s, claim_id=claim_id)

        self.lease_note, d = await run_db(work)
        (self.claim, self.images, self.mismatches, self.duplicates, self.history,
         self.user_claims) = display.claim_detail(d)

    async def _reread_open(self, claim_id: int) -> None:
        """The open claim read again in place (zoom, rotation and lease untouched): its OCR fields and
        duplicate flags arrive after the job has read the receipts."""
        d = await run_db(lambda s: review.detail(s, claim_id=claim_id))
        (self.claim, self.images, self.mismatches, self.duplicates, self.history,
         self.user_claims) = display.claim_detail(d)

    @rx.event
    @guarded(SECTION)
    async def load(self):
        await self._reload()
        await self._open(0)

    @rx.event
    @guarded(SECTION, quiet=True)  # a timer: no toast for a refusal every second
    async def tick(self, _now: str = ""):
        """Live queue (a hidden 1 s timer, as on the 订单看板): re-read the page of the queue from the
        database — new claims, other clerks' decisions, from any worker on any host — and show it when it
        moved; the open claim stays open, or (decided elsewhere, gone from the queue) the one now in its
        place opens. Nothing moves while a confirmation is open."""
        if self.mode:
            return None
        before, open_id = self.rows, self.claim.get("id")
        reading = any(i.get("pending") for i in self.images)
        await self._reload()
        if self.rows == before and not reading:
            return None
        ids = [r["id"] for r in self.rows]
        if open_id is not None and open_id in ids:
            self.cur = ids.index(open_id)
            old = next((r for r in before if r["id"] == open_id), None)
            if reading or old != self.rows[self.cur]:  # its OCR or flags may have moved
                await self._reread_open(int(open_id))
        else:
            await self._open(max(self.cur, 0))
        return None

    @rx.event
    @guarded(SECTION)
    async def set_status(self, value: str):
        self.status = value
        await self._load_again()

    @rx.event
    @guarded(SECTION)
    async def set_category(self, value: str):
        self.category = value
        await self._load_again()

    @rx.event
    @guarded(SECTION)
    async def set_flagged(self, value: str):
        self.flagged = value
        await self._load_again()

    @rx.event
    @public
    def focus_field(self):
        self.typing = True

    @rx.event
    @public
    def blur_field(self):
        self.typing = False

    @rx.event
    @public
    def set_q(self, value: str):
        self.q = value.strip()[:20]

    @rx.event
    @guarded(SECTION)
    async def search(self):
        await self._load_again()

    async def _load_again(self) -> None:
        await self._reload()
        await self._open(0)

    @rx.event
    @guarded(SECTION)
    async def pick(self, index: int):
        await self._open(int(index))

    # --- the keyboard -----------------------------------------------------------------------------
    @rx.event
    @guarded(SECTION)
    async def key(self, key: str, modifiers: dict | None = None):
        if self.typing or (modifiers and (modifiers.get("ctrl_key") or modifiers.get("meta_key") or modifiers.get("alt_key"))):
            return None  # typing in a field, or a browser shortcut: not ours
        k = str(key)
        if self.mode == "approve":
            if k == "Enter" or k == "a":
                return await self._approve()
            if k == "Escape":
                self.mode = ""
            return None
        if self.mode == "reject":
            if k.isdigit() and 1 <= int(k) <= len(self.reasons):
                self.reason = self.reasons[int(k) - 1]["code"]
            elif k == "Enter":
                return await self._reject()
            elif k == "Escape":
                self.mode = ""
            return None
        if self.mode == "batch":
            if k == "Enter":
                return await self._batch()
            if k == "Escape":
                self.mode = ""
            return None
        if k == "j":
            await self._open(self.cur + 1)
        elif k == "k":
            await self._open(self.cur - 1)
        elif k == "a" and self.claim.get("status") == "pending_review":
            self.mode = "approve"
        elif k == "r" and self.claim.get("status") == "pending_review":
            self.mode, self.reason, self.reason_text = "reject", "", ""
        elif k in ("+", "="):
            self.zoom = min(self.zoom + 25, 300)
        elif k == "-":
            self.zoom = max(self.zoom - 25, 50)
        elif k == "o":
            self.rotate = (self.rotate + 90) % 360
        elif k == "b":
            self.mode = "batch"
        return None

    @rx.event
    @guarded(SECTION)
    async def ask(self, mode: str):
        self.mode = mode if mode in ("approve", "reject", "batch") else ""

    @rx.event
    @public
    def set_reason(self, code: str):
        self.reason = code

    @rx.event
    @public
    def set_reason_text(self, value: str):
        self.reason_text = value[:200]

    @rx.event
    @guarded(SECTION)
    async def confirm(self):
        if self.mode == "approve":
            return await self._approve()
        if self.mode == "reject":
            return await self._reject()
        if self.mode == "batch":
            return await self._batch()
        return None

    # --- decisions ------------------------------------------------------------------------------------
    async def _after(self, toast: Any) -> Any:
        cur = self.cur
        await self._reload()
        await self._open(cur)
        return toast

    async def _approve(self):
        claim_id, principal = int(self.claim["id"]), current_principal()
        self.mode = ""
        try:
            out = await asyncio.to_thread(flows.approve, claim_id=claim_id, principal=principal)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        if out["awaiting_second"]:
            msg = f"申请 #{claim_id} 初审通过，需另一位同事复核"
        elif out["status"] == "paid":
            msg = f"申请 #{claim_id} 已通过并打款 {self.claim['payout']}"
        else:
            msg = f"申请 #{claim_id} 已通过" + (f"（{out['payout']['message']}）" if out.get("payout") else "，待打款")
        return await self._after(rx.toast.success(msg))

    async def _reject(self):
        reason = self.reason_text.strip() or self.reason
        if not reason:
            return rx.toast.error("请选择或填写驳回原因")
        claim_id, principal = int(self.claim["id"]), current_principal()
        try:
            await run_db(lambda s: review.reject(s, claim_id=claim_id, principal=principal, reason=reason))
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.mode = ""
        return await self._after(rx.toast.success(f"申请 #{claim_id} 已驳回，返现券已退回用户"))

    async def _batch(self):
        ids = [int(r["id"]) for r in self.rows if not r["flagged"] and r["status"] == "pending_review"]
        self.mode = ""
        if not ids:
            return rx.toast.info("本页没有无异常的待审核申请")
        principal = current_principal()
        results = await asyncio.to_thread(flows.bulk_approve, claim_ids=ids, principal=principal)
        ok = sum(1 for r in results if r["ok"])
        waiting = sum(1 for r in results if not r["ok"] and r["error"]["code"] == "CLAIM_CHECKS_PENDING")
        note = f"；{waiting} 条凭证尚在识别中，稍后再试" if waiting else ""
        return await self._after(rx.toast.success(f"批量通过 {ok} / {len(ids)} 条{note}"))

    @rx.var
    def batch_count(self) -> int:
        return sum(1 for r in self.rows if not r["flagged"] and r["status"] == "pending_review")
