"""Every op of the registry, checked by the same tests: a new op is covered the moment it is registered.

Each op class carries a `sample` (spec lines that use it); the tests below build that sample on
an odd, non-square input and check it against outside truths:
- Keras: every layer's output shape and parameter count of the built model equal the analysis';
- `rf --verify`: the receptive fields measured on the built model equal the analysis';
- export: the generated Keras and PyTorch files compute what the Keras back-end builds
  (test_export's checks: same layers and params, same outputs with the same weights);
- drawing and formatting: the op has a colour group, the diagram and ASCII drawing name it,
  and `fmt` prints a spec that resolves to the same model.
"""
from __future__ import annotations

import pytest

import archdsl
from archdsl.language.formatter import format_spec
from archdsl.ops import OPS, op_of
from archdsl.language.parser import parse

OP_NAMES = sorted(OPS)


def _spec(name: str) -> str:
    # a conv first: every sample has a feature map for `rf --verify` to measure, and reads a layer, not the input
    return f"model sample_{name}\ninput 11x9x4\nconv 3x3 4 same\n{OPS[name].sample}\n"


def _model(name: str):
    return archdsl.loads(_spec(name), f"<{name}>")


def _layers_of(model, name):
    return [layer for layer in model.layers if layer.op == name]


@pytest.mark.parametrize("name", OP_NAMES)
def test_op_declares_what_the_tools_need(name):
    from archdsl.render.graphviz import KIND_COLOURS
    op = OPS[name]
    assert op.name == name
    assert op.doc and op.sample, f"{name}: a one-line doc and a sample for the generic tests"
    assert op.draw_kind in KIND_COLOURS, f"{name}: draw kind {op.draw_kind!r} has no colour"
    assert op.implements("keras_layer") and op.keras_source and op.torch_forward


@pytest.mark.parametrize("name", OP_NAMES)
def test_sample_uses_the_op_and_formats_to_the_same_model(name):
    model = _model(name)
    assert _layers_of(model, name), f"{name}'s sample has no {name} layer"
    assert all(op_of(layer) is OPS[layer.op] for layer in model.layers)
    formatted = format_spec(parse(_spec(name), f"<{name}>"))
    again = archdsl.loads(formatted, f"<{name}>")
    assert format_spec(parse(formatted, f"<{name}>")) == formatted  # idempotent
    strip = [layer.model_dump(exclude={"where", "text"}) for layer in model.layers]
    assert [layer.model_dump(exclude={"where", "text"}) for layer in again.layers] == strip


@pytest.mark.tf
@pytest.mark.parametrize("name", OP_NAMES)
def test_keras_shapes_and_params_equal_the_analysis(name):
    from archdsl.keras_backend.compile import compile, layer_outputs
    model = _model(name)
    analysis = archdsl.analyze(model)
    km = compile(model)
    outputs = layer_outputs(model)
    for layer, row in zip(model.layers, analysis.rows):
        assert tuple(km.get_layer(outputs[layer.index]).output.shape) == (None, *layer.output_shape), layer.name
        # the Keras layers an IR layer builds are named after it: `l03_sep6`, `l03_sep6_bn`, `l03_sep6_pad`
        built = [k for k in km.layers if k.name == layer.name or k.name.startswith(layer.name + "_")]
        assert sum(k.count_params() for k in built) == row.params, layer.name
    assert km.count_params() == analysis.params


@pytest.mark.tf
@pytest.mark.parametrize("name", OP_NAMES)
def test_verify_measures_the_analysis(name):
    from archdsl.keras_backend.verify import verify_rf
    model = _model(name)
    report = verify_rf(model)
    assert report.ok, report.render()
    spatial = [layer.index for layer in _layers_of(model, name) if layer.spatial and not OPS[name].is_global]
    assert set(spatial) <= {row.index for row in report.rows}  # the op's own feature maps were measured


@pytest.mark.tf
@pytest.mark.parametrize("name", OP_NAMES)
def test_keras_export_builds_the_same_model(name):
    from archdsl.render.export import render
    from test_export import _check_keras, _reference
    model = _model(name)
    _check_keras(model, render(model, "keras"), _reference(None, model))


@pytest.mark.tf
@pytest.mark.parametrize("name", OP_NAMES)
def test_pytorch_export_computes_the_same(name):
    pytest.importorskip("torch", reason="torch is an optional extra: pip install archdsl[torch]")
    from archdsl.render.export import render
    from test_export import _check_torch, _reference
    model = _model(name)
    _check_torch(model, render(model, "pytorch"), _reference(None, model))


@pytest.mark.parametrize("name", OP_NAMES)
def test_drawings_show_the_op(name):
    from archdsl.render import graphviz as gv
    from archdsl.render.ascii import draw
    model = _model(name)
    analysis = archdsl.analyze(model)
    layer = _layers_of(model, name)[0]
    assert gv.kind(layer) == OPS[name].draw_kind
    assert layer.text in draw(model, analysis)
    source = gv.to_digraph(model, analysis).source
    assert gv.KIND_COLOURS[OPS[name].draw_kind][0] in source and gv.escape(layer.text) in source
