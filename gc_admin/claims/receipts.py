"""Sample receipt screenshots rendered with Pillow and the WenQuanYi CJK font (Debian
``fonts-wqy-microhei``): WeChat Pay and Alipay 账单详情 screens and a fuel-station slip. For the demo
data, the OCR bench and the tests — never shown to a user as real."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"


def luhn_card(prefix: str = "622202020011223344") -> str:
    from gc_admin.claims.service import luhn_ok

    return next(prefix + str(d) for d in range(10) if luhn_ok(prefix + str(d)))


def wechat_receipt(*, merchant: str = "中国石化南宁民族大道加油站", amount: str = "128.00",
                   paid_at: str = "2026-11-28 10:15:32", txn: str = "4200002345202611281234567890",
                   mch_no: str = "GX20261128101532001", fmt: str = "PNG", size: tuple[int, int] = (720, 900),
                   exif: bytes | None = None, seed_text: str = "") -> bytes:
    """A WeChat Pay 账单详情 screen as a phone screenshot."""
    lines = [(merchant, 30), (f"-{amount}", 56), ("当前状态  支付成功", 28), (f"支付时间  {paid_at}", 28),
             ("商品  加油费", 28), (f"商户全称  {merchant}", 28), ("支付方式  零钱", 28), (f"交易单号  {txn}", 26),
             (f"商户单号  {mch_no}", 26)]
    if seed_text:
        lines.append((seed_text, 26))
    return render(lines, fmt=fmt, size=size, exif=exif)


def alipay_receipt(*, merchant: str = "特来电新能源南宁站", amount: str = "66.50", paid_at: str = "2026-11-27 21:03:11",
                   txn: str = "2026112722001412345678901234", fmt: str = "PNG") -> bytes:
    lines = [(merchant, 30), (f"-{amount}", 56), ("交易成功", 28), (f"支付时间  {paid_at}", 28),
             ("付款方式  余额宝", 28), (f"收款方全称  {merchant}", 28), (f"订单号  {txn}", 26),
             ("商家订单号  TLD7788990011", 26), ("支付宝", 24)]
    return render(lines, fmt=fmt)


def station_slip(*, station: str = "中国石油广西桂林七星加油站", amount: str = "300.00",
                 paid_at: str = "2026/11/26 08:40", serial: str = "SN20261126084000123") -> bytes:
    lines = [(station, 30), ("油品  92#汽油  40.00升", 26), (f"实付金额  {amount}", 30), (f"交易时间  {paid_at}", 26),
             (f"流水号  {serial}", 26), ("谢谢惠顾", 26)]
    return render(lines, size=(640, 640))


def render(lines: list[tuple[str, int]], *, fmt: str = "PNG", size: tuple[int, int] = (720, 900),
           exif: bytes | None = None) -> bytes:
    img = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(img)
    y = 36
    for text, px in lines:
        d.text((40, y), text, fill="black", font=ImageFont.truetype(FONT, px))
        y += px + 48
    out = io.BytesIO()
    kw: dict[str, Any] = {"exif": exif} if exif else {}
    img.save(out, format=fmt, **kw)
    return out.getvalue()


def gps_exif() -> bytes:
    ex = Image.Exif()
    ex[0x010F] = "TestPhoneMaker"  # Make
    ex[0x0132] = "2026:11:28 10:15:32"  # DateTime
    ex[0x8825] = {1: "N", 2: (22.0, 49.0, 0.0)}  # GPS IFD: latitude
    return ex.tobytes()
