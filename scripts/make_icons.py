"""Draws the installable app's PNG icons (the map pin of static/icon.svg) with Pillow.

Run after changing the design: `python scripts/make_icons.py`; the PNGs are committed in
solomo/static/icons/ (small, and the manifest must name files that exist).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "solomo" / "static" / "icons"
ORANGE = (232, 89, 12, 255)
WHITE = (255, 255, 255, 255)
SCALE = 4  # drawn larger, then reduced: smooth edges


def pin(draw: ImageDraw.ImageDraw, cx: float, top: float, size: float, fill: tuple[int, ...],
        hole: tuple[int, ...]) -> None:
    """The pin of icon.svg: a circle of diameter 0.5·size on a point, with a round hole."""
    r = size * 0.25
    cy = top + r
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    # the point: a triangle from the circle's widest part down to the tip (0.84·size from the top)
    draw.polygon([(cx - r * 0.94, cy + r * 0.34), (cx + r * 0.94, cy + r * 0.34), (cx, top + size * 0.84)],
                 fill=fill)
    h = size * 0.094
    draw.ellipse((cx - h, cy - h, cx + h, cy + h), fill=hole)


def app_icon(px: int, *, maskable: bool) -> Image.Image:
    big = px * SCALE
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    if maskable:  # full bleed; the pin inside the central 80 % safe zone
        draw.rectangle((0, 0, big, big), fill=ORANGE)
        pin(draw, big / 2, big * 0.2, big * 0.6, WHITE, ORANGE)
    else:
        draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=big * 14 / 64, fill=ORANGE)
        pin(draw, big / 2, big * 0.1, big * 0.8, WHITE, ORANGE)
    return img.resize((px, px), Image.Resampling.LANCZOS)


def badge(px: int) -> Image.Image:
    """Android's status-bar badge: white on transparent (only the alpha counts)."""
    big = px * SCALE
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    pin(ImageDraw.Draw(img), big / 2, big * 0.05, big * 0.95, WHITE, (0, 0, 0, 0))
    return img.resize((px, px), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for px in (192, 512):
        app_icon(px, maskable=False).save(OUT / f"icon-{px}.png", optimize=True)
    app_icon(512, maskable=True).save(OUT / "maskable-512.png", optimize=True)
    app_icon(180, maskable=True).convert("RGB").save(OUT / "apple-touch-icon.png", optimize=True)
    badge(96).save(OUT / "badge-96.png", optimize=True)


if __name__ == "__main__":
    main()
