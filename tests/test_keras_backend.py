"""The Keras back-end against the IR, the analysis and the seed's hand-written models.

Every spec in specs/ and examples/ must compile to a Keras model whose params, trainable
params and per-layer output shapes are the analysis' numbers, and which runs. The seed's
two models, written by hand in tests/seed_models.py, must compute exactly what
specs/base.arch and specs/best.arch compile to, and match the seed's own model.summary().
"""
import re
from pathlib import Path

import numpy as np
import pytest

import archdsl
from spec_files import load_spec, spec_paths

pytestmark = pytest.mark.tf

ROOT = Path(__file__).resolve().parent.parent




def keras_layers_of(layer, keras_model):
    """The Keras layers one IR layer compiles to: its main layer and everything named after it."""
    return [k for k in keras_model.layers if k.name == layer.name or k.name.startswith(layer.name + "_")]


def weight_count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.mark.parametrize("path", spec_paths())
def test_compiled_model_matches_the_analysis(path):
    from archdsl.keras_backend.compile import compile, layer_outputs

    model = load_spec(path)
    analysis = archdsl.analyze(model)
    keras_model = compile(model)
    assert keras_model.count_params() == analysis.params
    assert weight_count(keras_model.trainable_weights) == analysis.trainable_params
    assert weight_count(keras_model.non_trainable_weights) == analysis.params - analysis.trainable_params
    names = layer_outputs(model)
    assert set(names) == {layer.index for layer in model.layers}
    for layer, row in zip(model.layers, analysis.rows):
        output = keras_model.get_layer(names[layer.index]).output
        assert tuple(output.shape[1:]) == layer.output_shape, layer.text
        # per layer too, so a wrong count names its layer
        assert sum(k.count_params() for k in keras_layers_of(layer, keras_model)) == row.params, layer.text
    assert tuple(keras_model.output.shape[1:]) == model.output.output_shape
    # it runs, too (a shape can be right on paper and the kernel still refuse it)
    x = np.random.default_rng(0).uniform(size=(2, *model.input_shape)).astype("float32")
    y = np.asarray(keras_model(x, training=False))
    assert y.shape == (2, *model.output.output_shape) and np.isfinite(y).all()


# --- unequal strides on depthwise kernels -----------------------------------------------------

@pytest.mark.parametrize("n", [16, 15])
@pytest.mark.parametrize("line", [
    "dw 3x3 s2x1 same dm 2",
    "dw 4x3 s3x1 valid",
    "sep 3x3 8 s1x2 same bn relu",
    "sep 3x2 5 s2x3 same",
    "sep 2x4 4 s3x2 same",
])
def test_unequal_strides_on_depthwise_kernels(line, n):
    """TF's depthwise kernel refuses strides like 2x1; the back-end pads, convolves at stride 1
    and subsamples. Checked against Conv2D (which takes any strides and pads by itself) with
    the same weights written as one full kernel."""
    import keras

    from archdsl.keras_backend.compile import compile, layer_outputs

    model = archdsl.loads(f"input {n}x{n}x3\n{line}\n")
    layer = model.layers[0]
    keras_model = compile(model)
    x = np.random.default_rng(1).normal(size=(2, n, n, 3)).astype("float32")
    main = keras_model.get_layer(layer.name)
    depthwise = np.asarray(main.depthwise_kernel if layer.op == "sep" else main.kernel)  # kh, kw, cin, dm
    kh, kw, cin, dm = depthwise.shape
    if layer.op == "sep":
        pointwise = np.asarray(main.pointwise_kernel)[0, 0].reshape(cin, dm, -1)
        full = np.einsum("hwcm,cmf->hwcf", depthwise, pointwise)
    else:
        full = np.zeros((kh, kw, cin, cin * dm), "float32")
        for c in range(cin):
            full[:, :, c, c * dm:(c + 1) * dm] = depthwise[:, :, c, :]
    reference = keras.layers.Conv2D(full.shape[-1], (kh, kw), strides=layer.stride, padding=layer.padding,
                                    use_bias=False)
    reference.build((None, n, n, 3))
    reference.kernel.assign(full)
    expected = np.asarray(reference(x))
    before_post = keras.Model(keras_model.input, keras_model.get_layer(f"{layer.name}_stride").output)
    got = np.asarray(before_post(x))
    assert got.shape[1:] == layer.output_shape == expected.shape[1:]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # the IR layer's output is the last post-op, or the subsampling when there is none
    names = layer_outputs(model)
    assert names[1] == (f"{layer.name}_relu" if layer.post else f"{layer.name}_stride")


# --- the seed's models --------------------------------------------------------------------------

