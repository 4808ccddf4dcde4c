"""archdsl/runs/__init__.py without TensorFlow: how a resumed run's history.csv is checked against its state.

The state (checkpoint/state.json) is the truth; history.csv is written from it one step before the
commit point, so it may be one epoch ahead or behind after a kill. Anything else is damage.
"""
from __future__ import annotations

from archdsl import runs


def row(epoch: int) -> dict:
    return {"epoch": epoch, "lr": 0.01, "loss": 2.0 / epoch, "accuracy": 0.1 * epoch, "val_loss": 1.9 / epoch,
            "val_accuracy": 0.09 * epoch, "seconds": 10.5, "train_seconds": 9.0}


def state(epochs: int) -> dict:
    return {"epoch": epochs, "history": [row(e) for e in range(1, epochs + 1)]}


def check(tmp_path, csv_text: str | None, epochs: int) -> tuple[list[str], runs.RunDir]:
    run = runs.RunDir(tmp_path)
    if csv_text is not None:
        run.history.write_text(csv_text)
    warnings: list[str] = []
    runs.check_history(run, state(epochs), warnings.append)
    return warnings, run


def test_history_in_step_or_one_epoch_ahead_is_left_alone(tmp_path):
    for written, resumed in ((3, 3), (3, 2)):  # killed after or before the commit point
        text = runs.history_csv(state(written)["history"])
        warnings, run = check(tmp_path, text, resumed)
        assert warnings == [] and run.history.read_text() == text


def test_history_one_epoch_behind_is_named(tmp_path):
    """What a file cut at a line end looks like (or a fallback to an older checkpoint's state)."""
    warnings, run = check(tmp_path, runs.history_csv(state(2)["history"]), 3)
    assert warnings == [f"{run.history} is damaged (its rows differ from the checkpoint's); kept as "
                        "history.csv.damaged and rewritten from the checkpoint of epoch 3"]


def test_history_rows_that_differ_are_named_kept_and_rewritten(tmp_path):
    good = runs.history_csv(state(3)["history"])
    damaged = good.replace("0.18", "0.81")  # epoch 2's val_accuracy changed
    assert damaged != good
    warnings, run = check(tmp_path, damaged, 3)
    assert warnings == [f"{run.history} is damaged (its rows differ from the checkpoint's); kept as "
                        "history.csv.damaged and rewritten from the checkpoint of epoch 3"]
    assert run.history.read_text() == good
    assert (tmp_path / "history.csv.damaged").read_text() == damaged


def test_history_two_epochs_behind_is_damage(tmp_path):
    warnings, run = check(tmp_path, runs.history_csv(state(1)["history"]), 3)
    assert len(warnings) == 1 and run.history.read_text() == runs.history_csv(state(3)["history"])


def test_a_second_damaged_history_does_not_replace_the_first(tmp_path):
    (tmp_path / "history.csv.damaged").write_text("first\n")
    check(tmp_path, "second\n", 2)
    assert (tmp_path / "history.csv.damaged").read_text() == "first\n"
    assert (tmp_path / "history.csv.damaged-2").read_text() == "second\n"


def test_missing_history_is_named_and_written(tmp_path):
    warnings, run = check(tmp_path, None, 2)
    assert warnings == [f"{run.history} is damaged (it is missing); rewritten from the checkpoint of epoch 2"]
    assert runs.read_history(run.history)[1]["val_accuracy"] == 0.18


def test_no_history_before_the_first_epoch_is_normal(tmp_path):
    warnings, run = check(tmp_path, None, 0)
    assert warnings == [] and not run.history.exists()


def test_unreadable_history_bytes(tmp_path):
    run = runs.RunDir(tmp_path)
    run.history.write_bytes(b"\xff\xfe\x00garbage")
    warnings: list[str] = []
    runs.check_history(run, state(1), warnings.append)
    assert "history.csv is damaged (it cannot be read: " in warnings[0]
