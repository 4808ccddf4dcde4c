"""`archdsl export`: generated Keras and PyTorch files build the model of `archdsl build`.

For every seed spec and example, and for spec files made to hit TF's padding edge
cases, the generated file is executed in a fresh namespace and checked against the
Keras back-end's model: same layer names and params, and, with the back-end's weights
copied across (BatchNorm statistics randomised so that eps and the statistics matter),
the same output of every layer in inference mode.

The golden file of specs/best.arch is read by eye; regenerate it after an intended
change with `ARCHDSL_UPDATE_GOLDEN=1 pytest tests/test_export.py` and read the diff.
"""
from __future__ import annotations

import ast
import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

import archdsl
from archdsl.render import tables
from archdsl.cli import main
from archdsl.render.export import render
from archdsl.ir import Layer, Model, PostOp, Where
from spec_files import spec_paths

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "export_best_keras.py.txt"
SPECS = spec_paths()
TORCH_REASON = "torch is an optional extra: pip install archdsl[torch]"

# Spec files for what the examples do not reach: pools on signed data (zero padding
# would differ from -inf / from excluding the padding), SAME padding uneven on one
# axis only, even kernels at stride 1, dilation, depth multipliers, biases, every
# activation, BatchNorm on vectors, softmax over a feature map, a repeated post-op.
EDGE_SPECS = {
    "pools_edge": """
model pools_edge
input 9x7x3
maxpool 2x2 s2 same        # 9x7 -> 5x4: pads 0 before, 1 after on both axes (-inf)
avgpool 3x3 s1 same        # pads 1 and 1: averages only the real pixels
avgpool 2x2 s2 same        # 5x4 -> 3x2: uneven on rows only
maxpool 3x3 s1 same        # even padding, -inf
avgpool 3x3 s2 same        # 3x2 -> 2x1: rows 1/1, columns 0/1
flatten                    # 2x1x3: NHWC order matters
dense 6 bn tanh
softmax
""",
    "convs_edge": """
model convs_edge
input 10x9x3
conv 4x4 8 same bias whiten   # even kernel at stride 1: pads 1 before, 2 after; frozen
dw 3x1 s2x1 valid             # unequal strides: Keras builds it at stride 1, then subsamples
conv 3x3 8 s2 same            # 4x9 -> 2x5: rows 0/1, columns 1/1
conv 2x2 8 d2 same bias       # dilated to 3x3: pads 1 and 1
dw 3x3 dm 2 s2 same bias      # 2x5 -> 1x3, 16 channels: rows 0/1, columns 1/1
sep 3x3 12 dm 3 same bias
sep 5x1 12 s3x1 same          # unequal strides and SAME: rows 2/2
conv 3x3 6 s3 same            # 1x3 -> 1x1
conv 1x1 4 same
gap
""",
    "acts_edge": """
model acts_edge
input 6x6x4
conv 3x3 8 same bn relu bn
bn
gelu
conv 3x3 8 valid swish
elu
relu6
sigmoid
tanh
linear
drop .3
softmax                      # over channels: dim 1 in NCHW
gmp
dense 5 bn gelu
""",
}


def _merge_model() -> Model:
    """A graph the spec language may not write yet: add, concat of maps and of vectors, the input read thrice."""
    def layer(index, op, inputs, in_shape, out_shape, post=(), **kw):
        return Layer(index=index, name=f"l{index:02d}_{op}{kw.get('filters') or ''}", op=op, inputs=inputs,
                     text=f"{op} (hand-built)", where=Where(file="<test>", line=index, column=1),
                     input_shape=in_shape, output_shape=out_shape, post=tuple(post), **kw)
    conv = dict(stride=(1, 1), dilation=(1, 1), padding="same")
    relu = PostOp(kind="act", activation="relu")
    layers = (
        layer(1, "conv", (0,), (6, 6, 3), (6, 6, 4), (PostOp(kind="bn"), relu), kernel=(3, 3), filters=4, **conv),
        layer(2, "conv", (1,), (6, 6, 4), (6, 6, 4), (PostOp(kind="bn"),), kernel=(3, 3), filters=4, **conv),
        layer(3, "add", (1, 2), (6, 6, 4), (6, 6, 4), (relu,)),
        layer(4, "conv", (0,), (6, 6, 3), (6, 6, 5), kernel=(1, 1), filters=5, use_bias=True, **conv),
        layer(5, "concat", (3, 4, 0), (6, 6, 4), (6, 6, 12)),
        layer(6, "maxpool", (5,), (6, 6, 12), (3, 3, 12), kernel=(2, 2), stride=(2, 2), dilation=(1, 1),
              padding="same"),
        layer(7, "gap", (6,), (3, 3, 12), (12,)),
        layer(8, "dense", (7,), (12,), (3,), filters=3, use_bias=True),
        layer(9, "concat", (7, 8), (12,), (15,)),
        layer(10, "softmax", (9,), (15,), (15,), activation="softmax"),
    )
    return Model(name="merges", file="<test>", input_shape=(6, 6, 3), layers=layers)


