"""Draw the dashboard's favicon (assets/favicon.svg and assets/favicon.ico): the sidebar's gem,
white on the accent blue. Run ``python scripts/make_favicon.py`` after changing it."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

ASSETS = Path(__file__).resolve().parent.parent / "assets"
BLUE = "#0d74ce"  # Radix blue 11 (the sidebar's accent, dark enough for white on top)
# lucide "gem" on a 24-unit grid, drawn inside a 32-unit tile with a 4-unit margin
OUTLINE = [(6, 3), (18, 3), (22, 9), (12, 22), (2, 9)]
FACETS = [[(2, 9), (22, 9)], [(11, 3), (8, 9), (12, 22), (16, 9), (13, 3)]]

SVG = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">
  <rect width="32" height="32" rx="7" fill="{blue}"/>
  <g transform="translate(4 4.5)" fill="none" stroke="#fff" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
    <path d="M6 3h12l4 6-10 13L2 9Z"/><path d="M11 3 8 9l4 13 4-13-3-6"/><path d="M2 9h20"/>
  </g>
</svg>
"""


def _png(size: int) -> Image.Image:
    scale = 8  # draw large, then shrink: smooth edges
    big = size * scale
    unit = big / 32
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((0, 0, big - 1, big - 1), radius=int(7 * unit), fill=BLUE)

    def pt(p: tuple[float, float]) -> tuple[float, float]:
        return ((p[0] + 4) * unit, (p[1] + 4.5) * unit)

    width = max(1, int(2.2 * unit))
    d.line([pt(p) for p in OUTLINE + OUTLINE[:2]], fill="white", width=width, joint="curve")
    for facet in FACETS:
        d.line([pt(p) for p in facet], fill="white", width=width, joint="curve")
    return img.resize((size, size), Image.LANCZOS)


def main() -> None:
    ASSETS.mkdir(exist_ok=True)
    (ASSETS / "favicon.svg").write_text(SVG.format(blue=BLUE))
    _png(64).save(ASSETS / "favicon.ico", sizes=[(16, 16), (32, 32), (48, 48), (64, 64)])
    _png(180).save(ASSETS / "apple-touch-icon.png")


if __name__ == "__main__":
    main()
