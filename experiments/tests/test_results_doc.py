"""experiments/README.md's table is what experiments/scripts/make_results_doc.py writes from experiments/results/,
and each kept run is whole.

A kept run is three files copied from a run directory: spec.arch, metrics.json, history.csv. They are
checked against each other (metrics.json's summary against the history's rows, the params the run
recorded from Keras against the spec's analysis), so a hand-edited number or a mismatched copy fails.
Regenerate with `python experiments/scripts/make_results_doc.py` and read the diff.
"""
import csv
import json
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[1]
RUNS = sorted(p for p in (EXPERIMENTS / "results").glob("*") if p.is_dir())


@pytest.fixture(scope="module")
def generator(load_script):
    return load_script("make_results_doc")


def test_the_table_is_up_to_date(generator):
    doc = (EXPERIMENTS / "README.md").read_text(encoding="utf-8")
    rows = [generator.row(folder) for folder in generator.run_folders()]
    assert generator.render(doc, rows) == doc, "run python experiments/scripts/make_results_doc.py"
    assert len(rows) == len(RUNS) >= 1
    for row in rows:
        assert (EXPERIMENTS / "pages" / f"{row['run']}.md").is_file(), f"no report for {row['run']}"


@pytest.mark.parametrize("folder", RUNS, ids=lambda p: p.name)
def test_a_kept_run_agrees_with_itself(folder):
    from archdsl import load
    from archdsl.analysis import analyze

    metrics = json.loads((folder / "metrics.json").read_text())
    with open(folder / "history.csv", newline="") as f:
        history = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in history] == list(range(1, len(history) + 1))  # each epoch once
    assert metrics["epochs_done"] == len(history)
    accuracies = [float(r["val_accuracy"]) for r in history]
    assert metrics["best_val_accuracy"] == pytest.approx(max(accuracies), abs=1e-7)
    assert metrics["final_val_accuracy"] == pytest.approx(accuracies[-1], abs=1e-7)
    assert metrics["wall_seconds"] == pytest.approx(sum(float(r["seconds"]) for r in history), abs=0.01)
    assert metrics["data"]["test_images"] == 10_000 and metrics["data"]["train_images"] == 50_000  # the real split
    assert metrics["params"] == analyze(load(str(folder / "spec.arch"))).params  # Keras's count = the analysis
