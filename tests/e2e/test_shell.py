"""The staff dashboard as people use it: sign-in per role, what each role sees, refusals."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from gc_admin.core.roles import sections_for
from gc_admin.demo import DEMO_STAFF
from tests.e2e.conftest import login, save_artifact


@pytest.mark.parametrize("username, name, role, password", DEMO_STAFF, ids=[s[0] for s in DEMO_STAFF])
def test_each_role_sees_exactly_its_sections(page, app_server, username, name, role, password):
    login(page, app_server, username, password)
    expect(page.get_by_test_id("sidebar")).to_be_visible()
    expect(page.get_by_test_id("whoami")).to_have_text(name)
    nav = page.locator("[data-testid^='nav-']")
    expect(nav).to_have_count(len(sections_for(role)))
    shown = {t.removeprefix("nav-") for t in nav.evaluate_all("els => els.map(e => e.dataset.testid)")}
    assert shown == {s.key for s in sections_for(role)}
    if "users" in shown:  # the 工作台 shows only the figures of the role's sections
        expect(page.get_by_test_id("stat-users")).not_to_have_text("0")
    else:
        expect(page.get_by_test_id("greeting")).to_be_visible()
        expect(page.get_by_test_id("stat-users")).to_have_count(0)


def test_wrong_password_shows_chinese_error(page, app_server):
    login(page, app_server, "clerk", "not-the-password")
    expect(page.get_by_test_id("login-error")).to_contain_text("用户名或密码错误")
    expect(page.get_by_test_id("sidebar")).to_have_count(0)


def test_clerk_cannot_open_staff_management_by_url(page, app_server):
    login(page, app_server, "clerk", "clerk2026")
    expect(page.get_by_test_id("sidebar")).to_be_visible()
    page.goto(app_server.url("/staff/"))
    expect(page.get_by_test_id("forbidden")).to_be_visible()
    expect(page.get_by_test_id("forbidden")).to_contain_text("无权访问")
    expect(page.get_by_test_id("staff-table")).to_have_count(0)
    expect(page.locator("text=admin2026")).to_have_count(0)


def test_signed_out_visitor_is_sent_to_login(page, app_server):
    page.goto(app_server.url("/audit/"))
    expect(page).to_have_url(re.compile(r"/login/?\?next=(%2F|/)audit"))
    expect(page.get_by_test_id("login-username")).to_be_visible()


def test_admin_creates_staff_and_it_is_audited(page, app_server):
    login(page, app_server, "admin", "admin2026")
    expect(page.get_by_test_id("sidebar")).to_be_visible()
    save_artifact(page, "dashboard-admin.png")
    page.get_by_test_id("nav-staff").click()
    expect(page.get_by_test_id("staff-table")).to_be_visible()
    page.get_by_test_id("staff-new").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_placeholder("用户名（小写字母开头，3–32 位）").fill("newclerk")
    dialog.get_by_placeholder("姓名").fill("孙悦")
    dialog.get_by_role("combobox").click()
    page.get_by_role("option", name="内勤").click()
    dialog.get_by_placeholder("初始密码（至少 8 位，含字母和数字）").fill("short")
    dialog.get_by_role("button", name="创建").click()
    expect(dialog).to_contain_text("密码至少 8 位")
    dialog.get_by_placeholder("初始密码（至少 8 位，含字母和数字）").fill("newclerk2026")
    dialog.get_by_role("button", name="创建").click()
    expect(page.get_by_text("已创建员工 newclerk")).to_be_visible()
    expect(page.get_by_test_id("staff-row").filter(has_text="newclerk")).to_have_count(1)
    page.get_by_test_id("nav-audit").click()
    expect(page.get_by_test_id("audit-row").filter(has_text="创建员工").first).to_be_visible()
    expect(page.get_by_test_id("audit-row").filter(has_text="newclerk").first).to_be_visible()
    # the new account signs in and sees the clerk's sections
    page.get_by_test_id("logout").click()
    expect(page.get_by_test_id("login-username")).to_be_visible()
    login(page, app_server, "newclerk", "newclerk2026")
    expect(page.get_by_test_id("role-badge")).to_have_text("内勤")
    expect(page.get_by_test_id("nav-staff")).to_have_count(0)
