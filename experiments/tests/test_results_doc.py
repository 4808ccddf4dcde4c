"""experiments/README.md's table is what experiments/scripts/make_results_doc.py writes from experiments/results/,
and each kept run is whole.

A kept run is three files copied from a run directory: spec.arch, metrics.json, history.csv. They are
checked against each other (metrics.json's summary against the history's rows, the params the run
recorded from Keras against the spec's analysis), so a hand-edited number or a mismatched copy fails.
Regenerate with `python experiments/scripts/make_results_doc.py` and read the diff.

The README and the pages show commands and data as a user would run them from the repository's root
(`--out runs`, `--resume runs/<spec>/<time>`, `--data ../shared/data/...`), never the folders of the
machine the runs were made on, which metrics.json keeps.
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


def test_no_page_names_a_folder_of_the_machine_the_runs_were_made_on(generator):
    pages = [EXPERIMENTS / "README.md", *sorted((EXPERIMENTS / "pages").glob("*.md"))]
    assert len(pages) == len(RUNS) + 1
    for page in pages:
        for prefix in ("/work/", "/tmp/", "/root/", "/home/"):
            assert prefix not in page.read_text(encoding="utf-8"), f"{page.name} names {prefix}"
    assert generator.absolute_paths() == []


def test_the_check_finds_an_absolute_path(generator, tmp_path, monkeypatch):
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "x.md").write_text("run `experiments/results/x`\n\n    archdsl train --resume /root/archdsl-runs/x/1\n")
    (tmp_path / "README.md").write_text("data from ../shared/data/cifar10-jpg.tar.gz, not /work/shared/data/\n")
    monkeypatch.setattr(generator, "REPORTS", pages)
    monkeypatch.setattr(generator, "ROOT", tmp_path)
    monkeypatch.setattr(generator, "DOC", tmp_path / "README.md")
    assert generator.absolute_paths() == ["README.md:1: data from ../shared/data/cifar10-jpg.tar.gz, not /work/shared/data/",
                                          "pages/x.md:3: archdsl train --resume /root/archdsl-runs/x/1"]


# Commands of kept runs, as metrics.json (or command.txt) has them, and as a user runs them: worked out by hand
# from the MACHINE_PATHS the script names and where each spec is now.
USER_COMMANDS = [
    ("fast85w", "archdsl train specs/fast85w.arch --data ../shared/data/cifar10-jpg.tar.gz --out /root/archdsl-runs",
     "archdsl train experiments/specs/fast85w.arch --data ../shared/data/cifar10-jpg.tar.gz --out runs"),
    ("fast85", "archdsl train --resume /root/archdsl-runs/fast85/20261125-192245  # from epoch 6 (the first process ended)",
     "archdsl train --resume runs/fast85/20261125-192245  # from epoch 6 (the first process ended)"),
    # specs/best.arch was edited since the run (its schedule): the run's own copy is what it trained
    ("best", "archdsl train specs/best.arch --data ../shared/data/cifar10-jpg.tar.gz --out /root/archdsl-runs",
     "archdsl train experiments/results/best/spec.arch --data ../shared/data/cifar10-jpg.tar.gz --out runs"),
    ("fast85w_gelu_wh_aflin_q50",
     "archdsl train specs/fast85w_gelu_wh_aflin.arch --data /root/archdsl-data/cifar10-q50 --out /root/archdsl-runs/q50",
     "archdsl train experiments/results/fast85w_gelu_wh_aflin_q50/spec.arch --data cifar10-q50 --out runs/q50"),
]


@pytest.mark.parametrize("run, recorded, shown", USER_COMMANDS, ids=[c[0] for c in USER_COMMANDS])
def test_a_command_is_shown_as_a_user_runs_it(generator, run, recorded, shown):
    assert generator.user_command(recorded, EXPERIMENTS / "results" / run) == shown


@pytest.mark.parametrize("out", ["/home/me/runs", "/data/runs"])
def test_an_unknown_machine_folder_stops_the_generator(generator, out):
    with pytest.raises(SystemExit, match="add it to MACHINE_PATHS"):
        generator.user_command(f"archdsl train specs/t90w.arch --out {out}", EXPERIMENTS / "results" / "t90w")


def test_the_pages_name_the_data_as_the_readme_does():
    readme = (EXPERIMENTS / "README.md").read_text(encoding="utf-8")
    assert "--data ../shared/data/cifar10-jpg.tar.gz" in readme
    page = (EXPERIMENTS / "pages" / "best.md").read_text(encoding="utf-8")
    assert "· data **../shared/data/cifar10-jpg.tar.gz (50,000 training / 10,000 test images)** ·" in page
    q50 = (EXPERIMENTS / "pages" / "fast85w_gelu_wh_aflin_q50.md").read_text(encoding="utf-8")
    assert "· data **cifar10-q50 (50,000 training / 10,000 test images)** ·" in q50
