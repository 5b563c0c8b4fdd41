"""``GET /admin/exports/{export_id}`` (how an export stands) and ``GET /admin/exports/{export_id}/file`` (its bytes,
once): what a ``202 {export_id, status}`` of an export route (``GET /admin/ledger.xlsx``) is followed with.

Only the staff member who asked for an export sees it: anyone else's id, like an id that is not one, answers the
same 404 ``EXPORT_NOT_FOUND`` (any signed-in staff role may call the routes; a role that may no longer use the
export's section gets the same 404). The file is handed over once and dropped (a second download: 410
``EXPORT_GONE``); before it is built: 409 ``EXPORT_NOT_READY``; a failed export: its refusal (``EXPORT_ERROR``, 500,
for our fault).
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel

from gc_admin.accounts.deps import require_staff
from gc_admin.core import export_jobs
from gc_admin.core.clock import iso
from gc_admin.core.errors import NotFound
from gc_admin.core.exports import XLSX_MIME
from gc_admin.core.models import ExportJob
from gc_admin.core.params import Id
from gc_admin.core.principal import Principal
from gc_admin.core.roles import may
from gc_admin.db import session_scope

router = APIRouter(prefix="/admin/exports", tags=["admin: exports"])


class ExportOut(BaseModel):
    export_id: int
    kind: str
    title: str
    status: str  # queued | running | done | failed
    rows: int
    filename: str
    downloaded: bool  # the file was handed over (or dropped after an hour): export again for a new one
    error: str | None = None
    error_code: str | None = None
    created_at: str
    finished_at: str | None = None

    @classmethod
    def of(cls, rec: ExportJob) -> ExportOut:
        spec = export_jobs.KINDS.get(rec.kind)
        return cls(export_id=rec.id or 0, kind=rec.kind, title=spec.title if spec else rec.kind, status=rec.status,
                   rows=rec.rows, filename=rec.filename, downloaded=rec.downloaded_at is not None, error=rec.error,
                   error_code=rec.error_code, created_at=iso(rec.created_at),
                   finished_at=iso(rec.finished_at) if rec.finished_at else None)


def _mine(rec: ExportJob, p: Principal) -> ExportJob:
    spec = export_jobs.KINDS.get(rec.kind)
    if spec is None or not may(p.role, spec.section):
        raise NotFound("导出记录不存在", code="EXPORT_NOT_FOUND")
    return rec


@router.get("/{export_id}", response_model=ExportOut, summary="导出任务的状态（仅本人发起的导出）")
def get_export(export_id: Id, p: Principal = Depends(require_staff("home"))):
    with session_scope() as s:
        rec = _mine(export_jobs.get_export(s, export_id=export_id, user_id=p.id), p)
    return ExportOut.of(rec)


@router.get("/{export_id}/file", summary="下载导出文件（仅本人；生成后可下载一次）", response_class=Response,
            responses={200: {"content": {XLSX_MIME: {}}}})
def get_export_file(export_id: Id, p: Principal = Depends(require_staff("home"))):
    with session_scope() as s:
        _mine(export_jobs.get_export(s, export_id=export_id, user_id=p.id), p)
    rec, data = export_jobs.download(export_id, principal=p)
    name = rec.filename or f"export-{export_id}.xlsx"
    return Response(data, media_type=XLSX_MIME, headers={
        "Content-Disposition": f"attachment; filename=\"export-{export_id}.xlsx\"; filename*=UTF-8''{quote(name)}"})