# ---------------------------------------------------------------- helpers

def _export(spec: str, target: str, folder: Path) -> str:
    out = folder / f"{Path(spec).stem}_{target}.py"
    assert main(["export", spec, "--to", target, "-o", str(out)]) == 0
    return out.read_text(encoding="utf-8")


def _exec(source: str, name: str = "generated") -> dict:
    namespace = {"__name__": name}
    exec(compile(source, f"<{name}>", "exec"), namespace)  # our own generated code, in a test
    return namespace


@lru_cache(maxsize=None)
def _reference(spec: str | None, model: Model | None = None):
    """The back-end's Keras model with randomised BatchNorm statistics, an input, and every layer's output."""
    import keras
    from archdsl.keras_backend.compile import compile as compile_keras
    model = model or archdsl.load(spec)
    km = compile_keras(model)
    rng = np.random.default_rng(0)
    for layer in km.layers:
        if type(layer).__name__ == "BatchNormalization":
            c = layer.moving_mean.shape  # no gamma after `noscale`, no beta after `nocenter`
            values = dict(gamma=rng.uniform(0.5, 1.5, c), beta=rng.uniform(-0.5, 0.5, c),
                          moving_mean=rng.uniform(-0.5, 0.5, c), moving_variance=rng.uniform(0.1, 1.5, c))
            layer.set_weights([values[w.name] for w in layer.weights])
    x = rng.uniform(-1.0, 2.0, (2, *model.input_shape)).astype("float32")  # signed, not zero-mean
    names = [layer.name for layer in km.layers if layer.name != "input"]
    probe = keras.Model(km.input, [km.get_layer(n).output for n in names])
    outputs = dict(zip(names, (np.asarray(y) for y in probe(x, training=False))))
    return model, km, x, outputs


def _comment_numbers(source: str) -> list[str]:
    return re.findall(r"^\s*# (out .*)$", source, flags=re.M)


