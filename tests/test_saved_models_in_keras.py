"""The models a user is given (a run's best.keras and last.keras, `archdsl build -o`) load in plain Keras.

The truth is a Python process that cannot import archdsl: `keras.models.load_model(path)` alone must
load each file, with Keras' own BatchNormalization, and predict what archdsl's loading of the same
file predicts. The resume checkpoints keep archdsl's fused layer (so a resumed run trains as before).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from test_train import _image_folder, run_cli, the_run, write_spec

pytestmark = pytest.mark.tf

SPEC = """\
model portable
input 16x16x3
classes 3

conv 3x3 8 same bn relu
sep 3x3 8 same bn relu
bn
gap
dense classes
softmax

train {
  batch 16
  epochs 1
}
"""
BATCH_NORMS = 3  # the spec's bn layers and post-ops

# Runs with `python -I` in an empty folder (no PYTHONPATH, no current folder on sys.path); archdsl
# may still be installed (an editable install is found by a finder, not by sys.path), so the
# script refuses it before anything else and checks that it is refused.
PLAIN_KERAS = """\
import sys


class NoArchdsl:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "archdsl":
            raise ImportError("archdsl is not importable in this process")


sys.meta_path.insert(0, NoArchdsl())
try:
    import archdsl
except ImportError:
    pass
else:
    sys.exit("archdsl was importable")

import json

import keras
import numpy as np

x, convert, paths = np.load(sys.argv[1]), sys.argv[2], sys.argv[3:]
if convert != "-":  # the recipe of the docs for a file that names archdsl's batch norm
    keras.models.load_model(convert, custom_objects={"archdsl>BatchNormalization": keras.layers.BatchNormalization}
                            ).save(paths[-1])
report = {}
for path in paths:
    model = keras.models.load_model(path)
    np.save(path + ".plain.npy", model(x, training=False).numpy())
    report[path] = [type(layer) is keras.layers.BatchNormalization
                    for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
assert "archdsl" not in sys.modules
print(json.dumps(report))
"""


def load_in_plain_keras(folder: Path, x: np.ndarray, paths: list[Path], convert: Path | None = None) -> dict:
    """Load `paths` in a process without archdsl: {path: predictions on x, and per batch-norm layer whether it
    is Keras' own class}. `convert`: first save that file, as the docs say, to the last of `paths`."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "x.npy", x)
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR", "TF_ENABLE_ONEDNN_OPTS")}
    proc = subprocess.run([sys.executable, "-I", "-c", PLAIN_KERAS, str(folder / "x.npy"), str(convert or "-"),
                           *map(str, paths)], capture_output=True, text=True, cwd=folder, timeout=300, check=False,
                          env=dict(env, TF_CPP_MIN_LOG_LEVEL="2"), stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    classes = json.loads(proc.stdout.splitlines()[-1])
    return {Path(p): (np.load(p + ".plain.npy"), keras_own) for p, keras_own in classes.items()}


def archdsl_predictions(path: Path, x: np.ndarray):
    """The file loaded in this process, where archdsl's batch norm is registered (as `archdsl eval` loads it)."""
    import keras

    from archdsl.keras_backend.batchnorm import BatchNormalization as Fused

    model = keras.models.load_model(path, compile=False, custom_objects={"archdsl>BatchNormalization": Fused})
    return model(x, training=False).numpy(), [type(layer) for layer in model.layers
                                              if isinstance(layer, keras.layers.BatchNormalization)]


def named_batch_norms(path: Path) -> set[str]:
    with zipfile.ZipFile(path) as z:
        layers = json.loads(z.read("config.json"))["config"]["layers"]
    return {layer["registered_name"] or f"{layer['module']}.{layer['class_name']}" for layer in layers
            if layer["class_name"] == "BatchNormalization"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, list[str]]:
    """A real one-epoch run of SPEC, trained with the fused batch norm, on a 60-image folder; and the
    data arguments of its commands."""
    folder = tmp_path_factory.mktemp("portable")
    data, spec = _image_folder(folder / "shapes"), write_spec(folder, SPEC, "portable.arch")
    data_arguments = ["--data", str(data), "--data-dir", str(folder / "cache")]
    proc = run_cli("train", spec, *data_arguments, "--out", folder / "runs", "--epochs", 1, "--batchnorm", "fused",
                   "--verbose", 0)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return the_run(folder / "runs", "portable"), data_arguments


def test_a_runs_models_load_in_plain_keras(trained, tmp_path):
    from archdsl.keras_backend.batchnorm import BatchNormalization as Fused

    run, _ = trained
    x = np.random.default_rng(7).uniform(0, 1, (5, 16, 16, 3)).astype("float32")
    files = [run / "best.keras", run / "last.keras"]
    plain = load_in_plain_keras(tmp_path, x, files)
    for path in files:
        assert named_batch_norms(path) == {"keras.layers.BatchNormalization"}, path
        predicted, keras_own = plain[path]
        assert keras_own == [True] * BATCH_NORMS, path
        ours, _ = archdsl_predictions(path, x)
        assert np.abs(predicted - ours).max() <= 1e-6, path
        assert not np.allclose(predicted, predicted[0])  # different images, different predictions

    # the resume checkpoint is the model as archdsl trains it: fused layers, the weights of last.keras
    checkpoint = run / "checkpoint/epoch-0001.keras"
    assert named_batch_norms(checkpoint) == {"archdsl>BatchNormalization"}
    as_trained, kinds = archdsl_predictions(checkpoint, x)
    assert kinds == [Fused] * BATCH_NORMS
    assert np.abs(plain[run / "last.keras"][0] - as_trained).max() <= 1e-6


def test_a_file_naming_archdsls_batch_norm_converts_and_evaluates(trained, tmp_path, capsys):
    """Files that name "archdsl>BatchNormalization" (a run's checkpoints; best.keras of older runs): the
    docs' one-line conversion in plain Keras gives a file that loads alone; `archdsl eval` loads them."""
    from archdsl.cli import main

    run, data_arguments = trained
    x = np.random.default_rng(8).uniform(0, 1, (4, 16, 16, 3)).astype("float32")
    checkpoint = run / "checkpoint/epoch-0001.keras"
    converted = tmp_path / "converted.keras"
    plain = load_in_plain_keras(tmp_path, x, [converted], convert=checkpoint)
    assert named_batch_norms(converted) == {"keras.layers.BatchNormalization"}
    predicted, keras_own = plain[converted]
    assert keras_own == [True] * BATCH_NORMS
    assert np.abs(predicted - archdsl_predictions(checkpoint, x)[0]).max() <= 1e-6

    capsys.readouterr()
    assert main(["eval", str(checkpoint), *data_arguments]) == 0
    assert "test accuracy" in capsys.readouterr().out


def test_build_output_loads_in_plain_keras(tmp_path):
    spec = write_spec(tmp_path, SPEC, "portable.arch")
    out = tmp_path / "built.keras"
    proc = run_cli("build", spec, "-o", out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    x = np.random.default_rng(9).uniform(0, 1, (3, 16, 16, 3)).astype("float32")
    predicted, keras_own = load_in_plain_keras(tmp_path / "plain", x, [out])[out]
    assert keras_own == [True] * BATCH_NORMS
    assert np.abs(predicted - archdsl_predictions(out, x)[0]).max() <= 1e-6
