"""`archdsl erf`'s outputs: the table (text or JSON), and the heat maps as SVG, PNG or an HTML page.

    text = erf_table(title, layers)                    # layers: [ErfLayer], in spec order
    svg = heatmap_svg(layer)                           # markupsafe.Markup, escaped parts only
    png = heatmap_png(layers)                          # bytes: the maps side by side

A heat map is drawn with its theoretical field as a box and, along the top and left edges, the
50/90/95 % runs around the mass centre as bars. A map measured on a canvas (the twin) is drawn
whole, with the image's outline dashed. Colours go linearly from 0 to the map's maximum.
"""
from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from markupsafe import Markup, escape

from ..analysis.effective_rf import PERCENTS, ErfStats
from ..display import pair

MAX_CELLS = 64          # an SVG map has at most this many cells a side (bigger maps are block-summed)
PNG_SIDE = 192          # a PNG map is scaled up to about this many pixels a side
# a dark-to-bright ramp (black, purple, orange, light yellow): low values stay visible
RAMP = np.array([[0, 0, 4], [81, 18, 124], [183, 55, 121], [252, 137, 97], [252, 253, 191]], np.float64)
BOX = (0, 200, 255)


@dataclass(frozen=True)
class ErfLayer:
    stats: ErfStats
    text: str                       # the layer as written in the spec
    output: tuple[int, ...]         # output shape
    heat: np.ndarray                # the map, pixel (r, c) = input pixel (r - origin[0], c - origin[1])
    origin: tuple[int, int]
    input_size: tuple[int, int]


def erf_table(title: str, layers: list[ErfLayer]) -> str:
    header = ["#", "layer", "output", "rf", "centre", "theory", "erf50", "erf90", "erf95", "erf90/rf", "outside"]
    rows = []
    for layer in layers:
        s = layer.stats
        rows.append([str(s.index), layer.text, "x".join(map(str, layer.output)), pair(s.rf) + _clip_mark(s),
                     _point(s.centre), _point(s.theory_centre)]
                    + [pair(s.widths[p]) + ("*" if any(s.cut[p]) else "") if s.centre else "-" for p in PERCENTS]
                    + ["/".join(f"{r:.2f}" for r in s.ratio(90)) if s.centre else "-", f"{s.outside:.3g}"])
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    lines = [title, ""]
    for k, r in enumerate([header, ["-" * w for w in widths], *rows]):
        lines.append("  ".join(cell.ljust(w) if c == 1 else cell.rjust(w)
                               for c, (cell, w) in enumerate(zip(r, widths))).rstrip())
    notes = []
    if any(any(layer.stats.field_clipped) for layer in layers):
        notes.append("rf ^: the theoretical field reaches past the image; "
                     + ("the twin's canvas holds it whole" if layers[0].origin != (0, 0)
                        else "the image cuts the ERF there too"))
    if any(any(any(c) for c in layer.stats.cut.values()) for layer in layers):
        notes.append("*: the run reached the map's border before holding p % (a lower bound)")
    notes.append("erfP: the width of the smallest run of whole pixels around the mass centre's pixel holding P % "
                 "of the map's mass along that axis (rows x columns); centre and theory in input pixels (row, col)")
    return "\n".join(lines + [""] + notes)


def erf_json(layers: list[ErfLayer], about: dict) -> str:
    out = []
    for layer in layers:
        s = layer.stats
        out.append({"index": s.index, "layer": layer.text, "output_shape": list(layer.output), "unit": list(s.unit),
                    "rf": list(s.rf), "centre": list(s.centre) if s.centre else None,
                    "theory_centre": list(s.theory_centre),
                    "erf": {str(p): list(s.widths[p]) for p in PERCENTS} if s.centre else None,
                    "cut": {str(p): list(s.cut[p]) for p in PERCENTS} if s.centre else None,
                    "field_clipped": list(s.field_clipped), "outside": s.outside,
                    "ratio90": list(s.ratio(90)) if s.centre else None})
    return json.dumps({**about, "layers": out}, indent=1)


def _clip_mark(s: ErfStats) -> str:
    return "^" if any(s.field_clipped) else ""


def _point(p) -> str:
    return "-" if p is None else ",".join(f"{v:.1f}" for v in p)


# --- pictures -------------------------------------------------------------------------------

