"""archdsl train / eval: LR schedules, optimizers, the CLI end to end, checkpoint fallback, bad input.

The helpers at the top are shared with test_resume.py. Every training run here is tiny
(a few hundred images, 1-3 epochs); what dominates is TensorFlow's start-up.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from archdsl import runs
from archdsl.errors import RunError
from archdsl.ir import TrainConfig
from archdsl.training.schedules import lr_at, step_progress

ROOT = Path(__file__).resolve().parent.parent
SEED_LOG = ROOT.parent / "shared/seed/000_460896ea4eb78a9f.txt"

# small and fast: a conv, a separable conv with dropout (exercises the dropout RNG),
# flip + crop augmentation (exercises the augmentation RNG)
TINY_SPEC = """\
model tiny
input 32x32x3
classes 10

conv 3x3 8 same bn relu
maxpool 2x2
sep 3x3 16 same drop .1 bn relu
gap
dense classes
softmax

train {
  batch 64
  epochs 2
  augment flip crop 2
}
"""
RUN_FILES = ("spec.arch", "resolved.json", "history.csv", "metrics.json", "best.keras", "last.keras",
             "checkpoint/state.json")


# --- helpers (also used by test_resume.py) ---------------------------------------------------

def cli_env() -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def cli_command(*args) -> list[str]:
    return [sys.executable, "-m", "archdsl.cli", *map(str, args)]


def run_cli(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command(*args), capture_output=True, text=True, timeout=timeout, env=cli_env(),
                          cwd=ROOT, stdin=subprocess.DEVNULL)


def write_spec(folder: Path, text: str = TINY_SPEC, name: str = "tiny.arch") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def the_run(out: Path, stem: str = "tiny") -> Path:
    """The only run directory under out/stem."""
    found = sorted(p for p in (out / stem).iterdir() if p.is_dir())
    assert len(found) == 1, found
    return found[0]


def history_values(run: Path) -> list[list[str]]:
    """history.csv without its seconds column, as text: equal text means bit-for-bit equal floats."""
    lines = (run / "history.csv").read_text().splitlines()
    assert lines[0].split(",") == list(runs.HISTORY_COLUMNS)
    return [line.split(",")[:-1] for line in lines[1:]]


def keras_arrays(path: Path) -> dict[str, bytes]:
    """Every array of a .keras file's weights (model and optimizer), as raw bytes (h5py, no TF)."""
    import h5py

    out: dict[str, bytes] = {}
    with zipfile.ZipFile(path) as z, h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()].tobytes())
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, to show that nothing in it changed."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The error line of a failed command: exactly one, and no traceback."""
    assert proc.returncode not in (0, None), proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error[" in line]
    assert len(errors) == 1, proc.stderr
    return errors[0]


# --- learning-rate schedules (no TensorFlow) -------------------------------------------------

def _seed_lrs() -> list[dict[int, float]]:
    """The rates of each 50-epoch run the seed's file logs, in order: the base model's, the best's."""
    if not SEED_LOG.is_file():
        return [{1: 0.01, 2: 0.0075815011, 3: 0.0061050061, 50: 0.0006012868},
                {1: 0.01, 2: 0.008071025, 3: 0.0067658999, 50: 0.0007867202}]
    found = re.findall(r"Epoch (\d+): LearningRateScheduler reducing learning rate to ([0-9.e-]+)\.",
                       SEED_LOG.read_text())
    logged: list[dict[int, float]] = []
    for e, v in found:
        if int(e) == 1:
            logged.append({})
        logged[-1][int(e)] = float(v)
    return logged


def test_inverse_time_is_the_seeds_schedule():
    cfg = TrainConfig()  # the defaults are the seed's (base model's) recipe
    seed = _seed_lrs()[0]
    assert {1, 2, 3, 50} <= set(seed)
    for epoch, value in seed.items():  # the log counts epochs from 1 and prints 10 decimals
        assert round(lr_at(cfg, step_progress(cfg, epoch - 1, 0, 391), 50), 10) == value, epoch
    # set once per epoch: every step of an epoch gets the epoch's value
    assert {lr_at(cfg, step_progress(cfg, 1, s, 391), 50) for s in range(391)} == {0.01 / 1.319}


@pytest.mark.parametrize("spec, log", [("base", 0), ("best", 1)])
def test_seed_specs_have_the_seeds_schedules(spec, log):
    """specs/base.arch and specs/best.arch give every rate the seed logged for that model."""
    import archdsl

    cfg = archdsl.load(ROOT / f"specs/{spec}.arch").train
    seed = _seed_lrs()[log]
    assert len(seed) == cfg.epochs or not SEED_LOG.is_file()
    for epoch, value in seed.items():
        assert round(lr_at(cfg, step_progress(cfg, epoch - 1, 0, 390), cfg.epochs), 10) == value, (spec, epoch)


def test_cosine_with_warmup():
    cfg = TrainConfig(schedule="cosine", lr=0.1, warmup=2, final_lr=0.001, epochs=10)
    steps = 100
    values = [lr_at(cfg, step_progress(cfg, e, s, steps), 10) for e in range(10) for s in range(steps)]
    assert 0 < values[0] <= 0.1 / (2 * steps) + 1e-12           # starts near 0, not at 0
    peak = values.index(max(values))
    assert max(values) == pytest.approx(0.1) and peak == 2 * steps - 1  # the end of warm-up
    assert all(a < b for a, b in zip(values[:peak], values[1:peak + 1]))   # rises ...
    assert all(a >= b for a, b in zip(values[peak:], values[peak + 1:]))   # ... then only falls
    assert values[-1] == pytest.approx(0.001)                  # ends at final_lr
    assert lr_at(cfg, 6, 10) == pytest.approx(0.001 + 0.099 * 0.5 * (1 + math.cos(math.pi / 2)))


def test_linear_with_warmup():
    cfg = TrainConfig(schedule="linear", lr=0.2, warmup=2, final_lr=0.002, epochs=10)
    assert lr_at(cfg, 1, 10) == pytest.approx(0.1)                      # half-way up the warm-up
    assert lr_at(cfg, 2, 10) == pytest.approx(0.2)
    assert lr_at(cfg, 6, 10) == pytest.approx((0.2 + 0.002) / 2)        # half-way down: the mean
    assert lr_at(cfg, 8, 10) == pytest.approx(0.002 + 0.198 / 4)
    assert lr_at(cfg, 10, 10) == pytest.approx(0.002)
    steps = 50
    values = [lr_at(cfg, step_progress(cfg, e, s, steps), 10) for e in range(2, 10) for s in range(steps)]
    falls = [a - b for a, b in zip(values, values[1:])]
    assert falls == pytest.approx([0.198 / (8 * steps)] * len(falls))    # the same fall every step


def test_onecycle_and_constant():
    one = TrainConfig(schedule="onecycle", lr=0.2, final_lr=0.0, epochs=10)
    assert lr_at(one, 0, 10) == pytest.approx(0.2 / 25)
    assert lr_at(one, 3, 10) == pytest.approx(0.2)  # 30 % of the run rising
    assert lr_at(one, 10, 10) == pytest.approx(0.0)
    const = TrainConfig(schedule="constant", lr=0.05, warmup=1)
    assert lr_at(const, 0.5, 5) == pytest.approx(0.025)
    assert lr_at(const, 3.7, 5) == 0.05


@pytest.mark.tf
def test_optimizers_from_the_train_section():
    import keras

    from archdsl.training.schedules import make_loss, make_optimizer

    adamw = make_optimizer(TrainConfig(optimizer="adamw", weight_decay=5e-4, ema=0.999))
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == 5e-4
    assert adamw.use_ema and adamw.ema_momentum == 0.999
    sgd = make_optimizer(TrainConfig(optimizer="sgd", momentum=0.8, nesterov=True, lr=0.1, schedule="constant"))
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.nesterov and sgd.momentum == 0.8
    assert float(sgd.learning_rate.numpy()) == pytest.approx(0.1)
    assert isinstance(make_optimizer(TrainConfig(optimizer="rmsprop")), keras.optimizers.RMSprop)
    assert make_loss(TrainConfig(label_smoothing=0.1)).get_config()["label_smoothing"] == 0.1


@pytest.mark.tf
def test_ema_averages_the_batch_norm_statistics_too():
    """Evaluation with EMA weights uses batch-norm statistics averaged at the same decay (by hand)."""
    import keras
    import numpy as np

    from archdsl.training.schedules import BatchNormAverages, ema_weights, make_optimizer

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.BatchNormalization()(keras.layers.Dense(3)(inputs)))
    model.compile(optimizer=make_optimizer(TrainConfig(optimizer="sgd", lr=0.1, schedule="constant", ema=0.5)),
                  loss="mse")
    bn, dense = model.layers[2], model.layers[1]
    averages = BatchNormAverages(model, 0.5)
    rng = np.random.default_rng(0)
    mean, variance = bn.moving_mean.numpy(), bn.moving_variance.numpy()
    for _ in range(3):
        model.train_on_batch(rng.normal(size=(8, 4)), rng.normal(3.0, 2.0, size=(8, 3)))
        averages.update()
        mean = 0.5 * mean + 0.5 * bn.moving_mean.numpy()
        variance = 0.5 * variance + 0.5 * bn.moving_variance.numpy()
    np.testing.assert_allclose(averages.averages[0].numpy(), mean, rtol=1e-6)
    np.testing.assert_allclose(averages.averages[1].numpy(), variance, rtol=1e-6)
    assert not np.allclose(mean, bn.moving_mean.numpy())  # the average lags the raw statistics

    raw = [v.numpy() for v in model.weights]
    ema_kernel = model.optimizer._model_variables_moving_average[0].numpy()
    with ema_weights(model, averages):
        assert np.array_equal(dense.kernel.numpy(), ema_kernel)
        assert np.array_equal(bn.moving_mean.numpy(), averages.averages[0].numpy())
        assert np.array_equal(bn.moving_variance.numpy(), averages.averages[1].numpy())
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(raw, model.weights))  # restored exactly

    again = BatchNormAverages(model, 0.5, saved=json.loads(json.dumps(averages.values())))  # a checkpoint's JSON
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(averages.averages, again.averages))
    fresh = BatchNormAverages(model, 0.5, saved=[[0.0]])  # another model's: start from the statistics
    assert np.array_equal(fresh.averages[0].numpy(), bn.moving_mean.numpy())