# model.summary() of the seed document, as printed there (Keras 2 names, Keras 2 widths)
SEED_SUMMARY = {
    "base": ("""
separable_conv2d_21 (Separab (None, 32, 32, 32)        123
dropout_18 (Dropout)         (None, 32, 32, 32)        0
batch_normalization_18 (Batc (None, 32, 32, 32)        128
activation_21 (Activation)   (None, 32, 32, 32)        0
separable_conv2d_22 (Separab (None, 32, 32, 48)        1824
dropout_19 (Dropout)         (None, 32, 32, 48)        0
batch_normalization_19 (Batc (None, 32, 32, 48)        192
activation_22 (Activation)   (None, 32, 32, 48)        0
separable_conv2d_23 (Separab (None, 32, 32, 96)        5040
dropout_20 (Dropout)         (None, 32, 32, 96)        0
batch_normalization_20 (Batc (None, 32, 32, 96)        384
activation_23 (Activation)   (None, 32, 32, 96)        0
max_pooling2d_6 (MaxPooling2 (None, 16, 16, 96)        0
separable_conv2d_24 (Separab (None, 16, 16, 128)       13152
dropout_21 (Dropout)         (None, 16, 16, 128)       0
batch_normalization_21 (Batc (None, 16, 16, 128)       512
activation_24 (Activation)   (None, 16, 16, 128)       0
separable_conv2d_25 (Separab (None, 16, 16, 160)       21632
dropout_22 (Dropout)         (None, 16, 16, 160)       0
batch_normalization_22 (Batc (None, 16, 16, 160)       640
activation_25 (Activation)   (None, 16, 16, 160)       0
max_pooling2d_7 (MaxPooling2 (None, 8, 8, 160)         0
separable_conv2d_26 (Separab (None, 6, 6, 192)         32160
dropout_23 (Dropout)         (None, 6, 6, 192)         0
batch_normalization_23 (Batc (None, 6, 6, 192)         768
activation_26 (Activation)   (None, 6, 6, 192)         0
separable_conv2d_27 (Separab (None, 4, 4, 10)          3648
global_average_pooling2d_3 ( (None, 10)                0
flatten_3 (Flatten)          (None, 10)                0
activation_27 (Activation)   (None, 10)                0
""", 80_203, 78_891, 1_312),
    "best": ("""
separable_conv2d_33 (Separab (None, 32, 32, 16)        75
dropout_33 (Dropout)         (None, 32, 32, 16)        0
batch_normalization_33 (Batc (None, 32, 32, 16)        64
activation_36 (Activation)   (None, 32, 32, 16)        0
separable_conv2d_34 (Separab (None, 32, 32, 16)        400
dropout_34 (Dropout)         (None, 32, 32, 16)        0
batch_normalization_34 (Batc (None, 32, 32, 16)        64
activation_37 (Activation)   (None, 32, 32, 16)        0
separable_conv2d_35 (Separab (None, 32, 32, 32)        656
dropout_35 (Dropout)         (None, 32, 32, 32)        0
batch_normalization_35 (Batc (None, 32, 32, 32)        128
activation_38 (Activation)   (None, 32, 32, 32)        0
separable_conv2d_36 (Separab (None, 32, 32, 48)        1824
dropout_36 (Dropout)         (None, 32, 32, 48)        0
batch_normalization_36 (Batc (None, 32, 32, 48)        192
activation_39 (Activation)   (None, 32, 32, 48)        0
separable_conv2d_37 (Separab (None, 32, 32, 64)        3504
dropout_37 (Dropout)         (None, 32, 32, 64)        0
batch_normalization_37 (Batc (None, 32, 32, 64)        256
activation_40 (Activation)   (None, 32, 32, 64)        0
separable_conv2d_38 (Separab (None, 16, 16, 128)       8768
dropout_38 (Dropout)         (None, 16, 16, 128)       0
batch_normalization_38 (Batc (None, 16, 16, 128)       512
activation_41 (Activation)   (None, 16, 16, 128)       0
separable_conv2d_39 (Separab (None, 16, 16, 64)        9344
dropout_39 (Dropout)         (None, 16, 16, 64)        0
batch_normalization_39 (Batc (None, 16, 16, 64)        256
activation_42 (Activation)   (None, 16, 16, 64)        0
separable_conv2d_40 (Separab (None, 16, 16, 96)        6720
dropout_40 (Dropout)         (None, 16, 16, 96)        0
batch_normalization_40 (Batc (None, 16, 16, 96)        384
activation_43 (Activation)   (None, 16, 16, 96)        0
separable_conv2d_41 (Separab (None, 14, 14, 128)       13152
dropout_41 (Dropout)         (None, 14, 14, 128)       0
batch_normalization_41 (Batc (None, 14, 14, 128)       512
activation_44 (Activation)   (None, 14, 14, 128)       0
separable_conv2d_42 (Separab (None, 12, 12, 192)       25728
dropout_42 (Dropout)         (None, 12, 12, 192)       0
batch_normalization_42 (Batc (None, 12, 12, 192)       768
activation_45 (Activation)   (None, 12, 12, 192)       0
separable_conv2d_43 (Separab (None, 10, 10, 10)        3648
dropout_43 (Dropout)         (None, 10, 10, 10)        0
batch_normalization_43 (Batc (None, 10, 10, 10)        40
activation_46 (Activation)   (None, 10, 10, 10)        0
global_average_pooling2d_3 ( (None, 10)                0
flatten_3 (Flatten)          (None, 10)                0
activation_47 (Activation)   (None, 10)                0
""", 76_995, 75_407, 1_588),
}
_SUMMARY_LINE = re.compile(r"^([a-z_0-9]+?)_\d+ .*\(None, ([\d, ]+)\)\s+(\d+)$")
_KERAS_NAME = {"SeparableConv2D": "separable_conv2d", "Dropout": "dropout", "BatchNormalization": "batch_normalization",
               "Activation": "activation", "MaxPooling2D": "max_pooling2d",
               "GlobalAveragePooling2D": "global_average_pooling2d", "Flatten": "flatten"}


