"""Drawing for the synthetic shop: flat product silhouettes (shape, colour, pattern) with Pillow.

Every picture is made from a product's *true* attributes, so "looks" carry facts by construction:
the fill colour comes from :data:`PALETTE`, the fill texture from :data:`PATTERNS`, and the outline
from the product type's silhouette in :data:`SHAPES`. A per-image random generator adds small jitter
(position, scale, rotation, shade, pattern spacing) so no two pictures are identical.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]

# Named fill colours. Spaced apart so a shade jitter never crosses to a neighbour.
PALETTE: dict[str, RGB] = {
    "red": (200, 36, 44),
    "navy": (28, 42, 94),
    "black": (24, 24, 26),
    "white": (250, 250, 248),
    "green": (40, 132, 66),
    "yellow": (240, 200, 40),
    "pink": (240, 150, 180),
    "grey": (130, 132, 136),
    "beige": (214, 190, 150),
    "blue": (50, 120, 220),
}
COLOR_NAMES: tuple[str, ...] = tuple(PALETTE)
LIGHT_COLORS: tuple[str, ...] = ("white", "yellow", "pink", "beige")
PATTERNS: tuple[str, ...] = ("solid", "striped", "checked", "dotted", "floral")

INK: RGB = (52, 52, 58)  # outlines, seams, laces
TRIM: RGB = (196, 152, 58)  # metal clasp, denim stitching
MAX_SHADE = 12  # the fill's brightness jitter, in RGB units


@dataclass(frozen=True)
class Part:
    """One drawable piece of a silhouette, in unit coordinates (0..1, y down).

    ``kind`` is ``poly``, ``line`` or ``dot``; ``role`` picks the colour: ``main`` (patterned fill),
    ``dark`` (a shade of the fill), ``accent`` (a light contrast, e.g. a sole), ``trim`` or ``ink``.
    """

    kind: str
    role: str
    points: tuple[tuple[float, float], ...]
    width: float = 0.0  # line width / dot radius, as a fraction of the image size


def _poly(role: str, *points: tuple[float, float]) -> Part:
    """A filled polygon part."""
    return Part("poly", role, tuple(points))


def _line(role: str, width: float, *points: tuple[float, float]) -> Part:
    """A polyline part."""
    return Part("line", role, tuple(points), width)


def _dot(role: str, radius: float, x: float, y: float) -> Part:
    """A small filled circle part."""
    return Part("dot", role, ((x, y),), radius)


def _arc(
    cx: float, cy: float, rx: float, ry: float, start: float, end: float, n: int = 14
) -> list[tuple[float, float]]:
    """Points along an ellipse arc, angles in degrees (0 = right, 90 = down)."""
    steps = [start + (end - start) * i / n for i in range(n + 1)]
    return [(cx + rx * math.cos(math.radians(a)), cy + ry * math.sin(math.radians(a))) for a in steps]


def _tshirt() -> tuple[Part, ...]:
    """A short-sleeved t-shirt, front view."""
    body = _poly("main", (0.36, 0.14), (0.43, 0.14), *_arc(0.5, 0.14, 0.07, 0.07, 180, 0, 6)[1:-1],
                 (0.57, 0.14), (0.64, 0.14), (0.87, 0.29), (0.79, 0.43), (0.69, 0.37), (0.69, 0.87),
                 (0.31, 0.87), (0.31, 0.37), (0.21, 0.43), (0.13, 0.29))
    neck = _line("dark", 0.025, *_arc(0.5, 0.14, 0.07, 0.07, 180, 0, 6))
    return (body, neck)


def _shirt() -> tuple[Part, ...]:
    """A long-sleeved button-up shirt with a collar."""
    body = _poly("main", (0.37, 0.13), (0.63, 0.13), (0.80, 0.20), (0.92, 0.72), (0.82, 0.75),
                 (0.71, 0.40), (0.71, 0.88), (0.29, 0.88), (0.29, 0.40), (0.18, 0.75), (0.08, 0.72),
                 (0.20, 0.20))
    collar_l = _poly("accent", (0.37, 0.12), (0.50, 0.22), (0.41, 0.29))
    collar_r = _poly("accent", (0.63, 0.12), (0.50, 0.22), (0.59, 0.29))
    placket = _line("ink", 0.015, (0.5, 0.22), (0.5, 0.88))
    buttons = tuple(_dot("ink", 0.018, 0.535, y) for y in (0.36, 0.51, 0.66, 0.81))
    return (body, collar_l, collar_r, placket, *buttons)


def _jacket() -> tuple[Part, ...]:
    """A zipped jacket: long sleeves, stand collar, cuffs, hem band and pockets."""
    body = _poly("main", (0.33, 0.15), (0.67, 0.15), (0.85, 0.22), (0.95, 0.80), (0.83, 0.83),
                 (0.75, 0.47), (0.75, 0.91), (0.25, 0.91), (0.25, 0.47), (0.17, 0.83), (0.05, 0.80),
                 (0.15, 0.22))
    collar = _poly("dark", (0.35, 0.08), (0.65, 0.08), (0.67, 0.16), (0.33, 0.16))
    hem = _poly("dark", (0.25, 0.86), (0.75, 0.86), (0.75, 0.91), (0.25, 0.91))
    cuff_l = _poly("dark", (0.06, 0.75), (0.17, 0.78), (0.17, 0.83), (0.05, 0.80))
    cuff_r = _poly("dark", (0.94, 0.75), (0.83, 0.78), (0.83, 0.83), (0.95, 0.80))
    zipper = _line("ink", 0.025, (0.5, 0.08), (0.5, 0.91))
    pockets = tuple(_line("ink", 0.015, (x, 0.62), (x + 0.12, 0.62)) for x in (0.31, 0.57))
    return (body, collar, hem, cuff_l, cuff_r, zipper, *pockets)


def _legs(top: float, waist: tuple[float, float], hem: tuple[float, float], crotch: float) -> Part:
    """The main polygon of a pair of trousers."""
    (wl, wr), (hl, hr) = waist, hem
    return _poly("main", (wl, top), (wr, top), (hr, 0.92), (0.54, 0.92), (0.5, crotch), (0.46, 0.92),
                 (hl, 0.92))


def _jeans() -> tuple[Part, ...]:
    """Five-pocket jeans with contrast stitching and rolled cuffs."""
    legs = _legs(0.09, (0.29, 0.71), (0.24, 0.76), 0.40)
    band = _poly("dark", (0.29, 0.09), (0.71, 0.09), (0.712, 0.15), (0.288, 0.15))
    cuffs = (_poly("dark", (0.245, 0.87), (0.455, 0.87), (0.46, 0.92), (0.24, 0.92)),
             _poly("dark", (0.545, 0.87), (0.755, 0.87), (0.76, 0.92), (0.54, 0.92)))
    stitches = (_line("trim", 0.015, *_arc(0.29, 0.15, 0.09, 0.10, 0, 90, 5)),
                _line("trim", 0.015, *_arc(0.71, 0.15, 0.09, 0.10, 180, 90, 5)),
                _line("trim", 0.015, (0.5, 0.15), (0.5, 0.34)))
    return (legs, band, *cuffs, *stitches, _dot("trim", 0.02, 0.5, 0.12))


def _trousers() -> tuple[Part, ...]:
    """Slim tailored trousers with a belt and pressed creases."""
    legs = _legs(0.08, (0.32, 0.68), (0.30, 0.70), 0.36)
    belt = _poly("ink", (0.32, 0.08), (0.68, 0.08), (0.681, 0.13), (0.319, 0.13))
    creases = tuple(_line("dark", 0.015, (0.5 + d * 0.11, 0.2), (0.5 + d * 0.12, 0.92)) for d in (-1, 1))
    return (legs, belt, *creases, _poly("trim", (0.47, 0.085), (0.53, 0.085), (0.53, 0.125), (0.47, 0.125)))


def _skirt() -> tuple[Part, ...]:
    """An A-line pleated skirt."""
    body = _poly("main", (0.34, 0.22), (0.66, 0.22), (0.84, 0.80), (0.16, 0.80))
    band = _poly("dark", (0.33, 0.16), (0.67, 0.16), (0.67, 0.22), (0.33, 0.22))
    pleats = tuple(_line("dark", 0.012, (0.5 + d * 0.08, 0.22), (0.5 + d * 0.17, 0.80)) for d in (-1, 0, 1))
    return (body, band, *pleats)


def _dress() -> tuple[Part, ...]:
    """A sleeveless strap dress with a belt and a flared skirt."""
    body = _poly("main", (0.39, 0.08), (0.44, 0.08), (0.46, 0.22), (0.54, 0.22), (0.56, 0.08),
                 (0.61, 0.08), (0.63, 0.40), (0.59, 0.47), (0.84, 0.93), (0.16, 0.93), (0.41, 0.47),
                 (0.37, 0.40))
    belt = _poly("dark", (0.37, 0.40), (0.63, 0.40), (0.605, 0.46), (0.395, 0.46))
    return (body, belt)


def _sneaker() -> tuple[Part, ...]:
    """A low sneaker, side view: upper, light sole, laces and heel tab."""
    upper = _poly("main", (0.07, 0.66), (0.08, 0.50), (0.14, 0.44), (0.30, 0.42), (0.44, 0.30),
                  (0.60, 0.27), (0.64, 0.40), (0.80, 0.48), (0.92, 0.54), (0.95, 0.66))
    sole = _poly("accent", (0.05, 0.66), (0.97, 0.66), (0.96, 0.75), (0.07, 0.75))
    heel = _poly("dark", (0.60, 0.27), (0.66, 0.26), (0.69, 0.43), (0.64, 0.40))
    laces = tuple(_line("ink", 0.02, (0.36 + 0.055 * i, 0.38 - 0.02 * i), (0.40 + 0.06 * i, 0.46 - 0.02 * i))
                  for i in range(3))
    stripe = _line("accent", 0.035, (0.22, 0.58), (0.40, 0.50), (0.58, 0.56))
    return (upper, sole, heel, *laces, stripe)


def _bag() -> tuple[Part, ...]:
    """A tote bag with a curved handle and a clasp."""
    outer = _arc(0.5, 0.42, 0.20, 0.30, 180, 360)
    inner = _arc(0.5, 0.42, 0.14, 0.23, 360, 180)
    handle = _poly("dark", *outer, *inner)
    body = _poly("main", (0.16, 0.40), (0.84, 0.40), (0.88, 0.88), (0.12, 0.88))
    clasp = _poly("trim", (0.46, 0.45), (0.54, 0.45), (0.54, 0.53), (0.46, 0.53))
    return (handle, body, _line("ink", 0.015, (0.18, 0.49), (0.82, 0.49)), clasp)


def _hat() -> tuple[Part, ...]:
    """A baseball cap, side view: dome, brim, button and seams."""
    dome = _poly("main", *_arc(0.44, 0.62, 0.30, 0.34, 180, 360, 20))
    brim = _poly("dark", (0.66, 0.56), (0.93, 0.60), (0.94, 0.66), (0.70, 0.66), (0.66, 0.62))
    band = _poly("dark", (0.14, 0.58), (0.74, 0.58), (0.74, 0.62), (0.14, 0.62))
    seams = tuple(_line("dark", 0.012, (0.44, 0.28), (x, 0.58)) for x in (0.30, 0.58))
    return (dome, brim, band, *seams, _dot("dark", 0.03, 0.44, 0.27))


def _socks() -> tuple[Part, ...]:
    """A pair of crew socks, one in front of the other."""
    def sock(dx: float, dy: float) -> tuple[Part, ...]:
        def p(x: float, y: float) -> tuple[float, float]:
            return (x + dx, y + dy)
        body = _poly("main", p(0.34, 0.10), p(0.54, 0.10), p(0.54, 0.56), p(0.78, 0.67), p(0.82, 0.76),
                     p(0.76, 0.84), p(0.44, 0.82), p(0.34, 0.72))
        cuff = _poly("accent", p(0.34, 0.10), p(0.54, 0.10), p(0.54, 0.19), p(0.34, 0.19))
        toe = _poly("dark", p(0.76, 0.66), p(0.82, 0.76), p(0.76, 0.84), p(0.72, 0.83))
        return (body, cuff, toe)
    return (*sock(-0.14, 0.0), *sock(0.08, 0.08))


SHAPES = {
    "t-shirt": _tshirt(),
    "shirt": _shirt(),
    "jacket": _jacket(),
    "jeans": _jeans(),
    "trousers": _trousers(),
    "skirt": _skirt(),
    "dress": _dress(),
    "sneakers": _sneaker(),
    "bag": _bag(),
    "hat": _hat(),
    "socks": _socks(),
}


@dataclass(frozen=True)
class Look:
    """What a picture shows: the product type's silhouette, its fill colour and pattern."""

    product_type: str
    color: str
    pattern: str
    secondary: str  # the pattern's second colour (stripes, checks, dots, petals)


