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
import re
import shlex
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
# The folders of the machine the runs were made on, and how a user names them from the repository's root:
# the runs folder (`--out`, `--resume`) is `runs`, the shared data the README's `--data ../shared/data/...`,
# and the re-encoded copy of Target 1 the folder reencode_jpeg.py was told to write, `cifar10-q50`. The
# pages show commands and data this way; metrics.json keeps them as run (it is a record).
MACHINE_PATHS = (("/root/archdsl-runs", "runs"), ("/work/runs_bg", "runs"), ("/work/shared/data", "../shared/data"),
                 ("/root/archdsl-data", "."))
ABSOLUTE = re.compile(r"(?<![\w.~])/(?:work|tmp|root|home)/")  # a machine's folder, in a page's text
SPEC_WRITTEN = re.compile(r"specs/[\w.-]+\.arch")  # how the commands name a spec (run from the root, then)


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
    commands = [user_command(c, folder) for c in commands]
    return {"run": folder.name, "spec": metrics["spec"], "params": analysis.params,
            "macs": analysis.macs, "epochs": len(history), "planned": metrics["epochs"],
            "complete": metrics["complete"] and len(history) == metrics["epochs"],
            "wall": wall_seconds, "images_per_second": metrics["images_per_second"],
            "best": accuracies[best], "best_epoch": int(history[best]["epoch"]), "final": accuracies[-1],
            "reached": reached, "commands": commands, "data": metrics["data"]["fingerprint"]}


def user_path(path: str) -> str:
    """A path of the machine the runs were made on as a user names it from the repository's root
    (MACHINE_PATHS); any other path as it is."""
    for machine, user in MACHINE_PATHS:
        if path == machine or path.startswith(machine + "/"):
            rest = path[len(machine):].strip("/")
            if not rest:
                return user
            return rest if user == "." else f"{user}/{rest}"
    return path


def user_spec(written: str, folder: Path) -> str:
    """The spec a command names (`specs/X.arch`, where it was when the run started) as it is now: the file at
    that name or under experiments/ if it is still the one the run trained, byte for byte, else the run's own
    copy, experiments/results/<run>/spec.arch (the spec was edited or renamed since)."""
    trained = (folder / "spec.arch").read_bytes()
    for candidate in (ROOT / written, EXPERIMENTS / written):
        if candidate.is_file() and candidate.read_bytes() == trained:
            return candidate.relative_to(ROOT).as_posix()
    return (folder / "spec.arch").relative_to(ROOT).as_posix()


def user_command(line: str, folder: Path) -> str:
    """A recorded command as a user would run it from the repository's root: the spec where it is now, the
    machine's folders as MACHINE_PATHS names them (`--out runs`, `--resume runs/<spec>/<time>`). A comment
    after `  # ` is kept. A path still absolute after that is an error: MACHINE_PATHS needs its folder."""
    command, hash_, comment = line.partition("  # ")
    words = [user_spec(w, folder) if SPEC_WRITTEN.fullmatch(w) else user_path(w) for w in shlex.split(command)]
    shown = shlex.join(words) + (f"  # {comment}" if hash_ else "")
    if any(w.startswith("/") for w in words) or ABSOLUTE.search(shown):
        raise SystemExit(f"{folder.name}: the command `{line}` names a folder of the machine it ran on; "
                         "add it to MACHINE_PATHS in experiments/scripts/make_results_doc.py")
    return shown


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
    lines += ["", ("The commands, as you would run them from the repository's root (a resumed run lists each command "
                   "and the epoch it started from; metrics.json keeps them exactly as run):"), ""]
    for r in rows:
        lines += [f"- {r['run']}:", "  ```", *(f"  {c}" for c in r["commands"] or ["(not recorded)"]), "  ```"]
    return "\n".join(lines)


def render(doc: str, rows: list[dict]) -> str:
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table(rows)}\n{END}{tail}"


def write_reports(folders: list[Path]) -> None:
    """Each run's page, as `archdsl report experiments/results/<run>/spec.arch experiments/results/<run>` writes
    it, but with the run's data named as a user names it (`user_path`, in memory: metrics.json is not changed)."""
    from archdsl import analyze, load
    from archdsl.render.report import build, write_markdown
    from archdsl.runs.reader import read_run

    REPORTS.mkdir(exist_ok=True)
    os.chdir(ROOT)  # the reports name the files relative to the repository
    for folder in folders:
        run_dir = folder.relative_to(ROOT)
        out = REPORTS.relative_to(ROOT) / f"{run_dir.name}.md"
        # these files are this script's output (archdsl report itself never overwrites a file)
        out.unlink(missing_ok=True)
        shutil.rmtree(REPORTS / f"{run_dir.name}_files", ignore_errors=True)
        model = load(str(run_dir / "spec.arch"))
        run = read_run(str(run_dir))
        data = run.metrics.get("data")
        if isinstance(data, dict) and isinstance(data.get("source"), str):
            run.metrics["data"] = {**data, "source": user_path(data["source"])}
        write_markdown(build(model, analyze(model), run, "md"), out)
        print(f"wrote {out}")


def absolute_paths() -> list[str]:
    """`file:line: text` of each line of experiments/README.md and the pages that names a folder of a machine."""
    found = []
    for path in [DOC, *sorted(REPORTS.glob("*.md"))]:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if ABSOLUTE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if experiments/README.md's table is out of date")
    args = parser.parse_args()
    folders = run_folders()
    doc = DOC.read_text()
    new = render(doc, [row(f) for f in folders])
    if args.check:
        status = 0
        if new != doc:
            print("experiments/README.md is out of date: run python experiments/scripts/make_results_doc.py", file=sys.stderr)
            status = 1
        for line in absolute_paths():
            print(f"{line}\n  names a folder of the machine the runs were made on: write it as a user would run it "
                  "(see MACHINE_PATHS)", file=sys.stderr)
            status = 1
        return status
    DOC.write_text(new)
    write_reports(folders)
    return 0


if __name__ == "__main__":
    sys.exit(main())
