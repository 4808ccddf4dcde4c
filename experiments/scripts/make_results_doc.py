#!/usr/bin/env python3
"""Write the table of training results in experiments/README.md, and each run's report, from experiments/results/.

    python experiments/scripts/make_results_doc.py           # rewrite the table and experiments/pages/<run>.md
    python experiments/scripts/make_results_doc.py --check   # exit 1 if the table is not what this writes

Each folder experiments/results/<run>/ holds what `archdsl train` left in a run directory: spec.arch,
metrics.json and history.csv (copied by hand when a run ends or is cut short). Every number in
the table comes from those files (params and MACs from the spec's analysis, the rest from the
run's own history), so the doc cannot claim what was not measured. The text around the table
is written by hand; this script only replaces what lies between the two markers.
The reports (curves, layer table) come from `archdsl report` and need no TensorFlow.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: experiments/scripts/ is two levels down
sys.path.insert(0, str(ROOT))
EXPERIMENTS = ROOT / "experiments"
RESULTS = EXPERIMENTS / "results"
DOC = EXPERIMENTS / "README.md"
REPORTS = EXPERIMENTS / "pages"
BEGIN = "<!-- results table: written by experiments/scripts/make_results_doc.py -->"
END = "<!-- end of results table -->"
TARGET = 0.856  # the seed's best test accuracy, issue 8's time-to-accuracy bar


def run_folders() -> list[Path]:
    return sorted(p for p in RESULTS.iterdir() if (p / "metrics.json").is_file()) if RESULTS.is_dir() else []


def row(folder: Path) -> dict:
    """One run's numbers, from its files only."""
    from archdsl import analyze, load
    from archdsl.runs import read_history

    metrics = json.loads((folder / "metrics.json").read_text())
    history = read_history(folder / "history.csv")
    analysis = analyze(load(str(folder / "spec.arch")))
    accuracies = [r["val_accuracy"] for r in history]
    best = max(range(len(history)), key=lambda i: accuracies[i])
    reached = next((int(r["epoch"]) for r in history if r["val_accuracy"] >= TARGET), None)
    wall_seconds = sum(r["seconds"] for r in history)  # training, validation and checkpoints
    commands = [c["command"] + (f"  # from epoch {c['from_epoch']}" if c["from_epoch"] else "")
                for c in metrics.get("commands", [])]
    if not commands and (folder / "command.txt").is_file():  # runs started before metrics.json kept them
        commands = (folder / "command.txt").read_text().strip().splitlines()
    return {"run": folder.name, "spec": metrics["spec"], "params": analysis.params,
            "macs": analysis.macs, "epochs": len(history), "planned": metrics["epochs"],
            "complete": metrics["complete"] and len(history) == metrics["epochs"],
            "wall": wall_seconds, "images_per_second": metrics["images_per_second"],
            "best": accuracies[best], "best_epoch": int(history[best]["epoch"]), "final": accuracies[-1],
            "reached": reached, "commands": commands}


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def table(rows: list[dict]) -> str:
    lines = ["| run | params | MACs | epochs | wall time | images/s | best test acc. (epoch) | final test acc. "
             f"| first epoch ≥ {TARGET:.1%} |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        epochs = f"{r['epochs']} of {r['planned']}" + ("" if r["complete"] else ", **cut short**")
        lines.append(f"| [{r['run']}](pages/{r['run']}.md) | {r['params']:,} | {r['macs'] / 1e6:.1f}M | {epochs} "
                     f"| {_duration(r['wall'])} | {r['images_per_second']:.0f} | {r['best']:.2%} ({r['best_epoch']}) "
                     f"| {r['final']:.2%} | {r['reached'] or '–'} |")
    lines += ["", "The commands, exactly as run (a resumed run lists each command and the epoch it started from):", ""]
    for r in rows:
        lines += [f"- {r['run']}:", "  ```", *(f"  {c}" for c in r["commands"] or ["(not recorded)"]), "  ```"]
    return "\n".join(lines)


def render(doc: str, rows: list[dict]) -> str:
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table(rows)}\n{END}{tail}"


def write_reports(folders: list[Path]) -> None:
    from archdsl.cli import main

    REPORTS.mkdir(exist_ok=True)
    os.chdir(ROOT)  # the reports name the files relative to the repository
    for folder in folders:
        run = folder.relative_to(ROOT)
        # these files are this script's output (archdsl report itself never overwrites a file)
        (REPORTS / f"{run.name}.md").unlink(missing_ok=True)
        shutil.rmtree(REPORTS / f"{run.name}_files", ignore_errors=True)
        status = main(["report", str(run / "spec.arch"), str(run), "-o", str(REPORTS.relative_to(ROOT) / f"{run.name}.md")])
        if status:
            sys.exit(status)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if experiments/README.md's table is out of date")
    args = parser.parse_args()
    folders = run_folders()
    doc = DOC.read_text()
    new = render(doc, [row(f) for f in folders])
    if args.check:
        if new != doc:
            print("experiments/README.md is out of date: run python experiments/scripts/make_results_doc.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new)
    write_reports(folders)
    return 0


if __name__ == "__main__":
    sys.exit(main())