def _clip(rgb: tuple[float, float, float]) -> RGB:
    """Round and clamp a colour into 0..255."""
    r, g, b = (int(min(255.0, max(0.0, c)) + 0.5) for c in rgb)
    return (r, g, b)


def _shaded(rgb: RGB, delta: float) -> RGB:
    """The colour made brighter (delta > 0) or darker by ``delta`` RGB units."""
    return _clip((rgb[0] + delta, rgb[1] + delta, rgb[2] + delta))


def _dark_of(rgb: RGB) -> RGB:
    """A visibly darker (or, for near-black, lighter) shade of a fill colour."""
    if sum(rgb) < 150:
        return _shaded(rgb, 55)
    return _clip((rgb[0] * 0.68, rgb[1] * 0.68, rgb[2] * 0.68))


def _accent_of(rgb: RGB) -> RGB:
    """A light contrast colour (sole, cuff, collar) that stays visible on a light fill."""
    return (182, 184, 188) if sum(rgb) > 600 else (246, 244, 238)


def _pattern_layer(size: int, main: RGB, look: Look, rng: np.random.Generator) -> Image.Image:
    """A full-frame fill in the main colour with the look's pattern in its secondary colour."""
    layer = Image.new("RGB", (size, size), main)
    if look.pattern == "solid":
        return layer
    draw = ImageDraw.Draw(layer)
    second = PALETTE[look.secondary]
    period = max(6, int(size * rng.uniform(0.095, 0.13) + 0.5))
    phase = int(rng.integers(0, period))
    if look.pattern == "striped":
        for y in range(phase - period, size, period):
            draw.rectangle((0, y, size, y + max(2, period // 3) - 1), fill=second)
    elif look.pattern == "checked":
        width = max(2, period // 4)
        for v in range(phase - period, size, period):
            draw.rectangle((0, v, size, v + width - 1), fill=second)
            draw.rectangle((v, 0, v + width - 1, size), fill=second)
    elif look.pattern == "dotted":
        radius = max(1.5, period * 0.2)
        for row, y in enumerate(range(phase - period, size + period, period)):
            for x in range(phase - period + (period // 2) * (row % 2), size + period, period):
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=second)
    else:
        _draw_flowers(draw, size, period, second, rng)
    return layer


def _draw_flowers(
    draw: ImageDraw.ImageDraw, size: int, period: int, petal: RGB, rng: np.random.Generator
) -> None:
    """Scatter small five-petal flowers (floral print) over the layer."""
    step = period * 1.6
    count = int((size / step) ** 2)
    centre = PALETTE["yellow"] if petal != PALETTE["yellow"] else (150, 84, 30)
    r = max(1.2, period * 0.16)
    for x, y in rng.uniform(0, size, size=(count, 2)):
        for k in range(5):
            a = 2 * math.pi * k / 5
            px, py = x + 1.6 * r * math.cos(a), y + 1.6 * r * math.sin(a)
            draw.ellipse((px - r, py - r, px + r, py + r), fill=petal)
        draw.ellipse((x - r * 0.8, y - r * 0.8, x + r * 0.8, y + r * 0.8), fill=centre)


Placer = Callable[[float, float], tuple[float, float]]


def _placer(size: int, rng: np.random.Generator) -> tuple[Placer, float]:
    """A function mapping unit-square points to jittered pixel points (scale, rotation, shift)."""
    scale = rng.uniform(0.84, 0.98)
    angle = math.radians(rng.uniform(-6.0, 6.0))
    dx, dy = rng.uniform(-0.045, 0.045, size=2)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale

    def place(u: float, v: float) -> tuple[float, float]:
        x, y = u - 0.5, v - 0.5
        return ((0.5 + dx + cos * x - sin * y) * size, (0.5 + dy + sin * x + cos * y) * size)

    return place, scale


def render_look(look: Look, size: int, rng: np.random.Generator) -> Image.Image:
    """Draw one product picture: the look's silhouette on a light background, with seeded jitter."""
    tint = 238 + int(rng.integers(-4, 5))
    background = _clip(tuple(tint + rng.integers(-2, 3, size=3)))
    main = _shaded(PALETTE[look.color], float(rng.uniform(-MAX_SHADE, MAX_SHADE)))
    colours = {"main": main, "dark": _dark_of(main), "accent": _accent_of(main), "trim": TRIM, "ink": INK}
    place, scale = _placer(size, rng)
    fill = _pattern_layer(size, main, look, rng)
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    ink_width = max(1, int(size / 96 + 0.5))
    for part in SHAPES[look.product_type]:
        points = [place(u, v) for u, v in part.points]
        if part.kind == "line":
            draw.line(points, fill=colours[part.role], width=max(1, int(part.width * size * scale + 0.5)))
        elif part.kind == "dot":
            (x, y), r = points[0], part.width * size * scale
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colours[part.role])
        elif part.role == "main":
            mask = Image.new("L", (size, size), 0)
            ImageDraw.Draw(mask).polygon(points, fill=255)
            image.paste(fill, (0, 0), mask)
            draw.polygon(points, outline=INK, width=ink_width)
        else:
            draw.polygon(points, fill=colours[part.role], outline=INK, width=ink_width)
    return image


def save_png(image: Image.Image, path: Path) -> None:
    """Save a PNG deterministically (no metadata, fixed compression)."""
    image.save(path, format="PNG", compress_level=6)
