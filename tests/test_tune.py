"""archdsl tune: a tiny design space tuned on a few hundred CIFAR-10 images.

One tune is shared by most tests (the module fixture `tuned`): started in a worker process, SIGKILLed while
its second trained trial runs, then resumed in this process. Its leaderboard is checked against the run
directories' own files (metrics.json, written by Keras' training), its parameter counts against hand counts,
best.arch against `archdsl check`. Two worker processes then share one SQLite study (and, with the
PostgreSQL server binaries, one PostgreSQL study); a threshold pruner prunes a trial; bad input is refused
with its code, before TensorFlow is imported.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from postgres_cluster import postgres_url  # noqa: F401 - a fixture
from test_train import cli_command, cli_env

from archdsl.cli import main

optuna = pytest.importorskip("optuna")

ROOT = Path(__file__).resolve().parent.parent
WAIT = 150  # s for a worker process: TensorFlow's start-up, the data, a few trials of a second or two

# 6 combinations; w=32 breaks the assert (params 3,370 and 3,818), so 4 feasible. Hand counts of the
# feasible ones (conv without bias before bn; bn 4 numbers a channel; sep: depthwise kxk per input channel,
# pointwise w x 16, no bias before bn; dense 16 x 10 + 10):
#   w=4 k=3x3: conv 3*3*3*4=108 + bn 16, sep 3*3*4=36 + 4*16=64 + bn 64, dense 170 -> 458
#   w=4 k=5x5: the depthwise 5*5*4=100 instead of 36 -> 522
#   w=8 k=3x3: conv 216 + bn 32, sep 72 + 128 + bn 64, dense 170 -> 682
#   w=8 k=5x5: depthwise 200 instead of 72 -> 810
SPACE = """\
# a tiny design space
model tinyspace
choose w in [4, 8, 32]
choose k in [3x3, 5x5]
input 32x32x3
classes 10

conv 3x3 w same bn relu
maxpool 4x4
sep k 16 same bn relu
gap
dense classes
softmax

assert params <= 1k
train {
  batch 50
  epochs 2
}
"""
HAND_PARAMS = {("4", "3x3"): 458, ("4", "5x5"): 522, ("8", "3x3"): 682, ("8", "5x5"): 810}


def tune_args(spec: Path, out: Path, archive, cache, *more) -> list[str]:
    return ["tune", str(spec), "--data", str(archive), "--data-dir", str(cache), "--out", str(out),
            "--limit", "300", "--test-limit", "100", "--epochs", "2", *map(str, more)]


def start_worker(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cli_command(*args), stdout=log.open("w"), stderr=subprocess.STDOUT, env=cli_env(),
                            cwd=ROOT, stdin=subprocess.DEVNULL)


def finish(procs: list[subprocess.Popen], timeout: float = WAIT) -> list[int]:
    """Every process's exit status, waiting at most `timeout` s for all; leftovers are killed."""
    end = time.monotonic() + timeout
    try:
        return [p.wait(timeout=max(end - time.monotonic(), 0.1)) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def files_of(run: Path) -> dict[str, str]:
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run.rglob("*")) if p.is_file()}


def leaderboard(folder: Path) -> dict:
    return json.loads((folder / "leaderboard.json").read_text())


