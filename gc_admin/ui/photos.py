"""The photo upload dialog of the catalogue pages (鲜花管理, 商品管理): a drop zone taking one JPG / PNG / WebP,
the refusal in Chinese, 取消 / 上传. The checks themselves are on the server (:mod:`gc_admin.core.photos`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import reflex as rx
from sqlmodel import Session

from gc_admin.core.errors import DomainError
from gc_admin.core.photos import read_photo
from gc_admin.core.uploads import limits
from gc_admin.ui.auth import guarded, public, run_db
from gc_admin.ui.components import dialog, form_actions
from gc_admin.ui.paging import CreateMixin

T = TypeVar("T")

IMAGE_ACCEPT = {"image/jpeg": [".jpg", ".jpeg"], "image/png": [".png"], "image/webp": [".webp"]}


def photo_dialog(title: Any, *, upload_id: str, open: Any, on_open_change: Any, on_upload: Any, uploading: Any,
                 error: rx.Component, testid: str) -> rx.Component:
    """``on_upload``: the state's upload handler (called with the selected file); ``testid``: the prefix of
    the drop zone's (``<testid>-upload``) and the button's (``<testid>-upload-start``) test ids."""
    max_mb = limits().image_max_bytes // 1024 // 1024
    return dialog(
        title,
        rx.vstack(
            rx.upload.root(
                rx.vstack(
                    rx.icon("image-up", size=28, color=rx.color("accent", 9)),
                    rx.text("拖拽照片到此处，或点击选择照片", weight="medium"),
                    rx.text(f"JPG、PNG 或 WebP，最大 {max_mb} MB；过大的照片会自动缩小到 1600 像素以内", size="1",
                            color_scheme="gray"),
                    rx.foreach(rx.selected_files(upload_id), lambda f: rx.badge(rx.icon("file", size=12), f,
                                                                                 variant="surface")),
                    align="center", spacing="2"),
                id=upload_id, multiple=False, max_files=1, accept=IMAGE_ACCEPT,
                border=f"1px dashed {rx.color('accent', 7)}", border_radius="var(--radius-3)", padding="1.5rem",
                width="100%", cursor="pointer", data_testid=f"{testid}-upload"),
            error,
            rx.hstack(
                rx.dialog.close(rx.button("取消", variant="soft", color_scheme="gray", type="button")),
                rx.button(rx.icon("upload", size=14), "上传", loading=uploading,
                          disabled=rx.selected_files(upload_id).length() == 0,
                          on_click=on_upload(rx.upload_files(upload_id=upload_id)),
                          data_testid=f"{testid}-upload-start"),
                justify="end", spacing="3", width="100%"),
            spacing="3", padding_top="0.75rem"),
        open=open, on_open_change=on_open_change,
        description="照片按内容检查格式、大小与像素；只保存重新编码后的图片。",
    )


def thumb(url: Any, alt: Any, testid: str) -> rx.Component:
    """A 56 px square photo, or a grey placeholder when ``url`` is empty."""
    return rx.cond(
        url != "",
        rx.image(src=url, width="56px", height="56px", object_fit="cover", border_radius="var(--radius-2)", alt=alt,
                 data_testid=testid),
        rx.center(rx.icon("image-off", size=18, color=rx.color("gray", 8)), width="56px", height="56px",
                  background=rx.color("gray", 3), border_radius="var(--radius-2)"),
    )


ACTIVE_FILTERS = {"all": None, "active": True, "inactive": False}  # 全部 / 上架 / 下架


class CatalogueMixin(CreateMixin, mixin=True):
    """A catalogue page's filters (上架 / 下架, a name or code search) and dialogs (鲜花管理, 商品管理): 新建
    (from :class:`CreateMixin`), 编辑 one row (``edit_code``: the row's code, ``edit``: its strings) and 上传照片
    (``photo_code``), with their handlers. The page state (a :class:`~gc_admin.ui.paging.PagedMixin`) implements
    ``_reload`` and calls :meth:`_submit` / :meth:`_upload` from its guarded handlers."""

    active_filter: str = "all"
    q: str = ""
    edit_code: str = ""
    edit: dict[str, str] = {}
    photo_code: str = ""
    uploading: bool = False

    def _active(self) -> bool | None:
        return ACTIVE_FILTERS.get(self.active_filter)

    @rx.event
    @guarded()  # the page state's SECTION
    async def set_active_filter(self, value: str):
        self.active_filter = value if value in ACTIVE_FILTERS else "all"
        self.page = 1  # type: ignore[attr-defined]
        await self._reload()  # type: ignore[attr-defined]

    @rx.event
    @public
    def set_q(self, value: str):
        self.q = str(value)[:32]

    @rx.event
    @public
    def open_edit(self, code: str):
        row = next((r for r in self.rows if r["code"] == code), None)  # type: ignore[attr-defined]
        self.edit_code, self.edit, self.form_error = (code, dict(row), "") if row else ("", {}, "")

    @rx.event
    @public
    def close_edit(self, value: bool):
        if not value:
            self.edit_code, self.edit, self.form_error = "", {}, ""

    @rx.event
    @public
    def open_photo(self, code: str):
        self.photo_code, self.form_error = str(code)[:32], ""

    @rx.event
    @public
    def close_photo(self, value: bool):
        if not value:
            self.photo_code, self.form_error = "", ""

    async def _submit(self, work: Callable[[Session], T], done: Callable[[T], str]) -> Any:
        """A dialog's save: ``work`` in one unit of work (a ``ValueError`` or refusal stays in the dialog as
        ``form_error``), then the rows again and ``done(result)`` as a toast; the caller closes its dialog
        when this returns something."""
        try:
            result = await run_db(work)
        except (ValueError, DomainError) as exc:
            self.form_error = exc.message if isinstance(exc, DomainError) else str(exc)
            return None
        self.form_error = ""
        await self._reload()  # type: ignore[attr-defined]
        return rx.toast.success(done(result))

    async def _upload(self, files: list[rx.UploadFile], upload_id: str, store: Callable[[Session, bytes], T],
                      done: Callable[[T], str]) -> Any:
        """The photo dialog's upload: read the picture (size-capped), ``store(session, data)`` (the service's
        checks; a refusal stays in the dialog), close the dialog, reload, toast ``done(result)``."""
        if not files or not self.photo_code:
            self.form_error = "请选择一张照片"
            return None
        self.uploading = True
        try:
            data = await read_photo(files[0])
            result = await run_db(lambda s: store(s, data))
        except DomainError as exc:
            self.form_error, self.uploading = exc.message, False
            return rx.clear_selected_files(upload_id)
        self.photo_code, self.form_error, self.uploading = "", "", False
        await self._reload()  # type: ignore[attr-defined]
        return [rx.clear_selected_files(upload_id), rx.toast.success(done(result))]


def labelled(label: str, control: rx.Component, hint: str = "") -> rx.Component:
    """A form field of a catalogue dialog: its label, the control, an optional grey hint."""
    return rx.vstack(rx.text(label, size="2", weight="medium"), control,
                     *([rx.text(hint, size="1", color_scheme="gray")] if hint else []), spacing="1", width="100%")


def form_error(message: Any, testid: str) -> rx.Component:
    """A dialog's inline refusal (red), shown while ``message`` is not empty."""
    return rx.cond(message != "", rx.callout(message, icon="triangle-alert", color_scheme="red", size="1", width="100%",
                                             data_testid=testid))