# --- checkpoint fallback (no TensorFlow: checkpoints are opaque files here) ------------------

def _fake_run(tmp_path: Path, epochs_done: int) -> runs.RunDir:
    run = runs.create_run_dir(tmp_path, "fake")
    run.spec.write_text(TINY_SPEC)
    run.resolved.write_text("{}")
    history = []
    for e in range(1, epochs_done + 1):
        history.append({"epoch": e, "seconds": 1.0, "train_seconds": 1.0})
        run.epoch_model(e).write_bytes(f"weights of epoch {e}".encode() * 100)
        state = {key: None for key in runs.STATE_KEYS}
        # what a run of `epochs_done + 1` planned epochs writes after epoch e (runs.py checks it on load)
        state.update(format=runs.FORMAT, spec="spec.arch", epoch=e, epochs=epochs_done + 1, batch=16, passes=1,
                     lr=0.01, complete=False, history=list(history), checkpoint=run.epoch_model(e).name,
                     sha256=hashlib.sha256(run.epoch_model(e).read_bytes()).hexdigest(),
                     settings={"data": "data", "limit": None, "test_limit": None, "seed": 0},
                     data={"train_images": 8}, rng={"seed": 0, "seed_generators": []},
                     best={"epoch": None, "val_accuracy": None})
        runs.write_json(run.epoch_state(e), state)
        runs.write_json(run.state, state)
    return run


