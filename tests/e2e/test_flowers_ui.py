"""鲜花管理 in a real browser against the app started as the README starts it: the manager sees the demo
bouquets with their photos (served by the API, decoded by the browser), creates a bouquet, uploads its
photo through the page's upload (checked by content on the server), puts it on the menu, and the
mini-program's catalogue lists it with its photo and the "style may differ" notice. Screenshots go to
test-artifacts/."""

from __future__ import annotations

import io
import secrets

import httpx
from PIL import Image
from playwright.sync_api import expect

from tests.e2e.conftest import login, save_artifact


def _mp_user(c: httpx.Client) -> dict[str, str]:
    phone = "199" + f"{secrets.randbelow(10**8):08d}"
    minted = c.post("/sim/wechat/_mint", json={"openid": f"e2e-{secrets.token_hex(8)}", "phone": phone}).json()
    grant = c.post("/api/v1/mp/auth/wechat", json={"code": minted["code"]})
    auth = {"Authorization": f"Bearer {grant.json()['token']}"}
    c.post("/api/v1/mp/auth/wechat/phone", json={"phone_code": minted["phone_code"]}, headers=auth)
    return auth


def upload_photo_then_a_fake(page, tmp_path, row, prefix: str, code: str, size: tuple[int, int]) -> None:
    """Upload a picture through a catalogue page's photo dialog (the row's thumbnail then shows it, decoded by
    the browser), then a file that is not a picture: refused with the reason, and nothing changes."""
    photo = tmp_path / f"{code}.png"
    Image.new("RGB", size, (240, 150, 180)).save(photo)
    for path in (photo, tmp_path / "fake.png"):
        if path.name == "fake.png":
            path.write_bytes(b"<html>not a picture</html>")
        page.get_by_test_id(f"{prefix}-photo-{code}").click()
        page.get_by_test_id(f"{prefix}-upload").locator("input[type=file]").set_input_files(str(path))
        page.get_by_test_id(f"{prefix}-upload-start").click()
        if path == photo:
            thumb = row.get_by_test_id(f"{prefix}-thumb")
            expect(thumb).to_be_visible()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    expect(page.get_by_test_id(f"{prefix}-form-error")).to_contain_text("图片")
    page.keyboard.press("Escape")


def test_manager_adds_a_bouquet_with_a_photo_and_the_mini_program_lists_it(page, app_server, tmp_path):
    login(page, app_server, "manager", "manager2026")
    expect(page.get_by_test_id("sidebar")).to_be_visible()
    page.get_by_test_id("nav-flowers").click()
    table = page.get_by_test_id("bouquet-table")
    expect(table.get_by_test_id("bouquet-row")).to_have_count(7)  # the demo menu
    expect(page.get_by_test_id("bouquet-note")).to_contain_text("可能与图片略有不同")
    first = table.get_by_test_id("bouquet-thumb").first
    expect(first).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=first.element_handle())

    page.get_by_test_id("bouquet-new").click()
    page.get_by_test_id("bouquet-code").fill("Peony-5")
    page.get_by_test_id("bouquet-name").fill("芍药 5 枝")
    page.get_by_test_id("bouquet-price-input").fill("138")
    page.get_by_test_id("bouquet-create").click()
    row = table.get_by_test_id("bouquet-row").filter(has_text="Peony-5")
    expect(row).to_contain_text("¥138.00")
    expect(row).to_contain_text("未上传照片")

    upload_photo_then_a_fake(page, tmp_path, row, "bouquet", "Peony-5", (900, 700))
    expect(row).to_contain_text("900×700")

    page.get_by_test_id("bouquet-active-Peony-5").click()
    expect(page.get_by_text("芍药 5 枝 已上架")).to_be_visible()
    save_artifact(page, "flowers-catalogue.png")

    with httpx.Client(base_url=app_server.base_url, timeout=30) as c:
        me = _mp_user(c)
        catalog = c.get("/api/v1/mp/catalog", headers=me).json()
        peony = next(b for b in catalog["bouquets"] if b["code"] == "Peony-5")
        assert peony["price_fen"] == 13_800 and "可能与图片略有不同" in peony["note"]
        picture = c.get(peony["image_url"])
        assert picture.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(picture.content)).size == (900, 700)
        assert len(catalog["flower_cities"]) == 14
