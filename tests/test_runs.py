"""archdsl/runs/__init__.py without TensorFlow: how a resumed run's history.csv is checked against its state.

The state (checkpoint/state.json) is the truth; history.csv is written from it one step before the
commit point, so it may be one epoch ahead or behind after a kill. Anything else is damage.
"""
from __future__ import annotations

import json

import pytest

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


# --- a run folder made by hand (no TensorFlow): what --resume, eval and report make of its damaged files ----

SPEC = """\
model tiny
input 16x16x3
classes 2
conv 3x3 4 same bn relu
gap
dense classes
softmax
train {
  batch 8
  epochs 3
}
"""
NESTED = "[" * 100_000 + "]" * 100_000  # json.loads: RecursionError, not ValueError


def write_state(path, epoch: int, epochs: int, data: str, model_bytes: bytes | None) -> dict:
    import hashlib

    state = {"format": runs.FORMAT, "spec": "tiny", "epoch": epoch, "epochs": epochs, "batch": 8, "passes": 1,
             "lr": 0.01, "complete": epoch >= epochs,
             "checkpoint": f"epoch-{epoch:04d}.keras" if epoch else None,
             "sha256": hashlib.sha256(model_bytes).hexdigest() if epoch else None,
             "settings": {"data": data, "data_dir": None, "limit": 16, "test_limit": 8, "seed": 0,
                          "precision": "fp32", "scale_lr": False, "batchnorm": "fused"},
             "data": {"source": data, "fingerprint": None, "train_images": 16, "test_images": 8,
                      "classes": ["dark", "light"]},
             "rng": {"seed": 0, "seed_generators": []},
             "best": {"epoch": 1 if epoch else None, "val_accuracy": 0.09 if epoch else None},
             "history": [row(e) for e in range(1, epoch + 1)]}
    path.write_text(json.dumps(state))
    return state


def hand_made_run(root, epochs_done: int = 2, epochs: int = 3) -> runs.RunDir:
    """A run folder as `archdsl train` leaves it after `epochs_done` epochs, with stand-in model files
    (so nothing here loads TensorFlow); its data folder does not exist."""
    from archdsl import loads

    run = runs.RunDir(root)
    run.checkpoint.mkdir(parents=True)
    run.spec.write_text(SPEC)
    run.resolved.write_text(loads(SPEC, str(run.spec)).model_dump_json(indent=1))
    data = str(root.parent / "no-such-data")
    for e in range(1, epochs_done + 1):
        run.epoch_model(e).write_bytes(f"model {e}".encode())
        write_state(run.epoch_state(e), e, epochs, data, f"model {e}".encode())
    write_state(run.state, epochs_done, epochs, data, f"model {epochs_done}".encode() if epochs_done else None)
    run.history.write_text(runs.history_csv(state(epochs_done)["history"]))
    run.best.write_bytes(b"not a zip")
    return run


def cli(*args) -> tuple[int, str, str]:
    """archdsl in-process: (status, stdout, stderr); an exception that is not archdsl's escapes (a traceback)."""
    import contextlib
    import io

    from archdsl.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in args])
    return status, out.getvalue(), err.getvalue()


def error_line(status: int, err: str) -> str:
    assert status not in (0, None), err
    lines = [line for line in err.splitlines() if "error[" in line]
    assert len(lines) == 1, err
    return lines[0]


def test_nested_state_falls_back_to_the_previous_epochs_state(tmp_path):
    run = hand_made_run(tmp_path / "run")
    run.state.write_text(NESTED)
    warnings: list[str] = []
    loaded = runs.load_state(run, warn=warnings.append)
    assert loaded["epoch"] == 2 and len(warnings) == 1
    assert f"corrupt checkpoint {run.state}: its JSON is nested too deeply to read" in warnings[0]
    assert "resuming from the checkpoint of epoch 2 instead" in warnings[0]


def test_nested_state_without_a_fallback_is_a_clear_error(tmp_path):
    run = hand_made_run(tmp_path / "run")
    for e in (1, 2):
        run.epoch_state(e).write_text(NESTED)
    run.state.write_text(NESTED)
    status, _, err = cli("train", "--resume", run.path)
    line = error_line(status, err)
    assert f"error[E523]: corrupt checkpoint {run.state}: " in line and "nested too deeply" in line
    status, _, err = cli("eval", run.path)
    assert "E523" in error_line(status, err) and str(run.state) in err


