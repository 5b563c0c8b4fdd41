"""Server-side paging and sorting for list pages: a state mixin (each page gets its own copy of the vars).

Every list page's state starts from :class:`RowsMixin` (its ``rows``, and ``load``: the page's
``on_load``, which reloads them); a paged list's from :class:`PagedMixin`.

Sorting: ``sort`` is ``""`` (the list's default order), ``"key"`` (ascending) or ``"-key"``
(descending); a click on a header (:func:`gc_admin.ui.components.table_header`) sends
:meth:`PagedMixin.sort_by`, which cycles ascending → descending → default. A page state lists the
keys it accepts in ``SORT_KEYS`` (its service's whitelist); any other key sent by a browser is
ignored, and the service refuses unknown keys again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from typing import Any, ClassVar, TypeVar

import reflex as rx
from sqlmodel import Session

from gc_admin.core import export_jobs
from gc_admin.core.errors import DomainError
from gc_admin.core.exports import XLSX_MIME
from gc_admin.core.principal import Principal
from gc_admin.ui.auth import current_principal, guarded, public, run_db

PAGE_SIZE = 20
T = TypeVar("T")


class RowsMixin(rx.State, mixin=True):
    """A page state that shows rows. It sets ``SECTION: ClassVar[str]``: the shared handlers check that
    section (:func:`gc_admin.ui.auth.guarded`) before reloading, and implements ``_reload``."""

    rows: list[dict[str, str]] = []

    def _on_denied(self) -> None:  # a state that shows more clears that too
        self.rows = []

    async def _reload(self):  # implemented by each page state, called by guarded handlers only
        raise NotImplementedError

    @rx.event
    @guarded()  # the page state's SECTION
    async def load(self):
        """The page's ``on_load``."""
        return await self._reload()

    async def _act(self, work: Callable[[Session], T], done: Callable[[T], str], *, missing: str = "记录不存在") -> Any:
        """The body of a row action (inside its guarded handler): ``work`` in one unit of work, then the rows
        again — refused or not, the row may have changed — and a toast: ``done(result)``, or the refusal's
        message (``missing`` for an id that is not one)."""
        try:
            result = await run_db(work)
        except (DomainError, ValueError) as exc:
            await self._reload()
            return rx.toast.error(getattr(exc, "message", missing))
        await self._reload()
        return rx.toast.success(done(result))


class SearchMixin(rx.State, mixin=True):
    """A list with a search box ``q`` (an order number, a phone…: at most 32 characters, trimmed; the
    page's search applies it)."""

    q: str = ""

    @rx.event
    @public
    def set_q(self, value: str):
        self.q = value.strip()[:32]


class DateRangeMixin(rx.State, mixin=True):
    """A list filtered by a day range typed in two ``type="date"`` inputs (``YYYY-MM-DD``; the page's
    search applies them)."""

    date_from: str = ""
    date_to: str = ""

    @rx.event
    @public
    def set_date_from(self, value: str):
        self.date_from = value[:10]

    @rx.event
    @public
    def set_date_to(self, value: str):
        self.date_to = value[:10]


def setter(var: str, of: type = str, *, limit: int | None = None, strip: bool = False) -> Callable[..., None]:
    """The UI-only handler ``set_<var>`` (``@public``: it reads and changes no data), declared in a state's class
    body: ``set_fee_yuan = setter("fee_yuan", limit=10, strip=True)``. It sets ``var`` to the value sent (``of``:
    its type, ``bool`` for a dialog's open flag), text trimmed with ``strip`` and cut to ``limit`` characters."""

    def handler(self: rx.State, value: Any) -> None:
        if strip:
            value = value.strip()
        setattr(self, var, value if limit is None else value[:limit])

    handler.__name__ = handler.__qualname__ = f"set_{var}"  # Reflex names the event after it
    handler.__annotations__ = {"value": of, "return": None}
    return rx.event(public(handler))


class CreateMixin(rx.State, mixin=True):
    """A list page's 新建 dialog: whether it is open, and the form's inline error (Chinese)."""

    create_open: bool = False
    form_error: str = ""

    def _fresh_form(self) -> None:  # a state resets what its form keeps between openings here
        pass

    @rx.event
    @public
    def open_create(self, value: bool):
        self.create_open, self.form_error = value, ""
        if value:
            self._fresh_form()

    def _created(self) -> None:
        """After a create that succeeded: the dialog closes, its error clears."""
        self.create_open, self.form_error = False, ""


class PagedMixin(RowsMixin, mixin=True):
    """Paging and sorting for a list page (see :class:`RowsMixin`)."""

    SORT_KEYS: ClassVar[Collection[str]] = ()  # the service's sort whitelist; empty: the list does not sort
    page: int = 1
    total: int = 0
    sort: str = ""
    exporting: bool = False

    @rx.var
    def pages(self) -> int:
        return max(1, (self.total + PAGE_SIZE - 1) // PAGE_SIZE)

    def _offset(self) -> int:
        return (self.page - 1) * PAGE_SIZE

    def _on_denied(self) -> None:
        self.rows, self.total = [], 0

    def _sort_keys(self) -> Collection[str]:
        return self.SORT_KEYS

    def _sort(self) -> str | None:
        """The current sort for the service call (``None``: the default order)."""
        return self.sort or None

    async def _export(self, kind: str, filters: dict[str, Any]):
        """The body of every list's export handler: the button spins while :func:`export_xlsx` waits for the
        export (built by the ``exports.build`` task), then the file, the "still being built" toast or the
        refusal's toast goes to the browser. The caller checks the role first; ``filters`` are JSON values (or
        datetimes) the kind's builder re-validates — the role's scope comes from the signed-in member."""
        self.exporting = True
        yield
        try:
            events = await export_xlsx(kind, filters, principal=current_principal())
        except DomainError as exc:
            events = [rx.toast.error(exc.message)]
        self.exporting = False
        for event in events:
            yield event

    @rx.event
    @guarded()  # the page state's SECTION
    async def next_page(self):
        if self.page < self.pages:
            self.page += 1
        return await self._reload()

    @rx.event
    @guarded()  # the page state's SECTION
    async def prev_page(self):
        if self.page > 1:
            self.page -= 1
        return await self._reload()

    @rx.event
    @guarded()  # the page state's SECTION
    async def search(self):
        self.page = 1
        return await self._reload()

    @rx.event
    @guarded()  # the page state's SECTION
    async def sort_by(self, key: str):
        """A header click: ascending, then descending, then the list's default order."""
        if not isinstance(key, str) or key not in self._sort_keys():
            return None
        self.sort = f"-{key}" if self.sort == key else ("" if self.sort == f"-{key}" else key)
        self.page = 1
        return await self._reload()


async def export_xlsx(kind: str, filters: dict[str, Any], *, principal: Principal,
                      wait_seconds: float | None = None) -> list[Any]:
    """Export ``kind`` through :func:`gc_admin.core.export_jobs.export_file` in a worker thread; the events an
    export handler yields: the file (``<title>-<local time>.xlsx``) and a toast with the row count — or, when the
    export is still being built after the wait, a toast asking to click again later (that click gets the same
    export, not a second one)."""
    rec, data = await asyncio.to_thread(export_jobs.export_file, kind, principal=principal, filters=filters,
                                        wait_seconds=wait_seconds)
    if data is None:
        return [rx.toast.info(export_jobs.PENDING)]
    title = export_jobs.kind_of(kind).title
    return [rx.download(data=data, filename=rec.filename, mime_type=XLSX_MIME),
            rx.toast.success(f"已导出 {rec.rows:,} 条{title}记录")]
