"""Importing a codes file, as the admin API and the 券库存 page both do: two units of work.

The import runs in one (:func:`service.import_codes`). When the file as a whole is refused, that unit
rolls back like any error — nothing of the file may stay — and the refusal goes on record in a second
one (:func:`service.record_failed_import`: the failed import in the history, with its reason, and an
audit row). The refusal is then raised again with that import's id (``details.import_id``), so the
caller can show or link the failed report.
"""

from __future__ import annotations

import datetime as dt

from gc_admin.core.principal import Actor
from gc_admin.coupons.stock import service
from gc_admin.db import session_scope


def import_file(*, actor: Actor, product_code: str, data: bytes, filename: str = "",
                expires_at: dt.date | dt.datetime | None = None, batch_ref: str | None = None,
                now: dt.datetime | None = None) -> service.ImportReport:
    """Import ``data`` (CSV / XLSX of codes) for a code product; returns the report, or raises the
    refusal (:class:`service.CodesFileRefused` with ``details.import_id``) once it is on record."""
    try:
        with session_scope() as session:
            return service.import_codes(session, actor=actor, product_code=product_code, data=data,
                                        filename=filename, expires_at=expires_at, batch_ref=batch_ref, now=now)
    except service.CodesFileRefused as refused:
        with session_scope() as session:
            import_id = service.record_failed_import(session, actor=actor, product_code=product_code,
                                                     reason=refused.message, filename=filename, batch_ref=batch_ref,
                                                     now=now)
        raise service.CodesFileRefused(refused.message, code=refused.code, details={"import_id": import_id}) from None
