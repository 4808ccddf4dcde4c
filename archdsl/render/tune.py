"""Presenters of a tune (`archdsl tune`): its leaderboard as a text table or JSON, with the counts of its
trials and the best variant. `board` is the dict training/tune_board.py reads from the study."""
from __future__ import annotations

import json

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


def _accuracy(value) -> str:
    return "" if value is None else f"{value:.4f}"


def text_table(board: dict, best_path: str | None = None) -> str:
    rows = board["trials"]
    names = list(rows[0]["choices"]) if rows else []
    header = ["trial", "state", *names, "params", "MACs", "val acc", "epochs", "seconds", "run dir"]
    body = []
    for r in rows:
        state = r["state"] + (f" (retry of {r['retry_of']})" if r["retry_of"] is not None else "")
        body.append([str(r["trial"]), state, *(str(r["choices"].get(n, "")) for n in names),
                     "" if r["params"] is None else f"{r['params']:,}", "" if r["macs"] is None else f"{r['macs']:,}",
                     _accuracy(r["val_accuracy"]), str(r["epochs"] or 0),
                     "" if r["seconds"] is None else f"{r['seconds']:.1f}", r["run_dir"] or ""])
    body = [[terminal_text(c) for c in row] for row in body]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    left = {0, 1, *range(2, 2 + len(names)), len(header) - 1}

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    lines = [f"study {terminal_text(board['study'])} ({terminal_text(board['storage'])}): {counts_line(board)}"]
    if body:
        lines += ["", line(header), line(["-" * w for w in widths]), *map(line, body)]
    best = board["best"]
    if best is not None:
        choices = " ".join(f"{k}={v}" for k, v in best["choices"].items()) or "the spec"
        lines += ["", f"best: trial {best['trial']} ({terminal_text(choices)}), val (held out) accuracy "
                      f"{best['val_accuracy']:.4f}, {terminal_text(best['run_dir'])}"
                  + (f"; its spec: {terminal_text(best_path)}" if best_path else "")]
    return "\n".join(lines)