def test_nested_metrics_and_state_are_notes_in_a_report(tmp_path):
    run = hand_made_run(tmp_path / "run")
    run.metrics.write_text('{"a": ' + NESTED + "}")
    run.state.write_text(NESTED)
    status, out, err = cli("report", run.spec, run.path, "-o", tmp_path / "report.md")
    assert status == 0, err
    page = (tmp_path / "report.md").read_text()
    assert "metrics.json could not be read (" in page and "nested too deeply" in page


# hand-edited values of state.json: (key, value, what the error must name); in every state file of the run,
# so that no intact one is left to fall back on
HAND_EDITS = [
    ("checkpoint", 5, "checkpoint is 5"),
    ("checkpoint", ["a"], "checkpoint is a list"),
    ("history", [1, 2], "history.0 is 1"),
    ("epochs", "3", "epochs is '3'"),
    ("settings", {}, "it has no 'settings.data'"),
    ("settings", [], "settings is a list"),
    ("data", None, "data is None"),
    ("best", {"epoch": 1}, "it has no 'best.val_accuracy'"),
    ("rng", {"seed": 0, "seed_generators": [["x"]]}, "rng.seed_generators.0.0 is 'x'"),
    ("lr", float("inf"), "lr is inf"),
    ("complete", 1, "complete is 1"),
]


def edit_states(run: runs.RunDir, key, value) -> None:
    for path in [run.state] + [p for _, p in runs._epoch_states(run)]:
        state = json.loads(path.read_text())
        state[key] = value
        path.write_text(json.dumps(state))


