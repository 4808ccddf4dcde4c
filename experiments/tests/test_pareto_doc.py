"""experiments/scripts/make_pareto_doc.py: the fronts and the table against fronts worked out by hand, and
`--keep` copying a tune folder's study (its leaderboard, and its trained trials' three run files) and nothing
else, never over a kept one."""
import json
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[1] / "results"


@pytest.fixture(scope="module")
def pareto(load_script):
    return load_script("make_pareto_doc")


def point(name, params, macs, test, source="tune", held_out=0.5, study_front=(False, False)):
    return {"name": name, "source": source, "params": params, "macs": macs, "epochs": 10,
            "held_out": None if source == "hand" else held_out,
            "test": test, "study_front": None if source == "hand" else dict(zip(("params", "macs"), study_front)),
            "seconds": 60.0, "test_images": 10_000}


def test_fronts_and_table_by_hand(pareto):
    # by params: a (100) and b (200, better) are on the front; c costs more than a and is worse; d costs most,
    # below b. By MACs the order differs: c is the cheapest, so it is on that front, and d beats b there.
    a, b = point("a", 100, 5_000, 0.80, study_front=(True, False)), point("b", 200, 9_000, 0.85)
    c, d = point("c", 150, 1_000, 0.79), point("d", 300, 8_000, 0.86, source="hand")
    points = [a, b, c, d]
    assert pareto.front(points, "params") == [a, b, d]
    assert pareto.front(points, "macs") == [c, a, d]
    board = {"study": "s", "spec": "s.arch", "counts": {"complete": 3}}
    cost = {"trained": 180.0, "failed": 0.0}
    rows = [line for line in pareto.document([(board, [a, b, c], cost)], points).splitlines()
            if line.startswith("| ")]
    assert rows[1:] == [
        "| d | hand | 300 | 8,000 |  | 86.00% | yes | yes |  |",
        "| b | tune | 200 | 9,000 | 50.00% | 85.00% | yes |  | no |",
        "| a | tune | 100 | 5,000 | 50.00% | 80.00% | yes | yes | params |",
        "| c | tune | 150 | 1,000 | 50.00% | 79.00% |  | yes | no |"]


def test_keep_copies_a_study_and_never_over_one(pareto, tmp_path, monkeypatch):
    tune = tmp_path / "out" / "s"
    trials = [{"trial": 0, "state": "complete", "run_dir": "trials/0"}, {"trial": 1, "state": "failed",
                                                                         "run_dir": "trials/1"}]
    (tune / "leaderboard.json").parent.mkdir(parents=True)
    (tune / "leaderboard.json").write_text(json.dumps({"study": "s", "trials": trials}))
    for n in (0, 1):
        run = tune / "trials" / str(n)
        (run / "checkpoint").mkdir(parents=True)
        for name in ("spec.arch", "metrics.json", "history.csv", "best.keras", "checkpoint/state.json"):
            (run / name).write_text(f"{n} {name}")
    monkeypatch.setattr(pareto, "TUNES", tmp_path / "tunes")
    kept = pareto.keep(tune)
    files = sorted(p.relative_to(kept).as_posix() for p in kept.rglob("*") if p.is_file())
    assert files == ["leaderboard.json", "trials/0/history.csv", "trials/0/metrics.json", "trials/0/spec.arch",
                     "trials/1/history.csv"]  # a failed trial: only the epochs it trained
    assert (kept / "trials/0/metrics.json").read_text() == "0 metrics.json"
    with pytest.raises(SystemExit, match="exists"):
        pareto.keep(tune)
    assert (kept / "trials/0/spec.arch").read_text() == "0 spec.arch"


def test_the_training_time_counts_pruned_trials_and_the_epochs_of_failed_ones(pareto, tmp_path):
    # trial 0 continued trial 4's run: its 3600 s have trial 4's epochs already
    rows = [{"trial": 0, "state": "complete", "seconds": 3600.0, "run_dir": "trials/0",
             "continued_from": {"trial": 4, "epoch": 1}},
            {"trial": 1, "state": "pruned", "seconds": 1200.0, "run_dir": "trials/1"},
            {"trial": 2, "state": "failed", "seconds": None, "run_dir": "trials/2"},
            {"trial": 3, "state": "failed", "seconds": None, "run_dir": "trials/3"},  # failed before an epoch
            {"trial": 4, "state": "failed", "seconds": None, "run_dir": "trials/4"}]
    for n, text in ((2, "1,0.1,2.0,0.3,1.9,0.35,600.0\n2,0.1,1.5,0.5,1.4,0.55,300.0\n"),
                    (4, "1,0.1,2.0,0.3,1.9,0.35,500.0\n")):
        (tmp_path / f"trials/{n}").mkdir(parents=True)
        (tmp_path / f"trials/{n}/history.csv").write_text("epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds\n"
                                                          + text)
    board = {"study": "s", "spec": "s.arch", "counts": {"complete": 1}, "trials": rows}
    cost = pareto.spent(tmp_path, board)
    assert cost == {"trained": 4800.0, "failed": 900.0}
    text = pareto.document([(board, [point("a", 100, 5_000, 0.8)], cost)], [point("a", 100, 5_000, 0.8)])
    assert ("Training time in all, 1 h 35 min: the complete and pruned trials' own wall times, 1 h 20 min, and "
            "15 min of the epochs that failed trials trained before they failed (a trial that continued a failed "
            "run counts its epochs in its own time).") in text


def test_hand_found_runs_on_other_data_are_left_out(pareto):
    # fast85w_gelu_wh_aflin_q50 trained and was tested on a re-encoded copy of CIFAR-10 (its metrics.json names
    # cifar10-q50): it has no place beside trials tested on the shared copy, and only it is on its own copy
    def fingerprint(run):
        return json.loads((RESULTS / run / "metrics.json").read_text())["data"]["fingerprint"]
    shared, q50 = fingerprint("fast85w"), fingerprint("fast85w_gelu_wh_aflin_q50")
    names = {p["name"] for p in pareto.hand_points(10, {shared})}
    assert "fast85w" in names and "fast85w_gelu_wh_aflin_q50" not in names and len(names) == 28
    assert [p["name"] for p in pareto.hand_points(10, {q50})] == ["fast85w_gelu_wh_aflin_q50"]
