#!/usr/bin/env python3
"""Write experiments/pareto.md: the Pareto fronts of test accuracy against params and against MACs of the models
an `archdsl tune` study trained, beside the hand-found runs of the same length.

    python experiments/scripts/make_pareto_doc.py            # rewrite experiments/pareto.md and its two charts
    python experiments/scripts/make_pareto_doc.py --check    # exit 1 if they are not what this writes
    python experiments/scripts/make_pareto_doc.py --keep TUNE_FOLDER   # first copy a study's files in

A kept study is experiments/tunes/<study>/: the tune folder's leaderboard.json and, per trained trial,
trials/<n>/ with the run's spec.arch, metrics.json and history.csv, and a failed trial's history.csv (the
epochs it trained count in the study's training time) (`--keep` copies exactly these). The hand-found
runs are experiments/results/<run>/ (make_results_doc.py's), those trained as many epochs as the study's trials.
Every number comes from those files: params and MACs from each spec's analysis, accuracies from metrics.json.

Which accuracy: each model's final epoch on the 10,000 test images. A tune's trial trains on the training images
less a held-out split (`--val-split`) and is chosen by the held-out accuracy; its test accuracy is scored once,
after its last epoch, and chooses nothing. The hand-found runs trained on all 50,000 training images and were
validated on the test split every epoch (the seed's protocol); their final epoch's accuracy is the one shown.
The fronts are drawn over every model shown, by that test accuracy: which trained models no other beats at
their size. The table says, for each trial, whether the study's own front (by held-out accuracy) had it too.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))  # make_results_doc, beside this script (scripts/ is no package)
import make_results_doc  # noqa: E402  (the hand-found runs' rows, and how a duration is written)
EXPERIMENTS = ROOT / "experiments"
TUNES = EXPERIMENTS / "tunes"
DOC = EXPERIMENTS / "pareto.md"
CHARTS = {"params": EXPERIMENTS / "pages" / "pareto_params.svg", "macs": EXPERIMENTS / "pages" / "pareto_macs.svg"}
KEPT_FILES = ("spec.arch", "metrics.json", "history.csv")


def keep(tune_folder: Path) -> Path:
    """Copy a tune folder's leaderboard.json and its trained trials' spec, metrics and history into
    experiments/tunes/<study>/ (an existing kept study is refused: it is a record)."""
    board = json.loads((tune_folder / "leaderboard.json").read_text())
    target = TUNES / board["study"]
    if target.exists():
        raise SystemExit(f"{_shown(target)} exists: remove it first to keep the study again")
    for row in board["trials"]:
        source = tune_folder / row["run_dir"]
        if row["state"] in ("complete", "pruned"):
            names = KEPT_FILES
        elif row["state"] == "failed" and (source / "history.csv").is_file():
            names = ("history.csv",)  # the epochs it trained before it failed: CPU the study spent
        else:
            continue
        (target / row["run_dir"]).mkdir(parents=True)
        for name in names:
            shutil.copy2(source / name, target / row["run_dir"] / name)
    shutil.copy2(tune_folder / "leaderboard.json", target / "leaderboard.json")
    return target


def _shown(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def trial_points(study: Path) -> list[dict]:
    """The study's complete trials, each with its numbers from its kept files."""
    from archdsl import analyze, load
    board = json.loads((study / "leaderboard.json").read_text())
    points = []
    for row in board["trials"]:
        if row["state"] != "complete":
            continue
        folder = study / row["run_dir"]
        metrics = json.loads((folder / "metrics.json").read_text())
        analysis = analyze(load(str(folder / "spec.arch")))
        choices = " ".join(f"{k}={v}" for k, v in row["choices"].items())
        points.append({"name": f"{board['study']} trial {row['trial']} ({choices})", "source": "tune",
                       "params": analysis.params, "macs": analysis.macs, "epochs": metrics["epochs_done"],
                       "held_out": metrics["final_val_accuracy"], "test": metrics["final_test_accuracy"],
                       "study_front": {"params": row["pareto"], "macs": row.get("pareto_macs", False)},
                       "seconds": row["seconds"], "test_images": metrics["test_images"],
                       "data": metrics["data"]["fingerprint"]})
    return points


def spent(study: Path, board: dict) -> dict[str, float]:
    """The study's training time: its complete and pruned trials' own wall times (seconds), and the epochs its
    failed trials trained before they failed (their kept history.csv), but for a failed run a later trial
    continued: that trial's wall time has them already."""
    from archdsl.runs import read_history
    trained = sum(r["seconds"] or 0 for r in board["trials"] if r["state"] in ("complete", "pruned"))
    continued = {r["continued_from"]["trial"] for r in board["trials"] if r.get("continued_from")}
    failed = sum(float(row["seconds"]) for r in board["trials"] if r["state"] == "failed"
                 and r["trial"] not in continued and (study / r["run_dir"] / "history.csv").is_file()
                 for row in read_history(study / r["run_dir"] / "history.csv"))
    return {"trained": trained, "failed": failed}


def hand_points(epochs: int, data: set[str]) -> list[dict]:
    """The hand-found runs of experiments/results/ that trained `epochs` epochs to the end, on the data whose
    fingerprint is in `data` (the studies': a run on another copy of CIFAR-10 was tested on other images)."""
    points = []
    for folder in make_results_doc.run_folders():
        r = make_results_doc.row(folder)
        if r["complete"] and r["epochs"] == epochs and r["data"] in data:
            points.append({"name": r["run"], "source": "hand", "params": r["params"], "macs": r["macs"],
                           "epochs": r["epochs"], "held_out": None, "test": r["final"], "study_front": None,
                           "seconds": r["wall"], "test_images": 10_000, "data": r["data"]})
    return points