@pytest.fixture(scope="module")
def tuned(cifar_archive, data_cache, tmp_path_factory):
    """A tune of SPACE with --trials 3, killed (SIGKILL) while its second trained trial runs, then resumed."""
    tmp = tmp_path_factory.mktemp("tune")
    spec = tmp / "tiny.arch"
    spec.write_text(SPACE)
    out = tmp / "out"
    folder = out / "tiny"
    args = tune_args(spec, out, cifar_archive, data_cache, "--trials", 3, "--heartbeat-grace", 2)
    worker = start_worker(args, tmp / "first.log")
    first, killed = None, None
    try:
        end = time.monotonic() + WAIT
        while time.monotonic() < end and worker.poll() is None:
            done = [p.parent.parent for p in folder.glob("trials/*/checkpoint/state.json")
                    if json.loads(p.read_text())["complete"]]
            begun = [p.parent.parent for p in folder.glob("trials/*/checkpoint/state.json")]  # training
            if done and len(begun) > len(done):
                first = done[0]
                killed = next(p for p in begun if p not in done)
                break
            time.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert first is not None, (tmp / "first.log").read_text()[-3000:]
    before = files_of(first)
    time.sleep(3)  # past the heartbeat's grace: the killed trial counts as dead
    code = main([*args, "--resume"])
    assert code == 0
    return {"folder": folder, "first": first, "killed": killed, "before": before, "spec": spec, "args": args}


