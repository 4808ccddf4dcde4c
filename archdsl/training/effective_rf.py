"""`archdsl erf FILE [RUN_DIR | MODEL.keras]`: the effective receptive fields of a spec's layers.

    archdsl erf specs/best.arch                          # at initialisation, mean of SEEDS seeds
    archdsl erf specs/best.arch runs/best/<time>         # the run's best.keras, on its own test images
    archdsl erf specs/best.arch --twin                   # the linear, positive twin (a closed form)
    archdsl erf specs/best.arch RUN --layers 5,9 -o erf.html

Maps come from `keras_backend.erf`, statistics from `analysis.effective_rf`, pictures and tables
from `render.erf`. Images: the first N of the data's test split, as raw pixels through the
model's own normaliser (a trained model holds it; an initial one is built with the spec's
`normalize` over the training images); with no data at all (a spec alone, no --data), N images
of standard normal noise, as Luo et al. measured untrained networks.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import UsageError
from ..safe_text import terminal_text

SEEDS = 4           # an untrained spec's maps are the mean over this many initialisations
DEFAULT_IMAGES = 64
OUTPUTS = (".svg", ".png", ".html", ".htm")


def run_erf(args) -> int:
    from ..analysis import analyze
    from ..keras_backend.erf import spatial_layers
    from ..language import load

    out = _check_output(args.output)
    model = load(args.file)
    analysis = analyze(model)
    indices = choose_layers(model, args.layers, spatial_layers(model))
    if args.images < 1:
        raise UsageError(f"--images {args.images}: must be at least 1", hint="e.g. --images 64", code="E662")
    if args.twin and args.target:
        raise UsageError("--twin measures the spec's linear twin, not a trained model",
                         hint=f"leave out {terminal_text(args.target)}, or --twin", code="E601")
    maps, origin, source = measure_maps(model, indices, target=args.target, data=args.data, data_dir=args.data_dir,
                                        images=args.images, twin=args.twin)
    layers = _layers(model, analysis, indices, maps, origin)
    title = f"effective receptive fields of {model.file}: {source}"
    from ..render import erf as render
    if args.format == "json":
        print(render.erf_json(layers, {"model": model.name, "file": model.file, "source": source}))
    else:
        print("\n".join(terminal_text(line) for line in render.erf_table(title, layers).splitlines()))
    if out is not None:
        _write(out, model, layers, render.erf_table(title, layers), source)
        print(f"wrote {terminal_text(out)}", file=sys.stderr)
    return 0


def choose_layers(model, written: str | None, spatial: list[int]) -> list[int]:
    """`--layers 3,7,11` or `all` (the default: every spatial layer) -> IR indices."""
    named = ", ".join(map(str, spatial)) or "none"
    if not spatial:
        raise UsageError(f"{model.file} has no spatial layer to measure (every layer is global or a vector)",
                         hint="give a spec with convolutions or pools", code="E660")
    if written is None or written.strip().lower() == "all":
        return spatial
    chosen = []
    for word in written.split(","):
        word = word.strip()
        if not word.isdigit() or not any(layer.index == int(word) for layer in model.layers):
            raise UsageError(f"--layers: '{terminal_text(word)}' is not a layer of {model.file}",
                             hint=f"the spatial layers (the table's # column): {named}; or `all`", code="E660")
        if int(word) not in spatial:
            layer = model.layer(int(word))
            raise UsageError(f"--layers: layer {word} ({terminal_text(layer.text)}) is not spatial: each of its "
                             "units sees the whole input", hint=f"the spatial layers: {named}", code="E660")
        chosen.append(int(word))
    return sorted(set(chosen))


def measure_maps(model, indices, *, target=None, data=None, data_dir=None, images=DEFAULT_IMAGES, twin=False,
                 at_most=False):
    """(IR index -> heat map, origin, a line saying what was measured): of the twin, of a trained model
    (`target`: a run folder or a .keras file) or of the spec at initialisation. `at_most`: fewer `images` if the
    test split has fewer (else that is an error)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from ..keras_backend import erf

    if twin:
        maps, margin = erf.twin_maps(model, indices)
        return maps, margin, "the linear, positive twin (every tap 1/(kh*kw)), on a canvas with a margin"
    if target:
        from .evaluate import load_keras_model
        path, own_data, from_run = _trained_model(target)
        keras_model = load_keras_model(path, from_run)
        check_matches(keras_model, model, path)
        pictures, shown = _images(images, data_dir, model, data or own_data, need_train=False, at_most=at_most)
        return (erf.gradient_maps(keras_model, model, indices, pictures.astype("float32")), (0, 0),
                f"trained weights of {terminal_text(path)}, {len(pictures)} test images of {shown}")
    import keras
    import numpy as np

    from ..keras_backend.compile import compile as compile_keras
    from .pipeline import normalizer

    if data:
        pictures, shown, x_train = _images(images, data_dir, model, data, need_train=True, at_most=at_most)
        preprocess = lambda: normalizer(model.train.normalize, x_train)  # noqa: E731
        what = f"{len(pictures)} test images of {shown}"
    else:
        pictures = np.random.default_rng(0).standard_normal((images, *model.input_shape)).astype("float32")
        preprocess, what = lambda: None, f"{images} images of standard normal noise"  # noqa: E731
    total = None
    for seed in range(SEEDS):
        keras.utils.set_random_seed(seed)
        maps = erf.gradient_maps(compile_keras(model, preprocess=preprocess()), model, indices, pictures)
        total = maps if total is None else {i: total[i] + maps[i] for i in indices}
    return ({i: total[i] / SEEDS for i in indices}, (0, 0),
            f"at initialisation (mean of {SEEDS} seeds), {what}")