def _imports(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add(node.module.split(".")[0])
    return found


# ---------------------------------------------------------------- keras

def _check_keras(model: Model, source: str, reference) -> float:
    import keras
    _, km, x, outputs = reference
    assert _imports(source) == {"keras"}
    exported = _exec(source)["build_model"]()
    assert [layer.name for layer in exported.layers] == [layer.name for layer in km.layers]
    assert exported.name == km.name
    assert exported.count_params() == km.count_params() == archdsl.analyze(model).params
    for layer in km.layers:
        theirs = exported.get_layer(layer.name)
        assert type(theirs) is type(layer)
        assert theirs.get_config() | {"name": None} == layer.get_config() | {"name": None}
        theirs.set_weights(layer.get_weights())
    names = list(outputs)
    probe = keras.Model(exported.input, [exported.get_layer(n).output for n in names])
    worst = 0.0
    for name, y in zip(names, probe(x, training=False)):
        diff = float(np.abs(np.asarray(y) - outputs[name]).max())
        assert diff <= 1e-5, f"{name}: max abs difference {diff}"
        worst = max(worst, diff)
    return worst


@pytest.mark.parametrize("spec", SPECS)
def test_keras_export_builds_the_same_model(spec, tmp_path):
    source = _export(spec, "keras", tmp_path)
    _check_keras(archdsl.load(spec), source, _reference(spec))


@pytest.mark.parametrize("name", sorted(EDGE_SPECS))
def test_keras_export_edge_cases(name, tmp_path):
    spec = tmp_path / f"{name}.arch"
    spec.write_text(EDGE_SPECS[name])
    source = _export(str(spec), "keras", tmp_path)
    _check_keras(archdsl.load(str(spec)), source, _reference(str(spec)))


def test_keras_export_of_a_graph_with_merges():
    model = _merge_model()
    _check_keras(model, render(model, "keras"), _reference(None, model))


# ---------------------------------------------------------------- pytorch

def _copy_keras_weights(km, tm) -> None:
    """Keras weights into the torch module of the same name; every torch parameter and statistic must be set."""
    import torch
    state = {k: v for k, v in tm.state_dict().items() if not k.endswith("num_batches_tracked")}
    new = {}

    def put(key, array):
        assert key in state, f"torch model has no {key}"
        value = torch.from_numpy(np.ascontiguousarray(array))
        assert tuple(value.shape) == tuple(state[key].shape), (key, value.shape, state[key].shape)
        new[key] = value

    def depthwise(kernel):  # (kh, kw, cin, dm) -> (cin*dm, 1, kh, kw); output channel c*dm + m, as Keras
        kh, kw, cin, dm = kernel.shape
        return kernel.reshape(kh, kw, cin * dm).transpose(2, 0, 1)[:, None]

    for layer in km.layers:
        weights, kind, name = layer.get_weights(), type(layer).__name__, layer.name
        if not weights:
            continue
        if kind == "Conv2D":
            put(f"{name}.weight", weights[0].transpose(3, 2, 0, 1))        # HWIO -> OIHW
            if layer.use_bias:
                put(f"{name}.bias", weights[1])
        elif kind == "DepthwiseConv2D":
            put(f"{name}.weight", depthwise(weights[0]))
            if layer.use_bias:
                put(f"{name}.bias", weights[1])
        elif kind == "SeparableConv2D":
            put(f"{name}.depthwise.weight", depthwise(weights[0]))
            put(f"{name}.pointwise.weight", weights[1].transpose(3, 2, 0, 1))
            if layer.use_bias:
                put(f"{name}.pointwise.bias", weights[2])
        elif kind == "Dense":
            put(f"{name}.weight", weights[0].T)                             # (in, out) -> (out, in)
            if layer.use_bias:
                put(f"{name}.bias", weights[1])
        elif kind == "BatchNormalization":  # [gamma (unless scale=False), beta (unless center=False), mean, var]
            keys = ("weight",) * layer.scale + ("bias",) * layer.center + ("running_mean", "running_var")
            assert len(keys) == len(weights), (name, [w.name for w in layer.weights])
            for key, value in zip(keys, weights):
                put(f"{name}.{key}", value)
        else:
            raise AssertionError(f"no rule to copy the weights of a {kind}")
    assert set(new) == set(state), f"not set from Keras: {sorted(set(state) - set(new))}"
    tm.load_state_dict(new, strict=False)


def _check_torch(model: Model, source: str, reference) -> tuple[float, float]:
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    _, km, x, outputs = reference
    assert _imports(source) == {"torch"}
    tm = _exec(source)["build_model"]()
    assert isinstance(tm, torch.nn.Module)
    # Keras counts BatchNorm's moving mean and variance as (non-trainable) params; torch keeps them as buffers
    trainable = sum(p.numel() for p in tm.parameters() if p.requires_grad)  # a `whiten` conv's are frozen
    statistics = sum(b.numel() for n, b in tm.named_buffers() if n.endswith(("running_mean", "running_var")))
    keras_trainable = sum(int(np.prod(w.shape)) for w in km.trainable_weights)
    assert trainable == keras_trainable
    assert sum(p.numel() for p in tm.parameters()) + statistics == km.count_params() == archdsl.analyze(model).params
    for module in tm.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            assert (module.eps, module.momentum) == (1e-3, 0.01)
    _copy_keras_weights(km, tm)
    tm.eval()

    seen = {}
    for name, module in tm.named_children():
        if name in outputs:
            module.register_forward_hook(lambda m, args, out, name=name: seen.__setitem__(name, out.detach()))
    with torch.no_grad():
        y = tm(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()      # NHWC -> NCHW
    if y.ndim == 4:  # a model that ends on a feature map: back to NHWC
        y = y.transpose(0, 2, 3, 1)
    final = float(np.abs(y - outputs[km.layers[-1].name]).max())
    assert final <= 1e-4, f"output: max abs difference {final}"
    worst = 0.0
    for name, value in seen.items():
        value = value.numpy()
        if value.ndim == 4:
            value = value.transpose(0, 2, 3, 1)                               # NCHW -> NHWC
        # a dw/sep with unequal strides is built by Keras at stride 1, then subsampled by `<name>_stride`
        expected = outputs.get(f"{name}_stride", outputs[name])
        diff = float(np.abs(value - expected).max())
        assert diff <= 1e-4 * max(1.0, float(np.abs(expected).max())), f"{name}: max abs difference {diff}"
        worst = max(worst, diff)
    assert seen, "no layer of the torch model was compared"
    return final, worst


@pytest.mark.parametrize("spec", SPECS)
def test_pytorch_export_matches_keras(spec, tmp_path):
    pytest.importorskip("torch", reason=TORCH_REASON)
    source = _export(spec, "pytorch", tmp_path)
    _check_torch(archdsl.load(spec), source, _reference(spec))


@pytest.mark.parametrize("name", sorted(EDGE_SPECS))
def test_pytorch_export_edge_cases(name, tmp_path):
    pytest.importorskip("torch", reason=TORCH_REASON)
    spec = tmp_path / f"{name}.arch"
    spec.write_text(EDGE_SPECS[name])
    source = _export(str(spec), "pytorch", tmp_path)
    _check_torch(archdsl.load(str(spec)), source, _reference(str(spec)))


def test_pytorch_export_of_a_graph_with_merges():
    pytest.importorskip("torch", reason=TORCH_REASON)
    model = _merge_model()
    source = render(model, "pytorch")
    assert "x03 = x01 + x  # l03_add" in source and "torch.cat([x03, x, inputs], dim=1)" in source
    _check_torch(model, source, _reference(None, model))


def test_pytorch_padding_is_explicit_where_tf_pads_unevenly():
    source = render(archdsl.loads(EDGE_SPECS["pools_edge"], "pools.arch"), "pytorch")
    assert 'self.l01_maxpool(F.pad(inputs, (0, 1, 0, 1), value=float("-inf")))' in source
    assert "nn.AvgPool2d(3, 1, padding=1, count_include_pad=False)" in source
    assert "AvgPool2dSame(2, 2, pad=(0, 0, 0, 1))" in source
    assert "nn.MaxPool2d(3, 1, padding=1)" in source
    assert "AvgPool2dSame(3, 2, pad=(0, 1, 1, 1))" in source
    source = render(archdsl.loads(EDGE_SPECS["convs_edge"], "convs.arch"), "pytorch")
    assert "self.l01_conv8(F.pad(inputs, (1, 2, 1, 2)))" in source
    assert "nn.Conv2d(8, 8, (3, 1), stride=(2, 1), groups=8, bias=False)" in source
    assert "self.l03_conv8(F.pad(x, (1, 1, 0, 1)))" in source
    assert "nn.Conv2d(8, 8, 2, padding=1, dilation=2, bias=True)" in source
    assert "nn.Conv2d(8, 16, 3, stride=2, groups=8, bias=True)" in source
    assert "self.l05_dw(F.pad(x, (1, 1, 0, 1)))" in source
    assert "SeparableConv2d(12, 12, (5, 1), stride=(3, 1), padding=(2, 0))" in source


def test_generated_pytorch_file_runs_as_a_script(capsys):
    pytest.importorskip("torch", reason=TORCH_REASON)
    _exec(render(archdsl.load("specs/best.arch"), "pytorch"), "__main__")
    assert "75,407 parameters" in capsys.readouterr().out  # trainable only: BN statistics are buffers


# ---------------------------------------------------------------- comments and golden file

@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("target", ["keras", "pytorch"])
def test_comments_carry_the_rf_table(spec, target):
    model = archdsl.load(spec)
    analysis = archdsl.analyze(model)
    source = render(model, target)
    table = tables.to_dict(analysis, [])
    comments = _comment_numbers(source)
    assert len(comments) == len(table["layers"])
    for text, row, layer in zip(comments, table["layers"], model.layers):
        assert f"# line {row['line']}: {row['text']}" in source
        assert text.startswith(f"out {'x'.join(map(str, row['output_shape']))}  ")
        if "rf global" not in text:
            pair = lambda v: f"{v[0]}" if v[0] == v[1] else f"{v[0]}x{v[1]}"  # noqa: E731
            assert f"rf {pair(row['rf'])}  jump {pair(row['jump'])}  start {pair(row['start'])}" in text
        assert ("params" in text) == (row["params"] > 0)
    assert f"MACs {analysis.macs:,}" in source and f"params {analysis.params:,}" in source
    assert f"spec   {spec}" in source


def test_golden_keras_export_of_best(tmp_path):
    source = _export("specs/best.arch", "keras", tmp_path)
    if os.environ.get("ARCHDSL_UPDATE_GOLDEN"):
        GOLDEN.write_text(source, encoding="utf-8")
    assert GOLDEN.exists(), f"no golden file {GOLDEN}: run with ARCHDSL_UPDATE_GOLDEN=1 and check it by eye"
    assert source == GOLDEN.read_text(encoding="utf-8")
    # the numbers the seed wrote by hand, and got wrong in places, as `archdsl rf` computes them
    assert "# line 17: sep 3x3 128 s2 same drop 0.1 bn relu\n    # out 16x16x128  rf 13  jump 2  start 1" in source
    assert "# line 22: sep 3x3 10 valid drop 0.05 bn relu\n    # out 10x10x10  rf 33  jump 2  start 7" in source


def test_non_square_numbers_are_written_per_axis():
    source = render(archdsl.load("examples/nonsquare_audio.arch"), "keras")
    assert "# line 7: conv 10x4 64 s2x1 same bn relu\n    # out 25x40x64  rf 10x4  jump 2x1  start 0.5" in source
    assert "# line 13: avgpool 3x3 s2 valid\n    # out 5x19x64  rf 32x12  jump 8x2  start 5.5x1.5\n" in source


# ---------------------------------------------------------------- safety of generated code

def test_spec_text_never_becomes_code(tmp_path):
    payload = 'x"); __import__("os").system("echo pwned") #\n__import__("os")\u2028\x0c\u202e'
    model = _merge_model()
    hostile = model.model_copy(update={
        "name": "none", "file": payload,
        "layers": tuple(layer.model_copy(update={"text": payload, "block": payload, "name": layer.name + payload})
                        if layer.index in (1, 4, 8) else layer for layer in model.layers)})
    for target in ("keras", "pytorch"):
        source = render(hostile, target)
        tree = ast.parse(source)
        assert _imports(source) == {"keras" if target == "keras" else "torch"}
        for node in ast.walk(tree):
            assert not (isinstance(node, ast.Name) and node.id == "__import__")
            assert not (isinstance(node, ast.Attribute) and node.attr == "system")
            if isinstance(node, ast.keyword) and node.arg == "name":
                continue
            if isinstance(node, ast.Call):  # the payload is a string only as a Keras layer's name
                for arg in node.args:
                    assert not (isinstance(arg, ast.Constant) and "pwned" in str(arg.value))
        assert "\u2028" not in source and "\x0c" not in source and "\u202e" not in source
    assert "class NoneModel(nn.Module)" in render(hostile, "pytorch")  # `None` is a keyword


def test_templates_refuse_unfiltered_values():
    from archdsl.render.export import _environment
    env = _environment()
    with pytest.raises(TypeError, match="without a filter"):
        env.from_string("{{ name }}").render(name="x = 1")
    assert env.from_string("{{ name|py }} {{ 3 }}").render(name='a"b') == "'a\"b' 3"
    with pytest.raises(ValueError):
        env.from_string("{{ name|ident }}").render(name="os.system")
    assert env.from_string("# {{ text|comment }}").render(text="a\nb\r\x00c") == "# a b  c"


# ---------------------------------------------------------------- bad input

def _run(argv, capsys) -> tuple[int, str]:
    status = main(argv)
    return status, capsys.readouterr().err


def test_unknown_target_suggests_a_name(tmp_path, capsys):
    out = tmp_path / "model.py"
    status, err = _run(["export", "specs/best.arch", "--to", "pytroch", "-o", str(out)], capsys)
    assert status == 2 and "unknown export target 'pytroch'" in err and "did you mean 'pytorch'?" in err
    status, err = _run(["export", "specs/best.arch", "--to", "torch", "-o", str(out)], capsys)
    assert status == 2 and "did you mean 'pytorch'?" in err
    status, err = _run(["export", "specs/best.arch", "--to", "caffe", "-o", str(out)], capsys)
    assert status == 2 and "one of: keras, onnx, pytorch, tflite" in err
    status, err = _run(["export", "specs/best.arch", "--to", "onnx", "-o", str(out)], capsys)  # a .onnx file
    assert status == 2 and "--to onnx writes a .onnx file, not '.py'" in err
    assert not any(tmp_path.iterdir())


def test_output_must_be_a_python_file(tmp_path, capsys):
    status, err = _run(["export", "specs/best.arch", "--to", "keras", "-o", str(tmp_path / "model.txt")], capsys)
    assert status == 2 and "must end in .py, not '.txt'" in err and "-o model.py" in err
    assert not any(tmp_path.iterdir())


def test_existing_output_is_left_unchanged(tmp_path, capsys):
    out = tmp_path / "model.py"
    out.write_text("# mine\n")
    status, err = _run(["export", "specs/best.arch", "--to", "keras", "-o", str(out)], capsys)
    assert status == 2 and "already exists" in err and "does not overwrite" in err
    assert out.read_text() == "# mine\n" and [p.name for p in tmp_path.iterdir()] == ["model.py"]


def test_unwritable_folder(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.geteuid() == 0:  # root writes anywhere: make the permission check see what a user would
            real_access = os.access
            monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == folder else real_access(p, mode))
        status, err = _run(["export", "specs/best.arch", "--to", "keras", "-o", str(folder / "m.py")], capsys)
        assert status == 2 and "is not writable" in err
        assert not any(folder.iterdir())
    finally:
        folder.chmod(0o755)


def test_failed_write_leaves_nothing_behind(tmp_path, capsys, monkeypatch):
    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", broken_replace)
    monkeypatch.setattr(os, "link", broken_replace)  # a no-clobber write moves into place by a hard link
    status, err = _run(["export", "specs/best.arch", "--to", "pytorch", "-o", str(tmp_path / "m.py")], capsys)
    assert status == 1 and "cannot write" in err and "No space left on device" in err
    assert not any(tmp_path.iterdir())


def test_folder_that_is_a_file(tmp_path, capsys):
    (tmp_path / "notes").write_text("x")
    status, err = _run(["export", "specs/best.arch", "--to", "keras", "-o", str(tmp_path / "notes" / "m.py")],
                       capsys)
    assert status in (1, 2) and "error[" in err and "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["notes"]


def test_bad_spec_writes_nothing(tmp_path, capsys):
    out = tmp_path / "m.py"
    status, err = _run(["export", "tests/bad/unknown_op_sepp.arch", "--to", "keras", "-o", str(out)], capsys)
    assert status == 2 and "unknown op 'sepp'" in err
    assert not out.exists()


def test_printed_output_name_is_escaped(tmp_path, capsys):
    """A control character in -o reaches the terminal escaped (issue 27): `o<ESC>[31m<newline>.py` must not turn
    the terminal red or split the line; the file itself keeps its name."""
    out = tmp_path / "o\x1b[31m\n.py"
    assert main(["export", "specs/best.arch", "--to", "keras", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "\x1b" not in printed and printed.count("\n") == 1
    assert printed.startswith(f"wrote {tmp_path}/o\\x1b[31m\\n.py (keras code for model best, ")
    assert out.is_file()