def test_the_leaderboard_is_the_run_directories_metrics(tuned):
    board = leaderboard(tuned["folder"])
    trained = [r for r in board["trials"] if r["state"] in ("complete", "pruned")]
    assert len(trained) == 3 and board["counts"]["complete"] + board["counts"]["pruned"] == 3
    for row in board["trials"]:
        run = tuned["folder"] / row["run_dir"]
        assert row["run_dir"] == f"trials/{row['trial']}"
        choices = (row["choices"]["w"], row["choices"]["k"])
        assert row["params"] == HAND_PARAMS[choices]
        if row["state"] == "failed":
            continue
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["params"] == HAND_PARAMS[choices]  # Keras' count_params of the trained model
        assert row["val_accuracy"] == metrics["final_val_accuracy"]
        assert row["test_accuracy"] == metrics["final_test_accuracy"] is not None  # scored once, reported
        assert row["epochs"] == metrics["epochs_done"] == 2
        assert metrics["val_split"] == 30  # a tenth of the 300 training images, held out
        spec = (run / "spec.arch").read_text()
        assert f"conv 3x3 {choices[0]} same" in spec and f"sep {choices[1]} 16 same" in spec
    values = [r["val_accuracy"] for r in trained]
    assert values == sorted(values, reverse=True)
    # what `--leaderboard` prints is the same board, without training
    proc = subprocess.run(cli_command("tune", tuned["spec"], "--out", tuned["folder"].parent, "--leaderboard",
                                      "--format", "json"), capture_output=True, text=True, check=False, env=cli_env(),
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["trials"] == board["trials"] and shown["counts"] == board["counts"]


def test_the_pareto_marks_and_the_report_page(tuned, tmp_path, capsys):
    board = leaderboard(tuned["folder"])
    complete = [r for r in board["trials"] if r["state"] == "complete"]
    for key, cost in (("pareto", "params"), ("pareto_macs", "macs")):
        for r in complete:  # by brute force: no other complete trial as cheap and as good, one strictly
            beaten = any(o is not r and o[cost] <= r[cost] and o["val_accuracy"] >= r["val_accuracy"]
                         and (o[cost], o["val_accuracy"]) != (r[cost], r["val_accuracy"]) for o in complete)
            assert r[key] == (not beaten)
        assert not any(r[key] for r in board["trials"] if r["state"] != "complete")
    page = tmp_path / "tune.html"
    assert main(["tune", str(tuned["spec"]), "--out", str(tuned["folder"].parent), "--leaderboard",
                 "--report", str(page)]) == 0
    html = page.read_text()
    shown = [r for r in board["trials"] if r["val_accuracy"] is not None]
    # two charts: params and MACs against held-out accuracy
    assert html.count("<circle") == 2 * len(shown) and html.count("<svg") == 2 and "<script" not in html
    for r in shown:
        point = f"trial {r['trial']} (w={r['choices']['w']} k={r['choices']['k']})"
        assert f"{point}: params {r['params']:,}" in html and f"{point}: MACs {r['macs']:,}" in html
    assert main(["tune", str(tuned["spec"]), "--out", str(tuned["folder"].parent), "--leaderboard",
                 "--report", str(page)]) == 2  # an existing file is not overwritten
    assert "error[E603]" in capsys.readouterr().err
    assert main(["tune", str(tuned["spec"]), "--report", str(tmp_path / "tune.pdf")]) == 2
    assert "error[E689]" in capsys.readouterr().err


def test_infeasible_combinations_are_never_trained(tuned):
    board = leaderboard(tuned["folder"])
    dirs = {p.name for p in (tuned["folder"] / "trials").iterdir()}
    assert dirs == {str(r["trial"]) for r in board["trials"]}
    for row in board["not_trained"]:
        assert str(row["trial"]) not in dirs
        if row["state"] == "infeasible":
            assert row["choices"]["w"] == "32" and row["why"] == "assert params <= 1k"
    assert all(r["choices"]["w"] != "32" for r in board["trials"])


def test_best_arch_is_the_best_trials_variant_and_checks(tuned):
    board = leaderboard(tuned["folder"])
    complete = [r for r in board["trials"] if r["state"] == "complete"]
    accuracies = {r["trial"]: json.loads((tuned["folder"] / r["run_dir"] / "metrics.json").read_text())
                  ["final_val_accuracy"] for r in complete}
    best = max(complete, key=lambda r: (accuracies[r["trial"]], -r["trial"]))
    assert board["best"]["trial"] == best["trial"]
    text = (tuned["folder"] / "best.arch").read_text()
    w, k = best["choices"]["w"], best["choices"]["k"]
    expected = SPACE.replace("conv 3x3 w same", f"conv 3x3 {w} same").replace("sep k 16", f"sep {k} 16")
    code_lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert code_lines == [line for line in expected.splitlines() if not line.startswith(("#", "choose"))]
    proc = subprocess.run(cli_command("check", tuned["folder"] / "best.arch"), capture_output=True, text=True,
                          check=False, env=cli_env(), timeout=60)
    assert proc.returncode == 0 and f"{HAND_PARAMS[(w, k)]:,} params" in proc.stdout, proc.stderr


def test_a_killed_tune_resumes_without_repeating_finished_trials(tuned):
    board = leaderboard(tuned["folder"])
    rows = {r["trial"]: r for r in board["trials"]}
    first, killed = int(tuned["first"].name), int(tuned["killed"].name)
    assert files_of(tuned["first"]) == tuned["before"]  # the finished trial's run is untouched
    assert rows[first]["state"] == "complete"
    assert rows[killed]["state"] == "failed"  # the heartbeat's grace passed: marked failed ...
    retries = [r for r in board["trials"] if r["retry_of"] == killed]
    assert len(retries) == 1 and retries[0]["choices"] == rows[killed]["choices"]  # ... and trained again
    assert retries[0]["state"] in ("complete", "pruned") and retries[0]["trial"] > killed
    finished = [tuple(r["choices"].values()) for r in board["trials"] if r["state"] in ("complete", "pruned")]
    assert len(finished) == len(set(finished))  # no variant trained twice
    # the killed trial kept what it had: a run directory of fewer than its 2 epochs
    state = json.loads((tuned["folder"] / rows[killed]["run_dir"] / "checkpoint/state.json").read_text())
    assert state["complete"] is False


# the worker of a tune, killed (SIGKILL) by itself after the first epoch of its first trained trial
KILLED_AFTER_EPOCH_1 = """\
import os, signal, sys
from archdsl.training import tune
report = tune._pruning_callback
def killing(keras, trial, epochs):
    reporter = report(keras, trial, epochs)
    class Kill(type(reporter)):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            os.kill(os.getpid(), signal.SIGKILL)
    return Kill()
tune._pruning_callback = killing
from archdsl.cli import main
sys.exit(main(sys.argv[1:]))
"""


def interrupt(monkeypatch, at: str = "epoch 1") -> None:
    """Ctrl-C in the next trial trained: after its first epoch (its checkpoint committed), from the callback that
    reports the epoch to the pruner, the last one Keras runs after the epoch; or at its start, before an epoch."""
    from archdsl.training import tune as tune_module
    report = tune_module._pruning_callback

    def interrupting(keras, trial, epochs):
        reporter = report(keras, trial, epochs)

        class Interrupt(type(reporter)):
            def on_train_begin(self, logs=None):
                if at == "start":
                    raise KeyboardInterrupt

            def on_epoch_end(self, epoch, logs=None):
                super().on_epoch_end(epoch, logs)
                raise KeyboardInterrupt

        return Interrupt()

    monkeypatch.setattr(tune_module, "_pruning_callback", interrupting)


def test_a_cut_off_trial_is_continued_from_its_checkpoint(cifar_archive, data_cache, tmp_path, monkeypatch, capsys):
    """The retry of a trial cut off after its first epoch continues the trial's run, and ends as the same variant
    trained without a stop does (a tune in another folder, same seed: its first trial is this variant): history
    and every weight bit for bit. Cut off by Ctrl-C (marked failed at once, queued by the resume) and by a kill
    (marked failed by the heartbeat, queued by Optuna's callback). A failed run whose checkpoint is damaged, or
    that a process still writes (holds its lock), is not continued: its retry trains from the start, to the
    same end. A variant that failed twice continues the failed run that got furthest."""
    from test_train import history_values, keras_arrays

    from archdsl import runs
    spec = tmp_path / "tiny.arch"
    spec.write_text(SPACE)
    runs_of = {}
    for name in ("interrupted", "killed", "damaged", "locked"):
        args = tune_args(spec, tmp_path / name, cifar_archive, data_cache, "--trials", 1, "--heartbeat-grace", 2)
        folder = tmp_path / name / "tiny"
        if name == "killed":
            proc = subprocess.run([sys.executable, "-c", KILLED_AFTER_EPOCH_1, *args], capture_output=True,
                                  text=True, env=cli_env(), cwd=ROOT, timeout=WAIT, check=False)
            assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
            time.sleep(3)  # past the heartbeat's grace: the killed trial counts as dead
        else:
            with monkeypatch.context() as patched:
                interrupt(patched)
                assert main(args) == 130
        (run,) = (folder / "trials").iterdir()
        assert json.loads((run / "checkpoint/state.json").read_text())["epoch"] == 1
        if name == "damaged":
            with (run / "checkpoint/epoch-0001.keras").open("ab") as f:
                f.write(b"x")
        before = files_of(run)
        capsys.readouterr()
        with runs.RunLock(runs.RunDir(run)) if name == "locked" else contextlib.nullcontext():
            assert main([*args, "--resume"]) == 0
        said = capsys.readouterr().out
        assert files_of(run) == before  # the failed trial's run is kept as it was
        rows = {r["trial"]: r for r in leaderboard(folder)["trials"]}
        failed = rows[int(run.name)]
        assert failed["state"] == "failed" and failed["epochs"] == 1
        (retry,) = [r for r in rows.values() if r["retry_of"] == failed["trial"]]
        assert retry["state"] == "complete" and retry["epochs"] == 2 and retry["choices"] == failed["choices"]
        runs_of[name] = folder / retry["run_dir"]
        if name in ("interrupted", "killed"):
            assert retry["continued_from"] == {"trial": failed["trial"], "epoch": 1}
            assert f"continues trial {failed['trial']}'s run from its checkpoint of 1 epoch" in said
            assert f"complete (retry of {failed['trial']}, from epoch 1)" in said
            state = json.loads((runs_of[name] / "checkpoint/state.json").read_text())
            assert [c["from_epoch"] for c in state["commands"]][-1] == 1
        else:
            assert retry["continued_from"] is None and "continues trial" not in said
    # a variant that failed twice: after its first epoch (A), then at the start of its retry (B), which could not
    # continue A (a process held A's lock). The next retry is B's, and continues A, the run that got furthest
    args = tune_args(spec, tmp_path / "twice", cifar_archive, data_cache, "--trials", 1)
    folder = tmp_path / "twice/tiny"
    for at, lock in (("epoch 1", None), ("start", "A")):
        with monkeypatch.context() as patched:
            interrupt(patched, at)
            first = sorted((folder / "trials").iterdir(), key=lambda p: int(p.name)) if lock else []
            with runs.RunLock(runs.RunDir(first[0])) if lock else contextlib.nullcontext():
                assert main([*args, *(["--resume"] if lock else [])]) == 130
    a, b = sorted(int(p.name) for p in (folder / "trials").iterdir())
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    said = capsys.readouterr().out
    rows = {r["trial"]: r for r in leaderboard(folder)["trials"]}
    assert (rows[a]["state"], rows[a]["epochs"], rows[b]["state"], rows[b]["epochs"]) == ("failed", 1, "failed", 0)
    assert rows[b]["retry_of"] == a and rows[b]["continued_from"] is None
    (retry,) = [r for r in rows.values() if r["retry_of"] == b]
    assert retry["state"] == "complete" and retry["continued_from"] == {"trial": a, "epoch": 1}
    assert f"complete (retry of {b}, from trial {a}'s epoch 1)" in said
    runs_of["twice"] = folder / retry["run_dir"]
    # the same failed run, reached through a link from another tune folder's trials/: never copied
    from archdsl.training import tune_folder
    kept = runs.RunDir(next((tmp_path / "interrupted/tiny/trials").iterdir()))
    state = json.loads(kept.state.read_text())
    asked = (kept.resolved.read_text(), state["settings"], state["data"]["fingerprint"])
    (tmp_path / "linked/trials").mkdir(parents=True)
    (tmp_path / "linked/trials/7").symlink_to(kept.path, target_is_directory=True)
    for folder, number, expected in ((tmp_path / "linked", 7, None), (kept.path.parent.parent, int(kept.path.name),
                                                                      state["epoch"])):
        target = runs.RunDir(tmp_path / f"copy_of_{number}")
        target.checkpoint.mkdir(parents=True)
        copied = tune_folder.continue_failed(folder, [number], target, *asked)
        assert (copied and copied[1]["epoch"]) == expected
        assert bool(list(target.path.glob("*/*"))) == (expected is not None)
    truth = tmp_path / "uninterrupted"
    assert main(tune_args(spec, truth, cifar_archive, data_cache, "--trials", 1)) == 0
    (row,) = leaderboard(truth / "tiny")["trials"]
    assert row["choices"] == retry["choices"]
    for run in runs_of.values():
        assert history_values(run) == history_values(truth / "tiny" / row["run_dir"])
        assert keras_arrays(run / "last.keras") == keras_arrays(truth / "tiny" / row["run_dir"] / "last.keras")
        assert json.loads((run / "metrics.json").read_text())["run_dir"] == str(run)


def two_workers(spec: Path, out: Path, archive, cache, tmp: Path, *more) -> set[int]:
    """A worker process, and once it trains its first trial, this process as a second worker of the same
    study (TensorFlow is started here already: one start-up saved); the workers' process ids."""
    args = tune_args(spec, out, archive, cache, "--trials", 3, *more)
    worker = start_worker(args, tmp / "worker.log")
    try:
        end = time.monotonic() + WAIT
        while time.monotonic() < end and worker.poll() is None and not list(out.glob("*/trials/*/checkpoint")):
            time.sleep(0.05)
        assert main(args) == 0  # no --resume: a worker joins a study another one works on
    finally:
        (code,) = finish([worker])
    assert code == 0, (tmp / "worker.log").read_text()[-3000:]
    return {worker.pid, os.getpid()}


def check_shared(board: dict, pids: set[int]) -> None:
    finished = [r for r in board["trials"] if r["state"] in ("complete", "pruned")]
    assert len(finished) == 3  # --trials 3 in each of two workers: 3 in all, not 6
    numbers = [r["trial"] for r in finished]
    assert len(set(numbers)) == 3
    assert len({tuple(r["choices"].values()) for r in finished}) == 3
    assert {int(r["worker"].rsplit(":", 1)[1]) for r in finished} == pids  # both workers trained


def test_two_workers_share_one_sqlite_study(cifar_archive, data_cache, tmp_path):
    spec = tmp_path / "tiny.arch"
    spec.write_text(SPACE)
    pids = two_workers(spec, tmp_path / "out", cifar_archive, data_cache, tmp_path)
    check_shared(leaderboard(tmp_path / "out/tiny"), pids)


def test_two_workers_share_one_postgresql_study(cifar_archive, data_cache, tmp_path, postgres_url):  # noqa: F811
    spec = tmp_path / "tiny.arch"
    spec.write_text(SPACE)
    pids = two_workers(spec, tmp_path / "out", cifar_archive, data_cache, tmp_path, "--storage", postgres_url)
    board = leaderboard(tmp_path / "out/tiny")
    assert board["storage"].startswith("postgresql at 127.0.0.1:")
    check_shared(board, pids)
    assert not (tmp_path / "out/tiny/study.db").exists()


def test_a_pruned_trial_is_recorded_as_pruned(cifar_archive, data_cache, tmp_path, monkeypatch):
    """A pruner that must prune at the first report (accuracy below 1.01): the trial stops after epoch 1."""
    from archdsl.training import tune_study
    monkeypatch.setattr(tune_study, "make_pruner",
                        lambda optuna, name, epochs, *warmup: optuna.pruners.ThresholdPruner(lower=1.01))
    spec = tmp_path / "tiny.arch"
    spec.write_text(SPACE)
    assert main(tune_args(spec, tmp_path / "out", cifar_archive, data_cache, "--trials", 1)) == 0
    folder = tmp_path / "out/tiny"
    board = leaderboard(folder)
    (row,) = board["trials"]
    assert row["state"] == "pruned" and row["epochs"] == 1 and board["best"] is None
    metrics = json.loads((folder / row["run_dir"] / "metrics.json").read_text())
    assert metrics["epochs_done"] == 1 and metrics["complete"] is False
    assert row["val_accuracy"] == metrics["final_val_accuracy"]
    assert not (folder / "best.arch").exists()


@pytest.mark.parametrize("name", ["median", "hyperband"])
def test_no_trial_is_pruned_in_its_warm_up_epochs(name):
    """Optuna's own pruners as make_pruner sets them for 10 epochs with 2 of warm-up: ten trials that reached
    0.5 + 0.04 an epoch, then one far below them. It is not pruned at epochs 1 and 2 (warm-up), and the median
    pruner prunes it at epoch 3."""
    import logging

    from archdsl.training import tune_study
    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(direction="maximize", pruner=tune_study.make_pruner(optuna, name, 10, 2),
                                sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        trial = study.ask()
        for epoch in range(1, 11):
            trial.report(0.5 + 0.04 * epoch, epoch)
        study.tell(trial, 0.9)
    trial = study.ask()
    pruned = []
    for epoch in range(1, 11):
        trial.report(0.05, epoch)
        pruned.append(trial.should_prune())
    assert pruned[:2] == [False, False]
    if name == "median":
        assert bool(pruned[2]) is True


def test_a_space_with_one_feasible_variant_in_fifteen_finishes(cifar_archive, data_cache, tmp_path):
    """Untrainable proposals are repaired to the feasible variant, then the tune stops: no --trials needed."""
    spec = tmp_path / "narrow.arch"
    spec.write_text(SPACE.replace("choose w in [4, 8, 32]", "choose w in [4, 32, 48, 64, 96]")
                    .replace("choose k in [3x3, 5x5]", "choose k in [3x3, 5x5, 7x7]")
                    .replace("assert params <= 1k", "assert params <= 500"))  # w=4 k=3x3 alone: 458 (5x5: 522)
    args = tune_args(spec, tmp_path / "out", cifar_archive, data_cache)
    args[args.index("--epochs") + 1] = "1"
    assert main(args) == 0
    board = leaderboard(tmp_path / "out/narrow")
    (row,) = board["trials"]
    assert row["choices"] == {"w": "4", "k": "3x3"} and row["state"] == "complete"
    assert sum(board["counts"].values()) <= 4  # at most: infeasible, the repaired one, then a repeat or infeasible


# --- bad input: a code, no traceback, nothing written, TensorFlow not imported ------------------------------

def run_quick(*args) -> tuple[int, str, bool]:
    """main(args) in a fresh process: (exit status, stderr, whether TensorFlow was imported)."""
    code = ("import sys; from archdsl.cli import main; status = main(sys.argv[1:]); "
            "print('tensorflow' in sys.modules); sys.exit(status)")
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          check=False, env=cli_env(), timeout=60, cwd=ROOT)
    return proc.returncode, proc.stderr, proc.stdout.strip().endswith("True")


def test_a_space_without_a_feasible_variant(tmp_path):
    spec = tmp_path / "none.arch"
    spec.write_text(SPACE.replace("assert params <= 1k", "assert params <= 400"))
    status, err, tf = run_quick("tune", spec, "--out", tmp_path / "out")
    assert status == 1 and not tf and "Traceback" not in err
    assert "error[E302]: no variant holds every assert: `assert params <= 400` rules out 6 of 6" in err
    assert not (tmp_path / "out").exists()


def test_bad_flags_and_folders(tmp_path, tuned, capsys):
    spec = tmp_path / "tiny.arch"
    spec.write_text(SPACE)
    out = tuned["folder"].parent
    other = tmp_path / "other.arch"
    other.write_text(SPACE.replace("epochs 2", "epochs 3"))
    (tmp_path / "junk/tiny").mkdir(parents=True)
    (tmp_path / "junk/tiny/notes.txt").write_text("mine")
    cases = [
        ([spec, "--trials", 0], "E685", "--trials 0: must be at least 1"),
        ([spec, "--time", -5], "E685", "--time -5: must be more than 0 seconds"),
        ([spec, "--out", out, "--epochs", 3, "--resume"], "E688", "--epochs 3 differs from the study's 2"),
        ([spec, "--out", out], "E687", "study 'tiny' already has"),
        ([spec, "--out", tmp_path / "fresh", "--resume"], "E687", "no tune in"),
        ([spec, "--out", tmp_path / "fresh", "--leaderboard"], "E687", "no tune in"),
        ([other, "--out", out, "--study", "tiny", "--resume"], "E686", "holds a tune of another spec"),
        ([spec, "--out", tmp_path / "junk"], "E686", "is not a tune folder (it holds notes.txt"),
    ]
    for args, code, said in cases:
        capsys.readouterr()
        status = main(["tune", *map(str, args)])
        err = capsys.readouterr().err
        assert status == 2 and f"error[{code}]: " in err and said in err, (args, err)
    assert [p.name for p in (tmp_path / "junk/tiny").iterdir()] == ["notes.txt"]
    assert not (tmp_path / "fresh").exists()


def test_an_unreachable_storage_is_said_within_its_timeout(tmp_path):
    spec = tmp_path / "tiny.arch"
    spec.write_text(SPACE)
    start = time.monotonic()
    status, err, tf = run_quick("tune", spec, "--out", tmp_path / "out", "--storage",
                                "postgresql://tuner:secret@127.0.0.1:9/archdsl")
    assert time.monotonic() - start < 30
    assert status == 1 and not tf and "error[E682]" in err and "secret" not in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
