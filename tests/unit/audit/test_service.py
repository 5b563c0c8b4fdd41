import datetime as dt
import re

from gc_admin.audit import service as audit
from gc_admin.audit.service import Actor, list_audit, record
from gc_admin.core.clock import utcnow
from gc_admin.db import session_scope


def test_filters_and_paging(any_db):
    alice = Actor("staff", "1", "陈静", "10.0.0.1")
    bob = Actor("staff", "2", "李强")
    with session_scope() as s:
        for i in range(30):
            record(s, actor=alice if i % 2 else bob, action="staff.login" if i % 3 else "staff.role_changed",
                   target_type="staff", target_id=i % 5, summary=f"第{i}条")
    with session_scope() as s:
        everything = list_audit(s, limit=10)
        assert everything.total == 30 and len(everything.rows) == 10
        assert everything.rows[0].summary == "第29条"  # newest first
        assert list_audit(s, action="staff.role").total == 10
        assert list_audit(s, actor="陈静").total == 15
        assert list_audit(s, actor="2").total == 15
        assert list_audit(s, target="3").total == 6
        assert list_audit(s, since=utcnow() + dt.timedelta(minutes=1)).total == 0
        assert list_audit(s, until=utcnow() - dt.timedelta(days=1)).total == 0
        last = list_audit(s, offset=25, limit=10)
        assert [r.summary for r in last.rows] == [f"第{i}条" for i in range(4, -1, -1)]


def test_every_audit_target_type_in_the_code_has_a_label():
    import pathlib

    root = pathlib.Path(audit.__file__).resolve().parents[1]
    used = {m for p in root.rglob("*.py") for m in re.findall(r'target_type="([a-z_]+)"', p.read_text())}
    assert used and used <= set(audit.TARGET_TYPES), used - set(audit.TARGET_TYPES)
    assert audit.target_label(None, None) == "—" and audit.target_label("thing", "3") == "thing #3"