def _trained_model(target: str) -> tuple[Path, str | None, bool]:
    """A run's best.keras and its data (as `archdsl eval` finds them), or a .keras file; and whether it is a run's."""
    from .evaluate import run_model
    path = Path(target).expanduser()
    if path.is_dir():
        best, data, _ = run_model(path, None)
        return best, data, True
    if path.is_file() and path.suffix == ".keras":
        return path, None, False
    shown = terminal_text(path)
    raise UsageError(f"{shown} is neither a run directory nor a .keras file" if path.exists()
                     else f"{shown} does not exist", hint="e.g. archdsl erf specs/best.arch runs/best/<time>",
                     code="E613")


def check_matches(keras_model, model, path) -> None:
    """UsageError unless the Keras model has the spec's layers (by name) with the spec's output shapes."""
    from ..keras_backend.compile import layer_outputs
    names = {layer.name: layer for layer in keras_model.layers}
    for index, name in layer_outputs(model).items():
        want = tuple(model.layer(index).output_shape)
        got = names.get(name)
        shape = tuple(got.output.shape[1:]) if got is not None else None
        if shape != want:
            said = "has no layer " + name if got is None else f"makes {shape} at {name}, the spec {want}"
            raise UsageError(f"{terminal_text(path)} is not a model of {model.file}: it {said}",
                             hint="give the run (or .keras) trained from this spec", code="E661")


def _images(count: int, data_dir, model, data: str | None, need_train: bool, at_most: bool = False):
    from .data import check_fits, load_dataset
    dataset = load_dataset(data or "cifar10", data_dir, limit=None if need_train else 1, test_limit=None)
    check_fits(dataset, model.input_shape, model.output.output_shape[0])
    if at_most:
        count = min(count, len(dataset.x_test))
    if count > len(dataset.x_test):
        raise UsageError(f"--images {count}: the test split of {terminal_text(dataset.source)} has "
                         f"{len(dataset.x_test):,} images", hint=f"e.g. --images {min(64, len(dataset.x_test))}",
                         code="E662")
    images = dataset.x_test[:count]
    return (images, dataset.source, dataset.x_train) if need_train else (images, dataset.source)


def report_section(model, analysis, run_dir: str, data_dir=None) -> dict:
    """`archdsl report SPEC RUN_DIR --erf`: the deepest spatial layer's ERF at initialisation and trained, on the
    run's own test images ({"initial": ErfLayer, "trained": ErfLayer, "initial_source", "trained_source"})."""
    from ..keras_backend.erf import spatial_layers
    deepest = spatial_layers(model)[-1:]
    if not deepest:
        raise UsageError(f"{model.file} has no spatial layer: no effective receptive field to show",
                         hint="leave out --erf", code="E660")
    trained, origin, trained_source = measure_maps(model, deepest, target=run_dir, data_dir=data_dir, at_most=True)
    _, own_data, _ = _trained_model(run_dir)
    initial, _, initial_source = measure_maps(model, deepest, data=own_data, data_dir=data_dir, at_most=True)
    return {"initial": _layers(model, analysis, deepest, initial, origin)[0], "initial_source": initial_source,
            "trained": _layers(model, analysis, deepest, trained, origin)[0], "trained_source": trained_source}


def _layers(model, analysis, indices, maps, origin):
    from ..analysis.effective_rf import erf_stats
    from ..keras_backend.erf import centre_unit
    from ..render.erf import ErfLayer

    rows = {r.index: r for r in analysis.rows}
    size = tuple(model.input_shape[:2])
    layers = []
    for i in indices:
        layer = model.layer(i)
        stats = erf_stats(maps[i], rows[i], centre_unit(layer.output_shape), size, origin)
        layers.append(ErfLayer(stats, layer.text, tuple(layer.output_shape), maps[i], origin, size))
    return layers


def _check_output(output: str | None) -> Path | None:
    if output is None:
        return None
    out = Path(output)
    if out.suffix.lower() not in OUTPUTS:
        raise UsageError(f"-o {terminal_text(out)}: unknown picture format", hint="write e.g. -o erf.html, "
                         "erf.svg or erf.png", code="E663")
    from ..fileio import check_target
    check_target(out, overwrite=False)
    return out


def _write(out: Path, model, layers, table: str, source: str) -> None:
    from ..fileio import atomic_write_bytes
    from ..render import erf as render
    from ..version import __version__
    suffix = out.suffix.lower()
    if suffix == ".png":
        data = render.heatmap_png(layers)
    elif suffix == ".svg":
        data = str(render.heatmap_svg(layers[-1])).encode()  # one picture: the deepest chosen layer
    else:
        from ..display import pair
        from ..render.report import _environment
        maps = [{"index": x.stats.index, "text": x.text, "rf": pair(x.stats.rf),
                 "erf90": pair(x.stats.widths[90]) if x.stats.centre else "-", "svg": render.heatmap_svg(x)}
                for x in layers]
        data = _environment().get_template("erf.html.j2").render(
            model=model.name, about=source, table=table, maps=maps, version=__version__).encode()
    atomic_write_bytes(out, data, overwrite=False)