def seed_summary(name):
    """[(kind, output shape, params)] of the seed's summary table, and its three totals."""
    text, total, trainable, non_trainable = SEED_SUMMARY[name]
    rows = []
    for line in text.strip().splitlines():
        kind, shape, params = _SUMMARY_LINE.match(line).groups()
        rows.append((kind, tuple(int(d) for d in shape.split(",")), int(params)))
    return rows, total, trainable, non_trainable


def layers_of(keras_model):
    """The model's layers as model.summary() lists them (a functional model also lists its input)."""
    return [k for k in keras_model.layers if type(k).__name__ != "InputLayer"]


def summary_of(keras_model):
    return [(_KERAS_NAME[type(k).__name__], tuple(k.output.shape[1:]), k.count_params())
            for k in layers_of(keras_model)]


@pytest.fixture(scope="module", params=["base", "best"])
def seed_pair(request):
    """(name, IR model, compiled model, the seed's hand-written model)."""
    from seed_models import SEED_MODELS

    from archdsl.keras_backend.compile import compile

    model = archdsl.load(f"specs/{request.param}.arch")
    return request.param, model, compile(model), SEED_MODELS[request.param]()


def test_seed_models_match_the_seed_summary(seed_pair):
    """Both the hand-written model and the compiled spec print the seed's model.summary()."""
    name, model, compiled, seed = seed_pair
    rows, total, trainable, non_trainable = seed_summary(name)
    for keras_model in (seed, compiled):
        assert summary_of(keras_model) == rows
        assert keras_model.count_params() == total
        assert weight_count(keras_model.trainable_weights) == trainable
        assert weight_count(keras_model.non_trainable_weights) == non_trainable
    analysis = archdsl.analyze(model)
    assert (analysis.params, analysis.trainable_params) == (total, trainable)


def test_compiled_spec_computes_what_the_seed_model_computes(seed_pair):
    """Same weights (random, BN statistics included) in both, same input: same outputs, layer by layer."""
    import keras

    name, model, compiled, seed = seed_pair
    rng = np.random.default_rng(7)
    for layer in compiled.layers:  # random everything, so BN's place in the order matters
        for w in layer.weights:
            shape = tuple(w.shape)
            if "moving_variance" in w.path or "gamma" in w.path:
                w.assign(rng.uniform(0.5, 1.5, shape).astype("float32"))
            else:
                w.assign(rng.normal(0, 0.3, shape).astype("float32"))
    ours = [k for k in compiled.layers if k.weights]
    theirs = [k for k in seed.layers if k.weights]
    assert [type(k) for k in ours] == [type(k) for k in theirs]
    for a, b in zip(ours, theirs):
        assert [tuple(w.shape) for w in a.weights] == [tuple(w.shape) for w in b.weights], a.name
        b.set_weights(a.get_weights())

    x = rng.uniform(0, 1, (8, *model.input_shape)).astype("float32")
    every = lambda m: keras.Model(m.inputs[0], [k.output for k in layers_of(m)])  # noqa: E731
    got, expected = every(compiled)(x, training=False), every(seed)(x, training=False)
    assert len(got) == len(expected) == len(layers_of(compiled))
    for layer, g, e in zip(layers_of(compiled), got, expected):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-6, atol=1e-6, err_msg=layer.name)
    assert np.asarray(got[-1]).shape == (8, 10)