def catalogue_form_dialog(title: Any, *fields: rx.Component, error: rx.Component, submit: str, testid: str,
                          on_submit: Any, open: Any, on_open_change: Any, description: Any, key: Any = None,
                          trigger: rx.Component | None = None) -> rx.Component:
    """A catalogue's 新建 / 编辑 dialog: the fields, the inline refusal and the submit button (``testid``)."""
    return dialog(
        title,
        rx.form(rx.vstack(*fields, error, form_actions(rx.button(submit, type="submit", data_testid=testid)),
                          spacing="3", padding_top="0.75rem", **({"key": key} if key is not None else {})),
                on_submit=on_submit, reset_on_submit=False),
        open=open, on_open_change=on_open_change, description=description,
        **({"trigger": trigger} if trigger is not None else {}),
    )


def row_controls(state: Any, row: Any, *, on: Any, on_toggle: Any, testid: str,
                 switch: str) -> tuple[rx.Component, rx.Component]:
    """A catalogue row's last two cells: the 上架 switch (a badge for who may not edit) and 编辑 / 上传照片.
    ``on``: the row's 上架 flag (``"1"``); ``on_toggle(code, value)``: the state's switch handler; test ids
    ``<testid>-edit-<code>``, ``<testid>-photo-<code>`` and ``<switch>-<code>``."""
    switch, edit, photo = f"{switch}-", f"{testid}-edit-", f"{testid}-photo-"
    return (
        rx.table.cell(rx.cond(
            state.can_edit,
            rx.switch(checked=on == "1", on_change=lambda v: on_toggle(row["code"], v), size="1",
                      data_testid=switch + row["code"]),
            rx.cond(on == "1", rx.badge("上架", color_scheme="green"), rx.badge("下架", color_scheme="gray")),
        ), text_align="center"),
        rx.table.cell(rx.cond(state.can_edit, rx.hstack(
            rx.button("编辑", size="1", variant="soft", on_click=state.open_edit(row["code"]), data_testid=edit + row["code"]),
            rx.button("上传照片", size="1", variant="soft", on_click=state.open_photo(row["code"]),
                      data_testid=photo + row["code"]),
            spacing="2", justify="end")), text_align="right"),
    )
