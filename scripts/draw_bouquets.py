"""Draw the demo bouquets' pictures with Pillow (no downloads): ``assets/bouquets/<code>.png``.

    .venv/bin/python scripts/draw_bouquets.py

Deterministic (seeded), so re-running it reproduces the committed files. The demo loader
(:mod:`gc_admin.orders.flowers.demo`) uploads these through the same photo checks a clerk's upload passes.
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "assets" / "bouquets"
SIZE = 640

# code -> (flower kind, bloom colours, wrapping paper, ribbon, background, how many blooms)
BOUQUETS: dict[str, tuple[str, list[tuple[int, int, int]], tuple[int, int, int], tuple[int, int, int],
                          tuple[int, int, int], int]] = {
    "rose-11": ("rose", [(196, 20, 45), (170, 12, 36), (215, 40, 60)], (40, 40, 46), (196, 160, 90), (250, 240, 236), 11),
    "rose-19-pink": ("rose", [(240, 130, 160), (228, 100, 140), (250, 170, 190)], (250, 250, 250), (236, 120, 150),
                     (252, 244, 246), 19),
    "champagne-rose": ("rose", [(240, 210, 170), (232, 196, 150), (248, 226, 196)], (120, 100, 84), (250, 244, 230),
                       (246, 242, 236), 13),
    "lily-6": ("lily", [(252, 252, 248), (246, 240, 236)], (150, 190, 160), (255, 255, 255), (236, 244, 238), 6),
    "sunflower-3": ("sunflower", [(250, 196, 20), (244, 176, 10)], (176, 140, 100), (90, 140, 70), (244, 248, 236), 3),
    "carnation-mix": ("carnation", [(236, 90, 120), (250, 160, 180), (210, 40, 70), (255, 210, 220)], (250, 236, 210),
                      (210, 40, 70), (252, 246, 240), 12),
    "tulip-10": ("tulip", [(150, 80, 170), (240, 120, 60), (250, 200, 60)], (230, 230, 240), (150, 80, 170),
                 (244, 242, 250), 10),
}


def _shade(c: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    return tuple(max(0, min(255, int(v * f))) for v in c)  # type: ignore[return-value]


def _background(bg: tuple[int, int, int]) -> Image.Image:
    img = Image.new("RGB", (SIZE, SIZE), bg)
    d = ImageDraw.Draw(img)
    for y in range(SIZE):  # a soft vertical gradient
        d.line([(0, y), (SIZE, y)], fill=_shade(bg, 1.0 - 0.08 * y / SIZE))
    return img


def _radius(n: int) -> int:
    return 78 if n <= 3 else 66 if n <= 6 else 56 if n <= 13 else 48


def _blooms(rng: random.Random, n: int) -> list[tuple[int, int]]:
    """Bloom centres packed in a dome above the wrapping."""
    cx, cy = SIZE // 2, int(SIZE * 0.38)
    spots = [(cx, cy)]
    ring, k = 1, 1
    while len(spots) < n:
        count = 6 * ring
        radius = int(1.55 * _radius(n) * ring)
        for i in range(count):
            if len(spots) >= n:
                break
            a = 2 * math.pi * (i + 0.5 * ring) / count + rng.uniform(-0.08, 0.08)
            spots.append((int(cx + radius * math.cos(a)), int(cy + 0.72 * radius * math.sin(a))))
            k += 1
        ring += 1
    return spots


def _rose(d: ImageDraw.ImageDraw, x: int, y: int, r: int, c: tuple[int, int, int], rng: random.Random) -> None:
    d.ellipse([x - r, y - r, x + r, y + r], fill=_shade(c, 0.82))
    for i in range(5, 0, -1):  # spiralling petals, darker inside
        rr = r * i / 5.6
        off = rng.uniform(-2, 2)
        d.ellipse([x - rr + off, y - rr * 0.92, x + rr + off, y + rr * 0.92], fill=_shade(c, 0.7 + 0.07 * i),
                  outline=_shade(c, 0.55))
    d.arc([x - r * 0.4, y - r * 0.4, x + r * 0.4, y + r * 0.4], 200, 520, fill=_shade(c, 0.45), width=2)


def _carnation(d: ImageDraw.ImageDraw, x: int, y: int, r: int, c: tuple[int, int, int], rng: random.Random) -> None:
    for i in range(28):  # ruffled edge: many small overlapping petals
        a = 2 * math.pi * i / 28
        px, py = x + r * 0.62 * math.cos(a), y + r * 0.62 * math.sin(a)
        pr = r * rng.uniform(0.38, 0.5)
        d.ellipse([px - pr, py - pr, px + pr, py + pr], fill=_shade(c, rng.uniform(0.85, 1.05)), outline=_shade(c, 0.7))
    d.ellipse([x - r * 0.45, y - r * 0.45, x + r * 0.45, y + r * 0.45], fill=_shade(c, 0.8))


def _lily(d: ImageDraw.ImageDraw, x: int, y: int, r: int, c: tuple[int, int, int], rng: random.Random) -> None:
    rot = rng.uniform(0, math.pi)
    for i in range(6):  # six pointed petals
        a = rot + math.pi * i / 3
        tip = (x + 1.35 * r * math.cos(a), y + 1.35 * r * math.sin(a))
        left = (x + 0.45 * r * math.cos(a - 0.55), y + 0.45 * r * math.sin(a - 0.55))
        right = (x + 0.45 * r * math.cos(a + 0.55), y + 0.45 * r * math.sin(a + 0.55))
        d.polygon([(x, y), left, tip, right], fill=c, outline=(220, 200, 200))
        d.line([(x, y), tip], fill=(236, 170, 180), width=2)
    for i in range(6):  # stamens
        a = rot + math.pi * i / 3 + 0.5
        sx, sy = x + 0.55 * r * math.cos(a), y + 0.55 * r * math.sin(a)
        d.line([(x, y), (sx, sy)], fill=(160, 190, 120), width=2)
        d.ellipse([sx - 4, sy - 3, sx + 4, sy + 3], fill=(170, 80, 40))


def _sunflower(d: ImageDraw.ImageDraw, x: int, y: int, r: int, c: tuple[int, int, int], rng: random.Random) -> None:
    for i in range(22):
        a = 2 * math.pi * i / 22
        tip = (x + 1.25 * r * math.cos(a), y + 1.25 * r * math.sin(a))
        left = (x + 0.55 * r * math.cos(a - 0.16), y + 0.55 * r * math.sin(a - 0.16))
        right = (x + 0.55 * r * math.cos(a + 0.16), y + 0.55 * r * math.sin(a + 0.16))
        d.polygon([left, tip, right], fill=_shade(c, rng.uniform(0.9, 1.05)))
    d.ellipse([x - r * 0.6, y - r * 0.6, x + r * 0.6, y + r * 0.6], fill=(96, 60, 30))
    for _ in range(60):  # seeds
        a, rr = rng.uniform(0, 2 * math.pi), rng.uniform(0, r * 0.55)
        sx, sy = x + rr * math.cos(a), y + rr * math.sin(a)
        d.ellipse([sx - 2, sy - 2, sx + 2, sy + 2], fill=(60, 36, 18))


def _tulip(d: ImageDraw.ImageDraw, x: int, y: int, r: int, c: tuple[int, int, int], rng: random.Random) -> None:
    w, h = r * 0.9, r * 1.25
    d.ellipse([x - w, y - h * 0.6, x + w, y + h * 0.7], fill=c)
    d.polygon([(x - w, y - h * 0.1), (x - w * 0.55, y - h), (x - w * 0.1, y - h * 0.3)], fill=_shade(c, 1.08))
    d.polygon([(x + w, y - h * 0.1), (x + w * 0.55, y - h), (x + w * 0.1, y - h * 0.3)], fill=_shade(c, 1.08))
    d.polygon([(x - w * 0.35, y - h * 0.3), (x, y - h * 1.05), (x + w * 0.35, y - h * 0.3)], fill=_shade(c, 0.9))


DRAW = {"rose": _rose, "carnation": _carnation, "lily": _lily, "sunflower": _sunflower, "tulip": _tulip}


def draw(code: str) -> Image.Image:
    kind, colours, paper, ribbon, bg, n = BOUQUETS[code]
    rng = random.Random(code)
    img = _background(bg)
    # shadow
    shadow = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(shadow).ellipse([SIZE * 0.25, SIZE * 0.88, SIZE * 0.75, SIZE * 0.95], fill=90)
    img.paste((0, 0, 0), (0, 0), shadow.filter(ImageFilter.GaussianBlur(14)))
    d = ImageDraw.Draw(img)
    cx = SIZE // 2
    spots = _blooms(rng, n)
    # stems and leaves, converging at the binding point
    bind = (cx, int(SIZE * 0.78))
    for sx, sy in spots:
        d.line([(sx, sy), bind], fill=(60, 120, 60), width=5)
    # back of the wrapping paper
    d.polygon([(cx - 250, int(SIZE * 0.2)), (cx + 250, int(SIZE * 0.2)), (cx + 40, int(SIZE * 0.9)),
               (cx - 40, int(SIZE * 0.9))], fill=_shade(paper, 0.82))
    # leaves fanning out behind the blooms
    for i in range(11):
        a = math.pi * (0.08 + 0.84 * i / 10)
        lx, ly = cx - 200 * math.cos(a), int(SIZE * 0.44) - 170 * math.sin(a)
        leaf = [(cx, int(SIZE * 0.5)), (lx - 22 * math.sin(a), ly - 22 * math.cos(a)), (lx, ly),
                (lx + 22 * math.sin(a), ly + 22 * math.cos(a))]
        d.polygon(leaf, fill=(60 + 10 * (i % 3), 130 + 8 * (i % 2), 64))
    # blooms, back ones first
    r = _radius(n)
    for sx, sy in sorted(spots, key=lambda p: p[1]):
        DRAW[kind](d, sx, sy, r, rng.choice(colours), rng)
    # front of the wrapping paper: a cone with folds
    front = [(cx - 200, int(SIZE * 0.6)), (cx + 200, int(SIZE * 0.6)), (cx + 46, int(SIZE * 0.92)),
             (cx - 46, int(SIZE * 0.92))]
    d.polygon(front, fill=paper, outline=_shade(paper, 0.7))
    for i in range(1, 5):
        t = i / 5
        top = (cx - 200 + 400 * t, int(SIZE * 0.6))
        bottom = (cx - 46 + 92 * t, int(SIZE * 0.92))
        d.line([top, bottom], fill=_shade(paper, 0.88), width=2)
    # ribbon and bow
    by = int(SIZE * 0.78)
    d.rectangle([cx - 110, by - 12, cx + 110, by + 12], fill=ribbon)
    d.polygon([(cx, by), (cx - 70, by - 40), (cx - 70, by + 40)], fill=_shade(ribbon, 0.9))
    d.polygon([(cx, by), (cx + 70, by - 40), (cx + 70, by + 40)], fill=_shade(ribbon, 0.9))
    d.polygon([(cx - 8, by), (cx - 40, by + 90), (cx - 18, by + 84)], fill=ribbon)
    d.polygon([(cx + 8, by), (cx + 40, by + 90), (cx + 18, by + 84)], fill=ribbon)
    d.ellipse([cx - 16, by - 16, cx + 16, by + 16], fill=_shade(ribbon, 0.8))
    return img


def main(argv: list[str]) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for code in BOUQUETS:
        path = OUT / f"{code}.png"
        draw(code).quantize(colors=192, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
