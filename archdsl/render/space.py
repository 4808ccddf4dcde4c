"""Presenters of a design space (`archdsl space`): its feasible variants as a text table, JSON or CSV,
with the counts (combinations, feasible, ruled out by each assert, not resolving)."""
from __future__ import annotations

import csv
import io
import json

from ..analysis.space import SpaceAnalysis, Variant
from ..display import pair, terminal_text

HEADINGS = {"params": "params", "macs": "MACs", "rf": "rf", "ram": "ram int8", "flash": "flash int8"}


def render(space: SpaceAnalysis, rows: list[Variant], fmt: str = "table") -> str:
    """`rows`: the variants to list (the feasible ones, sorted and cut as asked)."""
    return {"table": text_table, "json": to_json, "csv": to_csv}[fmt](space, rows)


def counts_line(space: SpaceAnalysis) -> str:
    """`24 combinations, 12 feasible; ruled out: 12 by assert params <= 5k; 2 do not resolve`."""
    total, feasible = len(space.variants), len(space.feasible)
    parts = [f"{total:,} combination{'s' if total != 1 else ''}, {feasible:,} feasible"]
    ruled = space.ruled_out()
    if ruled:
        parts.append("ruled out: " + ", ".join(f"{n:,} by `{text}`" for text, n in ruled.most_common()))
    if space.invalid:
        first = space.invalid[0]
        error = getattr(first.error, "errors", [first.error])[0]
        parts.append(f"{len(space.invalid):,} do not resolve (the first, #{first.index} {first.name}: "
                     f"{error.code} {error.message})")
    return "; ".join(parts)


def _cells(space: SpaceAnalysis, v: Variant) -> list[str]:
    m = v.metrics
    return [str(v.index), *v.values().values(), f"{m['params']:,}", f"{m['macs']:,}", pair(m["rf"]),
            f"{m['ram']:,}", f"{m['flash']:,}"]


def text_table(space: SpaceAnalysis, rows: list[Variant]) -> str:
    header = ["#", *(c.name for c in space.choices), *HEADINGS.values()]
    body = [[terminal_text(cell) for cell in _cells(space, v)] for v in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    left = 1 + len(space.choices)  # the index and the choices read left-aligned, the metrics right-aligned

    def line(cells):
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    lines = [f"design space {terminal_text(space.spec.file)}: {counts_line(space)}"]
    if body:
        lines += ["", line(header), line(["-" * w for w in widths]), *map(line, body)]
        if len(rows) < len(space.feasible):
            lines.append(f"({len(rows):,} of {len(space.feasible):,} feasible variants shown)")
    return "\n".join(lines)


def to_dict(space: SpaceAnalysis, rows: list[Variant]) -> dict:
    return {
        "file": space.spec.file,
        "choices": {c.name: c.texts for c in space.choices},
        "combinations": len(space.variants),
        "feasible": len(space.feasible),
        "ruled_out": dict(space.ruled_out()),
        "not_resolving": len(space.invalid),
        "variants": [{"index": v.index, "choices": v.values(),
                      **{k: list(val) if k == "rf" else val for k, val in v.metrics.items()}} for v in rows],
    }


def to_json(space: SpaceAnalysis, rows: list[Variant]) -> str:
    return json.dumps(to_dict(space, rows), indent=2)


def to_csv(space: SpaceAnalysis, rows: list[Variant]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["index", *(c.name for c in space.choices), "params", "macs", "rf_h", "rf_w", "ram", "flash"])
    for v in rows:
        m = v.metrics
        writer.writerow([v.index, *v.values().values(), m["params"], m["macs"], *m["rf"], m["ram"], m["flash"]])
    return out.getvalue()