def heatmap_svg(layer: ErfLayer) -> Markup:
    heat, origin = layer.heat, layer.origin
    block = max(1, -(-max(heat.shape) // MAX_CELLS))  # pixels a cell
    cells = _block_sum(heat, block)
    cell = max(2, 256 // max(cells.shape))
    top, left = 18, 18  # room for the runs' bars
    width, height = left + cells.shape[1] * cell + 4, top + cells.shape[0] * cell + 4
    colours = _colours(cells)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" class="erf">',
             f"<title>{escape(f'layer {layer.stats.index}: {layer.text}')}</title>"]
    for r in range(cells.shape[0]):
        for c in range(cells.shape[1]):
            rgb = colours[r, c]
            parts.append(f'<rect x="{left + c * cell}" y="{top + r * cell}" width="{cell}" height="{cell}" '
                         f'fill="rgb({rgb[0]},{rgb[1]},{rgb[2]})"/>')

    def x_of(pixel: float, axis: int) -> float:  # a pixel edge (input coordinate) -> drawing coordinate
        return (left, top)[axis] + (pixel + origin[axis]) / block * cell

    if origin != (0, 0):  # the image's outline on a canvas
        parts.append(_rect(x_of(-0.5, 1), x_of(-0.5, 0), x_of(layer.input_size[1] - 0.5, 1),
                           x_of(layer.input_size[0] - 0.5, 0), "#ffffff", dash="3,3"))
    s = layer.stats
    (r0, r1), (c0, c1) = [(s.theory_centre[a] - (s.rf[a] - 1) / 2, s.theory_centre[a] + (s.rf[a] - 1) / 2)
                          for a in (0, 1)]
    parts.append(_rect(x_of(c0 - 0.5, 1), x_of(r0 - 0.5, 0), x_of(c1 + 0.5, 1), x_of(r1 + 0.5, 0), "#00c8ff"))
    if s.centre is not None:
        for k, p in enumerate(PERCENTS):
            for a in (0, 1):
                m = round(s.centre[a] + origin[a]) - origin[a]
                half = (s.widths[p][a] - 1) / 2
                lo, hi = x_of(m - half - 0.5, a), x_of(m + half + 0.5, a)
                at = 4 + 4 * k
                x1, y1, x2, y2 = (lo, at, hi, at) if a == 1 else (at, lo, at, hi)
                parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#555" '
                             f'stroke-width="{3 - k}"><title>{p} %: {s.widths[p][a]} px</title></line>')
    parts.append("</svg>")
    return Markup("".join(parts))


def heatmap_png(layers: list[ErfLayer]) -> bytes:
    """The maps side by side (a 4-pixel gap), each scaled up to about PNG_SIDE, the field's box drawn in."""
    tiles = [_tile(layer) for layer in layers]
    height = max(t.shape[0] for t in tiles)
    gap = np.full((height, 4, 3), 255, np.uint8)
    row = []
    for t in tiles:
        pad = np.full((height - t.shape[0], t.shape[1], 3), 255, np.uint8)
        row += [np.concatenate([t, pad]), gap]
    return encode_png(np.concatenate(row[:-1], axis=1))


def _tile(layer: ErfLayer) -> np.ndarray:
    heat, origin, s = layer.heat, layer.origin, layer.stats
    scale = max(1, PNG_SIDE // max(heat.shape))
    image = np.repeat(np.repeat(_colours(heat), scale, axis=0), scale, axis=1)
    bounds = []
    for a in (0, 1):
        lo = s.theory_centre[a] - (s.rf[a] - 1) / 2 + origin[a]
        hi = s.theory_centre[a] + (s.rf[a] - 1) / 2 + origin[a]
        limit = image.shape[a] - 1
        bounds.append((min(max(int(np.floor(lo * scale)), 0), limit), min(max(int(np.ceil((hi + 1) * scale)) - 1, 0),
                                                                          limit)))
    (r0, r1), (c0, c1) = bounds
    image[r0, c0:c1 + 1] = image[r1, c0:c1 + 1] = BOX
    image[r0:r1 + 1, c0] = image[r0:r1 + 1, c1] = BOX
    return image


def encode_png(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of `rgb` (H, W, 3) uint8: signature, IHDR, one IDAT (filter 0 rows), IEND."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[r].tobytes() for r in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _colours(heat: np.ndarray) -> np.ndarray:
    top = heat.max()
    t = heat / top if top > 0 else np.zeros_like(heat)
    position = t * (len(RAMP) - 1)
    k = np.minimum(position.astype(int), len(RAMP) - 2)
    f = (position - k)[..., None]
    return np.rint(RAMP[k] * (1 - f) + RAMP[k + 1] * f).astype(np.uint8)


def _block_sum(heat: np.ndarray, block: int) -> np.ndarray:
    if block == 1:
        return heat
    h, w = -(-heat.shape[0] // block) * block, -(-heat.shape[1] // block) * block
    padded = np.zeros((h, w)); padded[:heat.shape[0], :heat.shape[1]] = heat
    return padded.reshape(h // block, block, w // block, block).sum(axis=(1, 3))


def _rect(x0, y0, x1, y1, colour: str, dash: str | None = None) -> str:
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" fill="none" '
            f'stroke="{colour}" stroke-width="1.5"{dashed}/>')