def test_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path):
    run = _fake_run(tmp_path, 2)
    assert runs.load_state(run)["epoch"] == 2
    with open(run.epoch_model(2), "r+b") as f:
        f.truncate(10)
    warnings = []
    assert runs.load_state(run, warn=warnings.append)["epoch"] == 1
    assert "epoch-0002.keras" in warnings[0] and "epoch 1" in warnings[0]
    run.state.write_text('{"format": "archdsl-ru')  # a torn state.json: the epoch files still work
    assert runs.load_state(run)["epoch"] == 1
    with open(run.epoch_model(1), "r+b") as f:
        f.truncate(10)
    with pytest.raises(RunError, match="corrupt checkpoint .*state.json"):
        runs.load_state(run)


def test_a_state_without_its_settings_is_corrupt(tmp_path):
    run = _fake_run(tmp_path, 1)
    for path in (run.state, run.epoch_state(1)):
        state = json.loads(path.read_text())
        del state["settings"]
        path.write_text(json.dumps(state))
    with pytest.raises(RunError, match="corrupt checkpoint .*state.json: it has no 'settings'"):
        runs.load_state(run)


def test_run_directories_are_never_reused(tmp_path):
    first = runs.create_run_dir(tmp_path, "x", now=0)
    second = runs.create_run_dir(tmp_path, "x", now=0)
    assert first.path != second.path and second.path.name == first.path.name + "-2"


# --- the CLI end to end -----------------------------------------------------------------------

