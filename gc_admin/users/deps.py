"""FastAPI dependency: the signed-in mini-program user behind a bearer token (every /mp route)."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import Connection
from sqlmodel import Session

from gc_admin.core.errors import Unauthorized
from gc_admin.core.http import bearer
from gc_admin.db import session_scope
from gc_admin.users.models import MpUser
from gc_admin.users.service import TokenHolder, holder_of_token, user_from_token


def signed_in(session: Session, request: Request) -> MpUser:
    """The user behind the request's bearer token, read in the caller's unit of work; 401 without one."""
    user = user_from_token(session, bearer(request))
    if user is None:
        raise Unauthorized("登录已失效，请重新登录", code="UNAUTHORIZED")
    return user


def token_holder(connection: Connection, request: Request) -> TokenHolder:
    """:func:`signed_in` for Core reads on ``connection`` (id and phone only, no ORM row); the same 401."""
    holder = holder_of_token(connection, bearer(request))
    if holder is None:
        raise Unauthorized("登录已失效，请重新登录", code="UNAUTHORIZED")
    return holder


def require_user(request: Request):
    """Dependency: the signed-in mini-program user (a detached row; routes re-load to change it)."""
    with session_scope() as session:
        return signed_in(session, request)
