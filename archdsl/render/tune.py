"""Presenters of a tune (`archdsl tune`): its leaderboard as a text table or JSON, with the counts of its
trials and the best variant, and (`--report FILE.html`) a page with params against held-out accuracy as
an inline SVG scatter chart. `board` is the dict training/tune_board.py reads from the study."""
from __future__ import annotations

import functools
import json
from pathlib import Path

from ..display import terminal_text


def render(board: dict, fmt: str = "table", best_path: str | None = None) -> str:
    if fmt == "json":
        return json.dumps({**board, "best_arch": best_path}, indent=1)
    return text_table(board, best_path)


def counts_line(board: dict) -> str:
    """`4 trained (3 complete, 1 pruned), 2 infeasible not trained, 1 failed`: the kinds a study holds."""
    c = board["counts"]
    done = c["complete"] + c["pruned"]
    parts = [f"{done} finished ({c['complete']} complete, {c['pruned']} pruned)"]
    for key, said in (("failed", "failed"), ("running", "running"), ("waiting", "queued"),
                      ("infeasible", "infeasible (not trained)"), ("repeat", "repeat{s} of a trained variant"),
                      ("skipped", "skipped at the budget (not trained)")):
        if c.get(key):
            parts.append(f"{c[key]} " + said.format(s="s" if c[key] != 1 else ""))
    return ", ".join(parts)


PARETO_NOTE = ("front: on the Pareto front of val acc against params, MACs or both (no other complete trial has "
               "at most its params, or MACs, and at least its accuracy)")
TEST_NOTE = ("test acc: the final model's accuracy on the test split, scored once after training; the study never "
             "chooses by it")


def front(row: dict) -> str:
    """Which Pareto fronts a trial is on: `params`, `MACs`, `both` or nothing."""
    on = [name for key, name in (("pareto", "params"), ("pareto_macs", "MACs")) if row[key]]
    return "both" if len(on) == 2 else "".join(on)


def _state(row: dict) -> str:
    notes = [] if row["retry_of"] is None else [f"retry of {row['retry_of']}"]
    earlier = row.get("continued_from")  # the failed run, and its epoch, that the trial continued
    if earlier:
        notes.append(f"from epoch {earlier['epoch']}" if earlier["trial"] == row["retry_of"]
                     else f"from trial {earlier['trial']}'s epoch {earlier['epoch']}")
    return row["state"] + (f" ({', '.join(notes)})" if notes else "")


def _accuracy(value) -> str:
    return "" if value is None else f"{value:.4f}"


def text_table(board: dict, best_path: str | None = None) -> str:
    rows = board["trials"]
    names = list(rows[0]["choices"]) if rows else []
    header = ["trial", "state", *names, "params", "MACs", "val acc", "test acc", "front", "epochs", "seconds",
              "run dir"]
    body = []
    for r in rows:
        body.append([str(r["trial"]), _state(r), *(str(r["choices"].get(n, "")) for n in names),
                     "" if r["params"] is None else f"{r['params']:,}", "" if r["macs"] is None else f"{r['macs']:,}",
                     _accuracy(r["val_accuracy"]), _accuracy(r["test_accuracy"]), front(r), str(r["epochs"] or 0),
                     "" if r["seconds"] is None else f"{r['seconds']:.1f}", r["run_dir"] or ""])
    body = [[terminal_text(c) for c in row] for row in body]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    left = {0, 1, *range(2, 2 + len(names)), len(header) - 4, len(header) - 1}

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    lines = [f"study {terminal_text(board['study'])} ({terminal_text(board['storage'])}): {counts_line(board)}"]
    if body:
        lines += ["", line(header), line(["-" * w for w in widths]), *map(line, body)]
        if any(front(r) for r in rows):
            lines.append(PARETO_NOTE)
        if any(r["test_accuracy"] is not None for r in rows):
            lines.append(TEST_NOTE)
    best = board["best"]
    if best is not None:
        lines += ["", f"best: trial {best['trial']} ({terminal_text(_choices(best))}), val (held out) accuracy "
                      f"{best['val_accuracy']:.4f}, {terminal_text(best['run_dir'])}"
                  + (f"; its spec: {terminal_text(best_path)}" if best_path else "")]
    return "\n".join(lines)


def report_html(board: dict) -> str:
    """The report page: the counts, the best trial, two charts (held-out accuracy against params and against
    MACs, each with its Pareto front of the complete trials as steps) and the trials' table. Every value is
    escaped by the template (jinja2 autoescape)."""
    from ..version import __version__
    rows = [r for r in board["trials"] if r["params"] is not None and r["val_accuracy"] is not None]
    charts = [_chart(rows, cost, name, front_key) for cost, name, front_key in (("params", "params", "pareto"),
                                                                                 ("macs", "MACs", "pareto_macs"))]
    names = list(board["trials"][0]["choices"]) if board["trials"] else []
    return _template().render(
        b=board, charts=charts, names=names, counts=counts_line(board), version=__version__, state=_state,
        choices=_choices, front=front)


def _chart(rows: list[dict], cost: str, name: str, front_key: str):
    from .charts import COLOURS, Point, Series, scatter_chart

    def point(r: dict) -> Point:
        return Point(r[cost], r["val_accuracy"], f"trial {r['trial']} ({_choices(r)})")

    groups = [Series(state, [point(r) for r in rows if r["state"] == state], colour)
              for state, colour in (("complete", COLOURS[0]), ("pruned", COLOURS[1])) if any(
                  r["state"] == state for r in rows)]
    steps = [(r[cost], r["val_accuracy"]) for r in rows if r[front_key]]
    return scatter_chart(groups, title=f"{name} against val (held out) accuracy", x_label=name,
                         y_label="val accuracy", front=steps, x_format=lambda v: f"{v:,.0f}",
                         y_format=lambda v: f"{v:.3g}", width=640, height=360)


@functools.cache
def _template():
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    return env.get_template("tune.html.j2")


def _choices(row: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in row["choices"].items()) or "the spec"
