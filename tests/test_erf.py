"""`archdsl erf`: effective receptive fields, against closed forms, bounds and Keras itself (issue 32).

- Closed form: the twin (every tap 1/(kh*kw), no nonlinearity) of n stacked k x k convolutions has,
  along each axis, the n-fold convolution of k taps of 1/k as its normalised map; dilation spreads the
  taps. The p % widths are checked against numbers worked out by hand.
- Bounds: on every spec and example, no gradient mass falls outside the theoretical field, at
  initialisation and with every weight drawn at random; the twin's mass centre is the theoretical centre.
- Keras: one layer's map equals a gradient computed here with tf.GradientTape.
"""
from __future__ import annotations

import json
import subprocess
import sys
from functools import reduce
from pathlib import Path

import numpy as np
import pytest

import archdsl
from archdsl.analysis.effective_rf import erf_stats
from spec_files import ROOT, spec_paths

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from archdsl.keras_backend import erf  # noqa: E402
from archdsl.keras_backend.compile import compile as compile_keras  # noqa: E402


def _stack(n: int, window: str, size: int = 41) -> archdsl.Model:
    lines = [f"conv {window} 2 same" for _ in range(n)]
    return archdsl.loads("model stack\ninput {0}x{0}x1\n".format(size) + "\n".join(lines) + "\n")


def _closed_form(taps: list[float], n: int) -> np.ndarray:
    return reduce(np.convolve, [np.asarray(taps)] * n, np.array([1.0]))


def _window_at(heat, origin, centre: int, half: int) -> np.ndarray:
    lo = [centre - half + o for o in origin]
    return heat[lo[0]:lo[0] + 2 * half + 1, lo[1]:lo[1] + 2 * half + 1]


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("window, taps", [("3x3", [1 / 3] * 3), ("5x5", [1 / 5] * 5),
                                          ("3x3 d2", [1 / 3, 0, 1 / 3, 0, 1 / 3])])
def test_the_twins_map_is_the_n_fold_convolution_of_its_windows(n, window, taps):
    model = _stack(n, window)
    maps, origin = erf.twin_maps(model, [n])
    heat = maps[n] / maps[n].sum()
    line = _closed_form(taps, n)
    half = len(line) // 2
    assert erf.centre_unit(model.layer(n).output_shape) == (20, 20)  # 41x41: the middle unit, centred at 20
    inside = _window_at(heat, origin, 20, half)
    np.testing.assert_allclose(inside, np.outer(line, line), atol=1e-6)
    assert heat.sum() - inside.sum() == pytest.approx(0, abs=1e-12)


# Worked out by hand from the closed forms: [1,2,3,2,1]/9 holds 3/9 in its middle pixel, 7/9 in the middle
# three, all in five; [1,3,6,7,6,3,1]/27 holds 7/27, 19/27, 25/27 and 27/27 in runs of 1, 3, 5, 7.
@pytest.mark.parametrize("n, widths", [(1, {50: 3, 90: 3, 95: 3}), (2, {50: 3, 90: 5, 95: 5}),
                                       (3, {50: 3, 90: 5, 95: 7})])
def test_the_widths_of_the_twins_map_are_exact(n, widths):
    model = _stack(n, "3x3")
    maps, origin = erf.twin_maps(model, [n])
    stats = erf_stats(maps[n], archdsl.analyze(model).rows[n - 1], (20, 20), (41, 41), origin)
    assert stats.widths == {p: (w, w) for p, w in widths.items()}
    assert stats.centre == pytest.approx((20, 20)) and stats.theory_centre == (20, 20)
    assert stats.rf == (2 * n + 1,) * 2 and stats.outside == 0


def _random_weights(keras_model, seed: int) -> None:
    """Every weight drawn at random (variances positive): the bounds hold for any weights, not just at init."""
    rng = np.random.default_rng(seed)
    for w in keras_model.weights:
        value = rng.standard_normal(w.shape).astype("float32")
        w.assign(np.abs(value) + 0.1 if "variance" in w.path else value)


SPECS = spec_paths()