def front(points: list[dict], cost: str) -> list[dict]:
    from archdsl.analysis.pareto import pareto_front
    return pareto_front(points, lambda p: p[cost], lambda p: p["test"])


def chart(points: list[dict], cost: str, name: str) -> str:
    from archdsl.render.charts import COLOURS, Point, Series, scatter_chart
    groups = [Series(label, [Point(p[cost], p["test"], p["name"]) for p in points if p["source"] == source], colour)
              for source, label, colour in (("tune", "archdsl tune trials", COLOURS[0]),
                                            ("hand", "hand-found", COLOURS[1]))]
    steps = [(p[cost], p["test"]) for p in front(points, cost)]
    return str(scatter_chart([g for g in groups if g.points], title=f"test accuracy against {name}",
                             x_label=name, y_label="test accuracy", front=steps, x_format=lambda v: f"{v:,.0f}",
                             y_format=lambda v: f"{v:.3f}", width=720, height=400)) + "\n"


def document(studies: list[tuple[dict, list[dict], dict]], points: list[dict]) -> str:
    lines = ["# The Pareto front: test accuracy against params and MACs", "",
             "Written by `python experiments/scripts/make_pareto_doc.py` from experiments/tunes/ (each study's "
             "leaderboard and its trials' run files) and experiments/results/ (the hand-found runs of the same "
             "length); the script's docstring says which accuracy is which. Every model is shown at its final "
             "epoch's test accuracy; the fronts are drawn over all of them.", ""]
    for board, trials, cost in studies:
        duration = make_results_doc._duration
        plural = "" if len(trials) == 1 else "s"
        failed = (f", and {duration(cost['failed'])} of the epochs that failed trials trained before they failed "
                  "(a trial that continued a failed run counts its epochs in its own time)" if cost["failed"] else "")
        lines += [f"Study `{board['study']}` (spec `{board['spec']}`): {len(trials)} complete trial{plural} of "
                  f"{trials[0]['epochs'] if trials else 0} epochs, tested on "
                  f"{trials[0]['test_images'] if trials else 0:,} test images; counts {json.dumps(board['counts'])}. "
                  f"Training time in all, {duration(cost['trained'] + cost['failed'])}: the complete and pruned "
                  f"trials' own wall times, {duration(cost['trained'])}{failed}.", ""]
    hand = [p for p in points if p["source"] == "hand"]
    if hand:
        lines += [f"Hand-found: the {len(hand)} runs of experiments/results/ that trained {hand[0]['epochs']} epochs "
                  "on the same data as the trials (all 50,000 training images; the 10,000 test images validated "
                  "every epoch).", ""]
    lines += ["![test accuracy against params](pages/pareto_params.svg)", "",
              "![test accuracy against MACs](pages/pareto_macs.svg)", "",
              "| model | from | params | MACs | held-out acc. | test acc. | front: params | front: MACs "
              "| study's front (held out) |",
              "|---|---|---:|---:|---:|---:|---|---|---|"]
    fronts = {cost: {id(p) for p in front(points, cost)} for cost in ("params", "macs")}
    for p in sorted(points, key=lambda p: (-p["test"], p["params"])):
        held = "" if p["held_out"] is None else f"{p['held_out']:.2%}"
        study = "" if p["study_front"] is None else ", ".join(
            k for k, on in (("params", p["study_front"]["params"]), ("MACs", p["study_front"]["macs"])) if on) or "no"
        lines.append(f"| {p['name']} | {p['source']} | {p['params']:,} | {p['macs']:,} | {held} | {p['test']:.2%} "
                     f"| {'yes' if id(p) in fronts['params'] else ''} | {'yes' if id(p) in fronts['macs'] else ''} "
                     f"| {study} |")
    return "\n".join(lines) + "\n"


def outputs() -> dict[Path, str]:
    studies, points = [], []
    for study in sorted(p for p in TUNES.iterdir() if (p / "leaderboard.json").is_file()) if TUNES.is_dir() else []:
        trials = trial_points(study)
        board = json.loads((study / "leaderboard.json").read_text())
        studies.append((board, trials, spent(study, board)))
        points += trials
    epochs = {p["epochs"] for p in points}
    if len(epochs) > 1:
        raise SystemExit(f"the kept studies trained {sorted(epochs)} epochs: one length a page")
    points += hand_points(epochs.pop(), {p["data"] for p in points}) if epochs else []
    return {DOC: document(studies, points), CHARTS["params"]: chart(points, "params", "params"),
            CHARTS["macs"]: chart(points, "macs", "MACs")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if experiments/pareto.md is out of date")
    parser.add_argument("--keep", type=Path, metavar="TUNE_FOLDER", help="first copy a tune folder's study in")
    args = parser.parse_args()
    if args.keep:
        print(f"kept {_shown(keep(args.keep))}")
    if not (TUNES.is_dir() and any((p / "leaderboard.json").is_file() for p in TUNES.iterdir())):
        print("no study is kept in experiments/tunes/: keep one first (--keep TUNE_FOLDER)", file=sys.stderr)
        return 1
    written = outputs()
    if args.check:
        stale = [p for p, text in written.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
        for p in stale:
            print(f"{_shown(p)} is out of date: run python experiments/scripts/make_pareto_doc.py",
                  file=sys.stderr)
        return 1 if stale else 0
    for path, text in written.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {_shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
