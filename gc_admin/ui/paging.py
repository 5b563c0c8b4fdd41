"""Server-side paging for list pages: a state mixin (each page gets its own copy of the vars)."""

from __future__ import annotations

import reflex as rx

PAGE_SIZE = 20


class PagedMixin(rx.State, mixin=True):
    page: int = 1
    total: int = 0

    @rx.var
    def pages(self) -> int:
        return max(1, (self.total + PAGE_SIZE - 1) // PAGE_SIZE)

    def _offset(self) -> int:
        return (self.page - 1) * PAGE_SIZE

    async def _reload(self):  # implemented by each page state
        raise NotImplementedError

    @rx.event
    async def next_page(self):
        if self.page < self.pages:
            self.page += 1
        return await self._reload()

    @rx.event
    async def prev_page(self):
        if self.page > 1:
            self.page -= 1
        return await self._reload()

    @rx.event
    async def search(self):
        self.page = 1
        return await self._reload()
