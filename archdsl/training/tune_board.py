"""A study's leaderboard, read from its trials: one row a trained trial (complete, pruned, failed, running),
best first, the trials that trained nothing counted and listed apart; a complete trial is marked `pareto`
when no other complete trial has at most its params and at least its held-out accuracy (one of them
strictly), and `pareto_macs` likewise with MACs for params. Plain dicts: render/tune.py prints them,
tune_folder writes them as leaderboard.json.
"""
from __future__ import annotations

from ..analysis.pareto import pareto_front
from .tune_study import kind, retry_of, trained

KINDS = ("complete", "pruned", "failed", "running", "waiting", "infeasible", "repeat", "skipped")
_ORDER = {"complete": 0, "pruned": 1}


def board(study, choice_names: list[str], storage: str, spec: str) -> dict:
    trials = study.get_trials(deepcopy=False)
    rows = sorted((_row(t, choice_names) for t in trials if trained(t)), key=_rank)
    counts = {k: 0 for k in KINDS}
    for t in trials:
        counts[kind(t)] = counts.get(kind(t), 0) + 1
    others = [{"trial": t.number, "state": kind(t), "choices": _choices(t, choice_names), "why": _why(t)}
              for t in trials if not trained(t) and kind(t) in ("infeasible", "repeat", "skipped")]
    complete = [r for r in rows if r["state"] == "complete" and r["params"] is not None]
    fronts = {key: {r["trial"] for r in pareto_front(complete, lambda r: r[cost], lambda r: r["val_accuracy"])}
              for key, cost in (("pareto", "params"), ("pareto_macs", "macs"))}
    for r in rows:
        for key, front in fronts.items():
            r[key] = r["trial"] in front
    best = next((r for r in rows if r["state"] == "complete"), None)
    return {"study": study.study_name, "storage": storage, "spec": spec, "counts": counts, "best": best,
            "trials": rows, "not_trained": others}


def _rank(row: dict):
    value = row["val_accuracy"]
    return (_ORDER.get(row["state"], 2), value is None, -(value or 0.0), row["trial"])


def _choices(t, names: list[str]) -> dict:
    return {n: t.params[n] for n in names if n in t.params}


def _row(t, names: list[str]) -> dict:
    attrs = t.user_attrs
    last = t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None
    value = t.value if t.state.name == "COMPLETE" else attrs.get("val_accuracy", last)
    seconds = attrs.get("seconds")
    if seconds is None and t.state.name in ("COMPLETE", "PRUNED") and t.datetime_start and t.datetime_complete:
        seconds = (t.datetime_complete - t.datetime_start).total_seconds()
    return {"trial": t.number, "state": kind(t), "choices": _choices(t, names), "variant": attrs.get("variant"),
            "params": attrs.get("params"), "macs": attrs.get("macs"), "val_accuracy": value,
            "test_accuracy": attrs.get("test_accuracy"),
            "epochs": attrs.get("epochs") or len(t.intermediate_values), "seconds": seconds,
            "run_dir": attrs.get("run_dir"), "retry_of": retry_of(t), "continued_from": attrs.get("continued_from"),
            "worker": attrs.get("worker")}


def _why(t) -> str:
    attrs = t.user_attrs
    if "infeasible" in attrs:
        return attrs["infeasible"]
    if "repeat_of" in attrs:
        return f"trial {attrs['repeat_of']} trains the same variant"
    return attrs.get("skipped", "")