@pytest.mark.parametrize("key, value, named", HAND_EDITS, ids=[f"{k}={v!r}" for k, v, _ in HAND_EDITS])
def test_a_hand_edited_state_is_e523_naming_the_field_before_any_training(tmp_path, key, value, named):
    run = hand_made_run(tmp_path / "run")
    (tmp_path / "no-such-data").mkdir()  # a resume that got past the state would load it (E4xx), or train
    edit_states(run, key, value)
    before = sorted((str(p), p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file())
    status, out, err = cli("train", "--resume", run.path, "--data-dir", tmp_path / "cache")
    line = error_line(status, err)
    assert f"error[E523]: corrupt checkpoint {run.state}: " in line and named in line, line
    assert sorted((str(p), p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file()) == before
    assert not (tmp_path / "cache").exists() and "resuming" not in out
    status, out, err = cli("eval", run.path, "--data-dir", tmp_path / "cache")
    line = error_line(status, err)
    assert f"error[E523]: corrupt checkpoint {run.state}: " in line and named in line, line


def test_a_hand_edited_state_json_falls_back_to_the_epochs_own_state(tmp_path):
    run = hand_made_run(tmp_path / "run")
    state = json.loads(run.state.read_text())
    run.state.write_text(json.dumps({**state, "epochs": "3"}))
    warnings: list[str] = []
    assert runs.load_state(run, warn=warnings.append)["epochs"] == 3
    assert warnings == [f"corrupt checkpoint {run.state}: epochs is '3': input should be a valid integer; "
                        "resuming from the checkpoint of epoch 2 instead"]


@pytest.mark.parametrize("edit, named", [
    ({"epoch": 3}, "history has 2 epochs, epoch is 3"),
    ({"epoch": 4, "history": [row(e) for e in range(1, 5)]}, "epoch is 4, more than epochs (3)"),
    ({"complete": True}, "complete is True, and epoch 2 of 3"),
    ({"history": [row(2), row(1)]}, "history.0 is epoch 2, not 1"),
])
def test_states_that_contradict_themselves_are_e523(tmp_path, edit, named):
    run = hand_made_run(tmp_path / "run")
    for path in [run.state] + [p for _, p in runs._epoch_states(run)]:
        path.write_text(json.dumps({**json.loads(path.read_text()), **edit}))
    with pytest.raises(runs.RunError) as info:
        runs.load_state(run)
    assert info.value.code == "E523" and named in info.value.message, info.value.message


# --- a resume reads only its own run folder's files, by names it derives (issue 27, item 7) -------------------

def test_a_checkpoint_named_outside_the_run_is_refused(tmp_path):
    """state.json naming another file, with that file's checksum: never loaded, whatever path it gives."""
    run = hand_made_run(tmp_path / "run")
    foreign = tmp_path / "foreign.keras"
    foreign.write_bytes(b"someone else's weights")
    run.epoch_state(1).unlink()  # only epoch 2's states are left: each names a file that is not epoch 2's
    for name in (str(foreign), "../../foreign.keras", "epoch-0001.keras"):
        for path in [run.state] + [p for _, p in runs._epoch_states(run)]:
            state = json.loads(path.read_text())
            source = foreign if "foreign" in name else run.epoch_model(1)
            state.update(checkpoint=name, sha256=__import__("hashlib").sha256(source.read_bytes()).hexdigest())
            path.write_text(json.dumps(state))
        with pytest.raises(runs.RunError) as info:
            runs.load_state(run)
        assert info.value.code == "E523", info.value.message
        assert f"checkpoint is {name!r}: not epoch-" in info.value.message, info.value.message


def test_a_checkpoint_path_written_into_the_state_is_not_used(tmp_path):
    foreign = tmp_path / "foreign.keras"
    foreign.write_bytes(b"someone else's weights")
    for done in (0, 2):  # a run before its first epoch has no checkpoint to load at all
        run = hand_made_run(tmp_path / f"run{done}", epochs_done=done)
        state = json.loads(run.state.read_text())
        run.state.write_text(json.dumps({**state, "checkpoint_path": str(foreign)}))
        loaded = runs.load_state(run)
        assert loaded.get("checkpoint_path") == (str(run.epoch_model(2)) if done else None)


def test_checkpoint_files_linked_outside_the_run_are_not_read(tmp_path):
    run = hand_made_run(tmp_path / "run")
    outside = tmp_path / "outside"
    outside.mkdir()
    # the model of epoch 2, moved out and linked back: same bytes, same checksum, but not the run's file
    run.epoch_model(2).rename(outside / "epoch-0002.keras")
    run.epoch_model(2).symlink_to(outside / "epoch-0002.keras")
    warnings: list[str] = []
    assert runs.load_state(run, warn=warnings.append)["epoch"] == 1
    assert f"{run.epoch_model(2)} is a link to a file outside the run folder" in warnings[0], warnings
    # a state file linked out (state.json, then every epoch file): not read either
    run.state.rename(outside / "state.json")
    run.state.symlink_to(outside / "state.json")
    for e in (1, 2):
        run.epoch_state(e).rename(outside / run.epoch_state(e).name)
        run.epoch_state(e).symlink_to(outside / run.epoch_state(e).name)
    with pytest.raises(runs.RunError) as info:
        runs.load_state(run)
    assert info.value.code == "E523" and f"{run.state} is a link to a file outside the run folder" in str(info.value)


@pytest.mark.parametrize("name", ["checkpoint", "tb", "tb/train", "spec.arch", "resolved.json"])
def test_a_run_whose_folders_or_files_link_outside_it_is_not_resumed(tmp_path, name):
    """Everything a resume writes goes into the run folder: checkpoint/ or tb/ linked elsewhere is refused."""
    run = hand_made_run(tmp_path / "run")
    (run.tb / "train").mkdir(parents=True)
    target = tmp_path / "outside" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    (run.path / name).rename(target)
    (run.path / name).symlink_to(target)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    status, _, err = cli("train", "--resume", run.path, "--data-dir", tmp_path / "cache")
    line = error_line(status, err)
    assert f"error[E521]: {run.path / name} is a link to " in line and "outside the run folder" in line, line
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_a_history_linked_outside_the_run_is_not_read_nor_written(tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_text("epoch\n1\n")
    run = runs.RunDir(tmp_path / "run")
    run.path.mkdir()
    run.history.symlink_to(outside)
    warnings: list[str] = []
    runs.check_history(run, state(2), warnings.append)
    assert warnings == [f"{run.history} is damaged (it is a link to a file outside the run folder); kept as "
                        "history.csv.damaged and rewritten from the checkpoint of epoch 2"]
    assert outside.read_text() == "epoch\n1\n" and not run.history.is_symlink()
    assert (run.path / "history.csv.damaged").is_symlink()


# --- the run's spec.arch edited after the run started (issue 27, item 10) --------------------------------------

def resume_warnings(run: runs.RunDir, tmp_path, *spec) -> list[str]:
    """The warnings of `train [SPEC] --resume` on the hand-made run (which then stops: its data folder does not
    exist)."""
    status, _, err = cli("train", *spec, "--resume", run.path, "--data-dir", tmp_path / "cache")
    assert "E400" in error_line(status, err)
    return [line for line in err.splitlines() if line.startswith("warning:")]


def record_first_command(run: runs.RunDir, command: str) -> None:
    for path in [run.state] + [p for _, p in runs._epoch_states(run)]:
        path.write_text(json.dumps({**json.loads(path.read_text()), "commands": [{"command": command,
                                                                                  "from_epoch": 0}]}))


@pytest.mark.parametrize("edit, why", [
    (("conv 3x3 4 same", "conv 3x3 6 same"), "it describes another model or recipe"),
    (("epochs 3", "epochs 5"), "it describes another model or recipe"),  # no --epochs on the first command line
    (("gap", "gapp"), "it is not a valid spec any more"),
])
def test_an_edited_spec_copy_is_named_on_resume(tmp_path, edit, why):
    run = hand_made_run(tmp_path / "run")
    record_first_command(run, "archdsl train tiny.arch --limit 16 --test-limit 8")
    run.spec.write_text(SPEC.replace(*edit))
    assert resume_warnings(run, tmp_path) == [
        f"warning: {run.spec} differs from {run.resolved} ({why}): resuming with resolved.json, the model the run "
        f"has trained so far; the edit is not applied (to train the edited spec, start a new run: archdsl train "
        f"{run.spec})"]


def test_a_spec_copy_that_means_the_same_resumes_without_a_word(tmp_path):
    run = hand_made_run(tmp_path / "run")
    run.spec.write_text("# a comment added\n" + SPEC.replace("conv 3x3 4 same", "conv   3x3  4  same  "))
    assert resume_warnings(run, tmp_path) == []
    # an override given when the run started is part of resolved.json: the spec's own value never counted
    record_first_command(run, "archdsl train tiny.arch --epo 3")  # argparse takes a unique prefix of a flag
    run.spec.write_text(SPEC.replace("epochs 3", "epochs 7"))
    assert resume_warnings(run, tmp_path) == []



def test_a_spec_saved_with_a_byte_order_mark_resumes_without_a_word(tmp_path):
    """`train` copies the user's spec byte for byte, with the byte order mark a Windows editor writes first
    (EF BB BF); the mark is no edit, of the run's copy nor of the user's file named beside --resume."""
    from archdsl.runs.reader import read_run

    run = hand_made_run(tmp_path / "run")
    with_mark = b"\xef\xbb\xbf" + SPEC.encode("utf-8")
    run.spec.write_bytes(with_mark)
    user = tmp_path / "tiny.arch"
    user.write_bytes(with_mark)
    assert resume_warnings(run, tmp_path) == []
    assert resume_warnings(run, tmp_path, user) == []
    user.write_bytes(SPEC.encode("utf-8"))  # the same spec saved without the mark: the same text
    assert resume_warnings(run, tmp_path, user) == []
    user.write_bytes(with_mark.replace(b"conv 3x3 4 same", b"conv 3x3 6 same"))  # an edit still is one
    assert resume_warnings(run, tmp_path, user) == [
        f"warning: {user} differs from the run's spec.arch; resuming with the run's copy"]
    # a report of a run that says nothing of its epochs takes them from its spec.arch, mark and all
    run.state.unlink()
    run.resolved.unlink()
    assert read_run(str(run.path)).planned_epochs == 3

# --- report: an accuracy that is no fraction is not shown as "inf %" (issue 27, item 16 part) ----------------

def test_accuracies_that_are_not_fractions_are_refused_in_a_report(tmp_path):
    run = hand_made_run(tmp_path / "run")
    metrics = {"epochs": 3, "epochs_done": 2, "best_epoch": 1, "best_val_accuracy": 1e308,
               "final_val_accuracy": -0.5}
    run.metrics.write_text(json.dumps(metrics))
    rows = state(2)["history"]
    rows[1]["accuracy"] = 1e308
    run.history.write_text(runs.history_csv(rows))
    status, _, err = cli("report", run.spec, run.path, "-o", tmp_path / "report.md")
    assert status == 0, err
    page = (tmp_path / "report.md").read_text().replace("\\_", "_")  # Markdown escapes the underscores
    assert "inf" not in page and "1e+308 %" not in page
    assert "metrics.json: best_val_accuracy is 1e+308, not a fraction (0 to 1)" in page
    assert "metrics.json: final_val_accuracy is -0.5, not a fraction (0 to 1)" in page
    assert "history.csv: accuracies that are not fractions (0 to 1) were left out: line 3 accuracy '1e+308'" in page
    # the summary falls back on history.csv, as for a value that is not a number
    assert "| best val accuracy (test split) | 18.00 % | epoch 2 |" in page, page
