"""Schema comes only from Alembic, and the models do not drift from the migrations."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from gc_admin.audit.service import Actor, record
from gc_admin.db import get_engine, session_scope
from gc_admin.models import metadata
from tests.support import include_name


def _diff(url: str) -> list:
    engine = get_engine(url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True,
                                                     "include_name": include_name})
        return compare_metadata(ctx, metadata)


def test_models_match_migrations(any_db):
    assert _diff(any_db) == []


def test_every_model_table_is_created_by_migrations(any_db):
    names = set(sa.inspect(get_engine(any_db)).get_table_names())
    assert set(metadata.tables) <= names
    assert "alembic_version" in names


def test_every_table_is_declared_in_a_models_module():
    """DESIGN.md §2: a feature's tables all live in its ``models.py`` (none hides in a service module)."""
    from sqlmodel import SQLModel

    def tables(cls: type) -> list[type]:
        out = []
        for sub in cls.__subclasses__():
            if getattr(sub, "__table__", None) is not None and sub.__table__.name in metadata.tables:
                out.append(sub)
            out.extend(tables(sub))
        return out

    found = {c.__table__.name: c.__module__ for c in tables(SQLModel)}
    assert set(found) == set(metadata.tables)
    assert {name: module for name, module in found.items() if not module.endswith(".models")} == {}


def test_audit_log_is_append_only(any_db):
    with session_scope() as s:
        row = record(s, actor=Actor("system", None, "测试"), action="test.action", summary="一条")
        row_id = row.id
    with pytest.raises(Exception, match="append-only"):
        with session_scope() as s:
            s.execute(sa.text("UPDATE audit_log SET summary = 'changed' WHERE id = :i"), {"i": row_id})
    with pytest.raises(Exception, match="append-only"):
        with session_scope() as s:
            s.execute(sa.text("DELETE FROM audit_log WHERE id = :i"), {"i": row_id})
    with session_scope() as s:
        assert s.execute(sa.text("SELECT summary FROM audit_log WHERE id = :i"), {"i": row_id}).scalar() == "一条"


def test_downgrade_then_upgrade_round_trips(tmp_path):
    from alembic import command
    from alembic.config import Config

    from gc_admin.config import PROJECT_ROOT

    url = f"sqlite:///{tmp_path / 'rt.db'}"
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.attributes["configure_logger"] = False
    cfg.attributes["url"] = url
    command.upgrade(cfg, "head")
    command.downgrade(cfg, "base")
    eng = sa.create_engine(url)
    assert set(sa.inspect(eng).get_table_names()) <= {"alembic_version"}
    command.upgrade(cfg, "head")
    assert set(metadata.tables) <= set(sa.inspect(eng).get_table_names())
    eng.dispose()