@pytest.mark.tf
def test_train_best_spec_end_to_end_then_eval(cifar_archive, data_cache, tmp_path):
    out = tmp_path / "runs"
    proc = run_cli("train", "specs/best.arch", "--data", cifar_archive, "--data-dir", data_cache,
                   "--epochs", 1, "--limit", 512, "--test-limit", 256, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert re.search(r"4/4\S* .*accuracy: [\d.]+ - loss: [\d.]+ - val_accuracy: ", proc.stdout)  # Keras' progress bar
    # the seed's protocol, named: the test split validated every epoch and chose best.keras
    assert re.search(r"best val \(test split\) accuracy 0\.\d{4} at epoch 1, final val \(test split\) accuracy "
                     r"0\.\d{4}", proc.stdout)
    assert re.search(r"wall time [\d.]+ s .*training images/s", proc.stdout)
    run = the_run(out, "best")
    assert re.fullmatch(r"\d{8}-\d{6}", run.name)
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    assert (run / "spec.arch").read_bytes() == (ROOT / "specs/best.arch").read_bytes()
    resolved = json.loads((run / "resolved.json").read_text())
    assert resolved["name"] == "best" and resolved["train"]["epochs"] == 1  # the override is recorded
    rows = runs.read_history(run / "history.csv")
    assert [r["epoch"] for r in rows] == [1] and rows[0]["lr"] == 0.01
    assert 0 <= rows[0]["val_accuracy"] <= 1 and rows[0]["seconds"] > 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["complete"] and metrics["best_epoch"] == 1 and metrics["params"] == 76995
    assert metrics["images_per_second"] > 0 and metrics["data"]["train_images"] == 512
    state = json.loads((run / "checkpoint/state.json").read_text())
    assert state["epoch"] == 1 and state["complete"] and (run / "checkpoint" / state["checkpoint"]).is_file()
    assert keras_arrays(run / "best.keras") and keras_arrays(run / "last.keras")
    assert list((run / "tb/train").glob("events.out.tfevents.*"))
    assert list((run / "tb/validation").glob("events.out.tfevents.*"))

    before = tree_digest(run)
    proc = run_cli("train", "--resume", run)  # a finished run: nothing to do, nothing changed
    assert proc.returncode == 0 and "complete" in proc.stdout, proc.stderr
    # ... but a flag it cannot honour is refused, not ignored, and a mistyped spec beside it is named
    assert "E611" in one_line_error(run_cli("train", "--resume", run, "--epochs", 5))
    assert "E101" in one_line_error(run_cli("train", "specs/nosuch.arch", "--resume", run))
    fake = tmp_path / "notes.keras"
    fake.write_text("not a model")
    assert "not a Keras .keras file" in one_line_error(run_cli("eval", fake, "--data", cifar_archive,
                                                               "--data-dir", data_cache))
    proc = run_cli("eval", run, "--data-dir", data_cache, "--test-limit", 256)  # the run's data by default
    assert proc.returncode == 0, proc.stderr
    accuracy = float(re.search(r"test accuracy (\d\.\d{4}) on 256 images", proc.stdout).group(1))
    assert abs(accuracy - rows[0]["val_accuracy"]) <= 1 / 256 + 1e-4  # the same model on the same images
    assert "confusion matrix" in proc.stdout and "airplane" in proc.stdout and "truck" in proc.stdout
    assert tree_digest(run) == before


# --- the other recipes, in process: EMA, cosine, SGD, cutout, standard, TTA; resume equality --

RECIPE_SPEC = """\
model recipe
input 16x16x3
classes 3

conv 3x3 8 same drop .1 bn relu
gap
dense classes
softmax

train {
  optimizer sgd
  nesterov
  lr 0.05
  schedule cosine
  warmup 1
  final_lr 0.001
  weight_decay 5e-4
  ema 0.9
  label_smoothing 0.1
  normalize standard
  batch 16
  epochs 2
  passes 2
  augment flip alternate crop 2 cutout 4
  tta flip
}
"""


def _image_folder(root: Path) -> Path:
    """A 3-class, 16x16 RGB image folder: train/ 20 and test/ 8 PNGs per class."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("test", 8)):
        for c, name in enumerate(("red", "green", "blue")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                image = rng.integers(0, 120, (16, 16, 3), dtype=np.uint8)
                image[..., c] += 120  # learnable: the class is the brightest channel
                Image.fromarray(image).save(folder / f"{i:03d}.png")
    return root


@pytest.mark.tf
def test_other_recipes_train_resume_exactly_and_eval(tmp_path, capsys):
    import shutil

    from archdsl.cli import main

    data = _image_folder(tmp_path / "shapes")
    spec = write_spec(tmp_path, RECIPE_SPEC, "recipe.arch")
    common = ["--data", str(data), "--data-dir", str(tmp_path / "cache")]
    assert main(["train", str(spec), *common, "--out", str(tmp_path / "runs"), "--verbose", "0"]) == 0
    run = the_run(tmp_path / "runs", "recipe")
    lrs = [r["lr"] for r in runs.read_history(run / "history.csv")]
    # 60 images, batch 16, `passes 2`: 2 x 4 steps an epoch, the first at 1/8 of the warm-up
    assert lrs[0] == pytest.approx(0.05 / 8) and 0.001 < lrs[1] < 0.05  # 1st step of warm-up, then cosine
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["images_per_second"] * metrics["train_seconds"] == pytest.approx(2 * 2 * 60)

    # roll a copy back to its epoch-1 checkpoint, as a kill during epoch 2 leaves it, and resume it
    copy = tmp_path / "copy" / run.name
    shutil.copytree(run, copy)
    shutil.copy(copy / "checkpoint/epoch-0001.json", copy / "checkpoint/state.json")
    assert main(["train", "--resume", str(copy), "--verbose", "0"]) == 0
    assert history_values(copy) == history_values(run)
    assert keras_arrays(copy / "last.keras") == keras_arrays(run / "last.keras")
    assert keras_arrays(copy / "checkpoint/epoch-0002.keras") == keras_arrays(run / "checkpoint/epoch-0002.keras")
    # metrics.json keeps every command line that trained the run, to rerun a result exactly
    first = f"archdsl train {spec} --data {data} --data-dir {tmp_path / 'cache'} --out {tmp_path / 'runs'} --verbose 0"
    assert json.loads((run / "metrics.json").read_text())["commands"] == [{"command": first, "from_epoch": 0}]
    assert json.loads((copy / "metrics.json").read_text())["commands"] == [
        {"command": first, "from_epoch": 0}, {"command": f"archdsl train --resume {copy} --verbose 0", "from_epoch": 1}]

    capsys.readouterr()
    assert main(["eval", str(run), "--data-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"test accuracy \d\.\d{4} on 24 images of .*shapes \(flip TTA\)", out)
    assert re.search(r"^green +\d\.\d{4} +8$", out, re.M)  # per-class accuracy
    assert "confusion matrix" in out and re.search(r"^blue( +\d+){3}$", out, re.M)


# --- bad input: one line, no traceback, nothing written ---------------------------------------

def test_unknown_dataset(tmp_path):
    spec = write_spec(tmp_path)
    proc = run_cli("train", spec, "--data", "cifar11", "--out", tmp_path / "runs")
    assert "unknown dataset 'cifar11'" in one_line_error(proc)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("change, message", [
    (("input 32x32x3", "input 28x28x1"), "the spec's input is 28x28x1 but the images"),
    (("classes 10", "classes 5"), "the spec has 5 classes but"),
])
def test_spec_that_does_not_fit_the_data(cifar_archive, data_cache, tmp_path, change, message):
    spec = write_spec(tmp_path, TINY_SPEC.replace(*change))
    proc = run_cli("train", spec, "--data", cifar_archive, "--data-dir", data_cache, "--limit", 64,
                   "--out", tmp_path / "runs")
    assert message in one_line_error(proc)
    assert not list((tmp_path / "runs").rglob("*.json"))


def test_unwritable_out(tmp_path):
    spec = write_spec(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = run_cli("train", spec, "--out", blocker / "runs")
    assert "cannot write runs to --out" in one_line_error(proc)
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        proc = run_cli("train", spec, "--out", locked)
        assert "cannot write runs to --out" in one_line_error(proc)


def test_resume_of_a_missing_dir_or_a_non_run(tmp_path):
    proc = run_cli("train", "--resume", tmp_path / "nope")
    assert "does not exist" in one_line_error(proc)
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("hello")
    before = tree_digest(stranger)
    proc = run_cli("train", "--resume", stranger)
    assert "is not an archdsl run" in one_line_error(proc)
    assert tree_digest(stranger) == before


def test_eval_of_a_missing_target(tmp_path):
    proc = run_cli("eval", tmp_path / "nope.keras")
    assert "does not exist" in one_line_error(proc)


@pytest.mark.tf
def test_eval_of_a_model_without_one_score_per_class_is_refused(tmp_path):
    """`build` compiles any spec, a feature map too; `eval` needs a class vector (its confusion matrix
    counts one prediction an image) and says so instead of failing inside numpy."""
    spec = write_spec(tmp_path, "input 16x16x3\nclasses 3\nconv 3x3 3 same\n", "maps.arch")
    model = tmp_path / "maps.keras"
    assert run_cli("build", spec, "-o", model).returncode == 0
    data = _image_folder(tmp_path / "shapes")
    line = one_line_error(run_cli("eval", model, "--data", data, "--data-dir", tmp_path / "cache"))
    assert "error[E532]: the model's output is 16x16x3, not one score per class" in line
