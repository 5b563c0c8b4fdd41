"""The 工作台 (home) page's Reflex handler: each role sees only its sections' figures.

States are built with ``tests.support.state_of`` (a real staff session's token where the cookie would put it).
"""

from __future__ import annotations

from gc_admin.home.state import HomeState
from tests.support import run, sign_in, state_of


def test_home_shows_each_role_only_its_sections_figures(team, make_staff):
    """The 工作台 numbers follow the role (gc_admin.home.service): the service role sees the users it
    serves but not the staff count; an admin sees both; an insurer without a programme sees none."""
    make_staff("picc", "insurer")

    async def scenario(username):
        home = await state_of(HomeState, sign_in(username))
        return await home.load(), list(home.shown), dict(home.values), home.note

    out, shown, values, note = run(scenario("target"))  # service role
    assert out is None and shown == ["users", "orders"] and values == {"users": "2", "orders": "0"} and note == ""
    _, shown, values, _ = run(scenario("boss"))
    assert shown == ["users", "staff", "audit", "sms", "issued", "orders"] and values["staff"] == "5"
    _, shown, values, note = run(scenario("picc"))
    assert shown == [] and values == {} and "尚未关联保险项目" in note