@pytest.mark.parametrize("path", SPECS)
def test_no_gradient_mass_falls_outside_the_theoretical_field(path):
    model = archdsl.load(ROOT / path)
    analysis = archdsl.analyze(model)
    rows = {r.index: r for r in analysis.rows}
    spatial = erf.spatial_layers(model)
    big = model.input_shape[0] * model.input_shape[1] > 64 * 64
    indices = [spatial[len(spatial) // 2], spatial[-1]] if big else spatial  # the 224-pixel examples: two layers
    images = np.random.default_rng(1).standard_normal((2, *model.input_shape)).astype("float32")
    keras.utils.set_random_seed(0)
    kmodel = compile_keras(model)
    for weights in ("initial", "random"):
        if weights == "random":
            _random_weights(kmodel, 2)
        maps = erf.gradient_maps(kmodel, model, indices, images)
        for i in indices:
            unit = erf.centre_unit(model.layer(i).output_shape)
            stats = erf_stats(maps[i], rows[i], unit, model.input_shape[:2])
            assert stats.outside == 0, (path, i, weights)


@pytest.mark.parametrize("path", SPECS)
def test_the_twins_mass_centre_is_the_theoretical_centre(path):
    model = archdsl.load(ROOT / path)
    rows = {r.index: r for r in archdsl.analyze(model).rows}
    spatial = erf.spatial_layers(model)
    indices = sorted({spatial[0], spatial[len(spatial) // 2], spatial[-1]})
    maps, origin = erf.twin_maps(model, indices)
    # after a merge of paths centred on different pixels (a strided 1x1 shortcut beside a 3x3 body), the map is
    # a mix of two symmetric ones with different centres: its mass centre lies between them, inside the field
    start = {0: (0.0, 0.0), **{i: r.start for i, r in rows.items()}}
    offset = [layer.index for layer in model.layers if len({start[j] for j in layer.inputs}) > 1]
    for i in indices:
        stats = erf_stats(maps[i], rows[i], erf.centre_unit(model.layer(i).output_shape), model.input_shape[:2],
                          origin)
        assert stats.outside == 0
        if offset and i >= offset[0]:
            for a in (0, 1):
                assert abs(stats.centre[a] - stats.theory_centre[a]) <= (rows[i].rf[a] - 1) / 2
        else:
            assert stats.centre == pytest.approx(stats.theory_centre, abs=1e-6), (path, i)


def test_a_layers_map_equals_a_gradient_computed_with_gradient_tape():
    model = archdsl.load(ROOT / "specs/best.arch")
    keras.utils.set_random_seed(3)
    kmodel = compile_keras(model)
    images = np.random.default_rng(4).standard_normal((5, 32, 32, 3)).astype("float32")
    # layer 9 of best.arch is `sep 3x3 128 valid drop 0.05 bn relu`, 14x14: its centre unit is (6, 6);
    # its output is the relu after it, the last Keras layer whose name starts with the layer's
    name = [layer.name for layer in kmodel.layers if layer.name.startswith("l09_")][-1]
    sub = keras.Model(kmodel.input, kmodel.get_layer(name).output)
    x = tf.constant(images)
    total = np.zeros((32, 32))
    for k in range(5):  # image by image, so nothing relies on images not mixing in a batch
        xi = x[k:k + 1]
        with tf.GradientTape() as tape:
            tape.watch(xi)
            unit = sub(xi, training=False)[0, 6, 6, :]
            loss = tf.reduce_sum(unit)
        total += np.abs(tape.gradient(loss, xi).numpy()[0]).sum(axis=-1)
    ours = erf.gradient_maps(kmodel, model, [9], images)[9]
    np.testing.assert_allclose(ours, total / 5, rtol=1e-5, atol=1e-9)


def _erf(*argv, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "archdsl", "erf", *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_cli_json_and_png_from_a_spec_and_a_saved_model(tmp_path):
    saved = tmp_path / "base.keras"
    done = subprocess.run([sys.executable, "-m", "archdsl", "build", "specs/base.arch", "-o", str(saved)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    png = tmp_path / "erf.png"
    done = _erf("specs/base.arch", str(saved), "--data", str(_tiny_data(tmp_path)),
                "--data-dir", str(tmp_path / "cache"), "--images", "4",
                "--layers", "3,8", "--format", "json", "-o", str(png))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [layer["index"] for layer in result["layers"]] == [3, 8]
    layer8 = result["layers"][1]  # sep 3x3 192 valid after two pools: rf 26 (`archdsl rf`), unit (2, 2) of 6x6
    assert layer8["rf"] == [26, 26] and layer8["unit"] == [2, 2] and layer8["outside"] == 0
    assert set(layer8["erf"]) == {"50", "90", "95"}
    picture = tf.io.decode_png(png.read_bytes()).numpy()  # an independent decoder reads the file
    assert picture.shape[2] == 3 and picture.shape[0] >= 192 and picture.shape[1] > 2 * 192


def _tiny_data(tmp_path: Path) -> Path:
    """An image folder (train/ and test/, a folder a class) of 10 classes x 2 random 32x32 PNGs."""
    from test_data import write_png
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in range(10):
            for i in range(2):
                write_png(tmp_path / "data" / split / f"class{c}" / f"{i}.png",
                          rng.integers(0, 256, (32, 32, 3)).astype(np.uint8))
    return tmp_path / "data"


@pytest.mark.parametrize("argv, code, words", [
    (["specs/base.arch", "--twin", "--layers", "10"], "E660", "layer 10 (gap) is not spatial"),
    (["specs/base.arch", "--twin", "--layers", "99"], "E660", "'99' is not a layer"),
    (["specs/base.arch", "--twin", "-o", "erf.jpg"], "E663", "unknown picture format"),
    (["specs/base.arch", "--images", "0"], "E662", "--images 0"),
])
def test_cli_refuses_bad_arguments_with_a_hint(argv, code, words):
    done = _erf(*argv)
    assert done.returncode == 2 and f"error[{code}]" in done.stderr and words in done.stderr, done.stderr
    assert "hint:" in done.stderr and "Traceback" not in done.stderr


def test_a_model_of_another_spec_is_refused(tmp_path):
    saved = tmp_path / "best.keras"
    subprocess.run([sys.executable, "-m", "archdsl", "build", "specs/best.arch", "-o", str(saved)], cwd=ROOT,
                   check=True, capture_output=True, timeout=600)
    done = _erf("specs/base.arch", str(saved))
    assert done.returncode == 2 and "error[E661]" in done.stderr and "is not a model of" in done.stderr


def test_report_erf_shows_the_initial_and_the_trained_field(tmp_path):
    """`archdsl report SPEC RUN_DIR --erf`: the deepest spatial layer's maps, initial beside trained."""
    from test_data import write_png
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("test", 4)):
        for c in range(2):
            for i in range(n):
                write_png(tmp_path / "data" / split / f"c{c}" / f"{i}.png", rng.integers(0, 256, (8, 8, 3)).astype(np.uint8))
    spec = tmp_path / "t.arch"
    spec.write_text("input 8x8x3\nclasses 2\nconv 3x3 4 same bn relu\nconv 3x3 4 valid relu\ngap\ndense classes softmax\n"
                    "train {\n  epochs 1\n  batch 4\n}\n")
    common = ["--data-dir", str(tmp_path / "cache")]
    done = subprocess.run([sys.executable, "-m", "archdsl", "train", str(spec), "--data", str(tmp_path / "data"),
                           "--out", str(tmp_path / "runs"), "--verbose", "0", *common], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    run = next((tmp_path / "runs" / "t").iterdir())
    done = subprocess.run([sys.executable, "-m", "archdsl", "report", str(spec), str(run), "--erf", *common,
                           "-o", str(tmp_path / "r.md")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "r.md").read_text()
    # layer 2 (3x3 valid after 3x3 same): rf 5; its 6x6 map's centre unit (2, 2) sees input rows/cols 1..5
    assert "## Effective receptive field of layer 2" in text and "theoretical rf 5" in text
    rows = [line for line in text.splitlines() if line.startswith(("| initial |", "| trained |"))]
    assert len(rows) == 2 and all("8 test images" in row for row in rows)
    for name in ("initial", "trained"):
        assert (tmp_path / "r_files" / f"erf_{name}.svg").read_text().startswith("<svg")
    done = subprocess.run([sys.executable, "-m", "archdsl", "report", str(spec), "--erf", "-o", str(tmp_path / "x.md")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 2 and "--erf needs a RUN_DIR" in done.stderr
