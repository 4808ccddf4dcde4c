"""`archdsl export --to tflite|onnx` and `archdsl eval` of the files it writes.

    archdsl export specs/best.arch --to tflite --data cifar10 -o best.tflite          # untrained, float32
    archdsl export runs/best/<time> --to tflite --int8 --int8-io -o best_int8.tflite  # calibrated on the run's data
    archdsl export runs/best/<time> --to onnx -o best.onnx
    archdsl eval best_int8.tflite --data cifar10

Every file reads raw pixels 0..255, as a run's best.keras does: its first layer is the normaliser.
A spec FILE is built as `archdsl train` builds it, with the normaliser of its `normalize` setting
(`standard` takes the training images' mean and deviation, so it needs --data; without data the
file starts at the first layer of the spec and reads normalised pixels). Int8 calibration: the
first N training images (--calibration), raw, through that normaliser.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..errors import RunError, UsageError
from ..safe_text import terminal_text

TARGETS = ("tflite", "onnx")
CALIBRATION = 200  # images; the converter's own examples use 100 to 500


def check_deploy_export(args) -> None:
    """What can be refused before TensorFlow starts: the options, the output file (an existing one is refused and
    left unchanged), the packages."""
    from ..fileio import check_target
    _check_options(args, args.to, Path(args.file).expanduser())
    check_target(args.output, overwrite=False)
    _require_extra(args.to)


def run_deploy_export(args) -> int:
    """The `export` command for --to tflite and onnx (after `check_deploy_export`): convert, write atomically."""
    from ..fileio import atomic_write_bytes
    target, source = args.to, Path(args.file).expanduser()
    kmodel, dataset, what, spec = _keras_model(args, source)
    from ..keras_backend import convert
    try:
        if target == "onnx":
            data = convert.to_onnx(kmodel, verbose=args.verbose)
        else:
            representative = None
            if args.int8:
                calibration = dataset.x_train[:args.calibration]
                representative = convert.representative_images(calibration)
                what += f"; int8, calibrated on {len(calibration):,} images of {terminal_text(dataset.source)}"
                what += ", int8 input and output" if args.int8_io else ", float32 input and output"
            data = convert.to_tflite(kmodel, representative, int8_io=args.int8_io, verbose=args.verbose)
    except convert.ConversionFailed as exc:
        layer = f"layer {exc.layer}" if exc.layer else "the model"
        raise RunError(f"cannot export {terminal_text(source)} to {exc.target}: {layer}: "
                       f"{terminal_text(exc.reason)}", code="E670",
                       hint=f"{_other_target(exc.target)}, or replace that layer's op (docs/deploy.md lists what "
                            "each target cannot express; --verbose shows the converter's output)") from None
    try:
        atomic_write_bytes(args.output, data, overwrite=False)
    except OSError as exc:
        raise RunError(f"cannot write {terminal_text(args.output)}: {exc.strerror or exc}",
                       hint="check the output folder and its permissions", code="E501") from None
    print(f"wrote {terminal_text(args.output)} ({len(data):,} bytes; {target} of {what})")
    if target == "tflite" and args.int8 and spec is not None:
        for line in flash_warnings(spec, len(data), args.output):
            print(f"warning: {line}", file=sys.stderr)
    return 0


def flash_warnings(spec, size: int, output) -> list[str]:
    """The spec's `assert flash` lines that the int8 file written (`size` bytes) breaks. `rf` and `check` hold them
    to the estimate; the file is the truth, and a trained model's file runs up to 9 % over the estimate."""
    from ..analysis import holds
    from ..analysis.memory import activation_memory
    spec_model, shown = spec
    broken = [a for a in spec_model.assertions
              if a.metric == "flash" and a.comparison not in ("in", "not in") and not holds(a, size)]
    if not broken:
        return []
    estimate = activation_memory(spec_model).flash_int8
    return [f"{terminal_text(output)} is {size:,} bytes: it breaks `{terminal_text(a.text)}` "
            f"({shown}:{a.where.line}:{a.where.column}); `archdsl rf` holds that assert to the estimate, {estimate:,} "
            "bytes, which a trained model's file can exceed by up to 9 %: leave that room under the limit "
            "(docs/deploy.md, Flash)" for a in broken]


def _other_target(failed: str) -> str:
    return {"onnx": "export --to tflite", "tflite": "export --to onnx",
            "tflite int8": "export the float32 .tflite (without --int8)"}[failed]


def _check_options(args, target: str, source: Path) -> None:
    suffix = {"tflite": ".tflite", "onnx": ".onnx"}[target]
    out = Path(args.output)
    if out.suffix.lower() != suffix:
        raise UsageError(f"--to {target} writes a {suffix} file, not '{terminal_text(out.suffix or out.name)}'",
                         hint=f"write e.g. -o {terminal_text(out.with_suffix(suffix).name) if out.name else 'model' + suffix}",
                         code="E671")
    if target != "tflite" and (args.int8 or args.int8_io):
        raise UsageError(f"--int8 and --int8-io are options of --to tflite, not --to {target}",
                         hint="leave them out, or export --to tflite --int8 --data D -o model.tflite", code="E672")
    if args.int8_io and not args.int8:
        raise UsageError("--int8-io makes an int8 model's input and output int8: it needs --int8",
                         hint="add --int8 --data D", code="E672")
    if args.int8 and args.data is None and not source.is_dir():
        raise UsageError("--int8 needs calibration images: the converter measures each tensor's range on them",
                         hint="add --data D (the data the model is trained on), or export a run (RUN_DIR), "
                              "which brings its own", code="E672")
    if args.calibration < 1:
        raise UsageError(f"--calibration must be at least 1, got {args.calibration}",
                         hint=f"leave it out for {CALIBRATION} images", code="E672")
    if args.last and not source.is_dir():
        raise UsageError("--last takes a run's last.keras: give a RUN_DIR", hint="leave --last out for a spec FILE",
                         code="E672")


def _require_extra(target: str) -> None:
    import importlib.util
    wanted = ("ai_edge_litert",) if target == "tflite" else ("tf2onnx", "onnx", "onnxruntime")
    missing = [name for name in wanted if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"{target} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not "
                         "installed", hint="pip install 'archdsl[deploy]'", code="E674")


def _keras_model(args, source: Path):
    """The Keras model to convert (raw pixels in), the dataset for calibration (or None), what it is, and
    (the spec's model, its file's name) for its asserts (None: a run whose resolved.json cannot be read)."""
    from .data import check_fits, load_dataset
    if source.is_dir():
        from .evaluate import load_keras_model, run_model
        path, data, trained = run_model(source, args.data, last=args.last)
        kmodel = load_keras_model(path, from_run=True)
        spec = None if trained is None else (trained, terminal_text(source / "spec.arch"))
        dataset = None
        if args.int8:
            dataset = load_dataset(data or "cifar10", args.data_dir, limit=args.calibration, test_limit=1)
            check_fits(dataset, tuple(kmodel.input_shape[1:]), int(kmodel.output_shape[-1]), subject="model")
        return kmodel, dataset, f"{terminal_text(path)}", spec
    from ..keras_backend.compile import compile as compile_keras
    from ..language import load
    from .pipeline import normalizer
    model = load(source)
    dataset = None
    if args.data is not None:
        dataset = load_dataset(args.data, args.data_dir, test_limit=1)
        check_fits(dataset, model.input_shape, model.classes, subject="spec")
    kind = model.train.normalize
    if dataset is None and kind == "standard":
        print(f"note: {terminal_text(source)} normalises with the training images' mean and deviation "
              "(`normalize standard`); without --data the file has no normaliser and reads normalised pixels",
              file=sys.stderr)
        preprocess = None
    else:
        preprocess = normalizer(kind, dataset.x_train if dataset is not None else None)
    return (compile_keras(model, preprocess=preprocess), dataset, f"{terminal_text(source)} (untrained)",
            (model, terminal_text(source)))


# --- evaluating a converted model -------------------------------------------------------------

def evaluate_converted(path: Path, data: str, data_dir, test_limit: int | None, tta: bool) -> int:
    """`archdsl eval model.tflite|model.onnx`: as for a .keras file; an int8 model's input is quantized with the
    scale and zero point its file declares, its output dequantized likewise."""
    from .data import check_fits, load_dataset
    from .evaluate import print_accuracy
    target = "tflite" if path.suffix.lower() == ".tflite" else "onnx"
    _require_extra(target)
    runner = _TFLite(path) if target == "tflite" else _ONNX(path)
    dataset = load_dataset(data, data_dir, limit=1, test_limit=test_limit)
    check_fits(dataset, runner.input_shape, runner.classes, subject="model")
    probs = runner.predict(dataset.x_test)
    if tta:
        probs = (probs + runner.predict(np.ascontiguousarray(dataset.x_test[:, :, ::-1]))) / 2
    print_accuracy(path, probs, dataset, tta, note=runner.note)
    return 0


def _unreadable(path: Path, exc: Exception, what: str) -> RunError:
    return RunError(f"cannot load {terminal_text(path)}: not a {what} model ({terminal_text(' '.join(str(exc).split())[:160])})",
                    hint="export it again: archdsl export FILE|RUN_DIR --to "
                         f"{'tflite' if what == 'TFLite' else 'onnx'} -o {terminal_text(path.name)}", code="E673")


class _TFLite:
    """A .tflite model run image by image (batch 1, as exported) with the LiteRT interpreter."""

    def __init__(self, path: Path):
        from ai_edge_litert.interpreter import Interpreter

        from ..keras_backend.convert import captured_output
        try:
            with captured_output():  # LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                self.interpreter = Interpreter(model_path=str(path))
                self.interpreter.allocate_tensors()
        except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: ValueError, RuntimeError
            raise _unreadable(path, exc, "TFLite") from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        shape = tuple(int(d) for d in self.input["shape"])
        self.input_shape = shape[1:]
        self.classes = int(self.output["shape"][-1]) if len(self.output["shape"]) == 2 else None
        if self.classes is None:
            raise RunError(f"the model's output is {'x'.join(map(str, self.output['shape'][1:]))}, not one score "
                           "per class", hint="evaluate a classifier", code="E532")
        self.note = f" ({np.dtype(self.input['dtype']).name} input)" if self.input["dtype"] != np.float32 else ""

    def predict(self, x_uint8):
        scale, zero = self.input["quantization"]
        out_scale, out_zero = self.output["quantization"]
        dtype = self.input["dtype"]
        probs = np.empty((len(x_uint8), self.classes), dtype=np.float32)
        for i, image in enumerate(x_uint8):
            x = image[None].astype(np.float32)
            if np.issubdtype(dtype, np.integer):  # the converter's declared quantization of the input
                info = np.iinfo(dtype)
                x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)
            self.interpreter.set_tensor(self.input["index"], x)
            self.interpreter.invoke()
            y = self.interpreter.get_tensor(self.output["index"])
            if np.issubdtype(y.dtype, np.integer):
                y = (y.astype(np.float32) - out_zero) * out_scale
            probs[i] = y[0]
        return probs


class _ONNX:
    """An .onnx model run with ONNX Runtime (CPU), in batches."""

    note = ""

    def __init__(self, path: Path):
        import onnxruntime as ort
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - truncated, not protobuf, or an invalid graph
            raise _unreadable(path, exc, "ONNX") from None
        self.input = self.session.get_inputs()[0]
        output = self.session.get_outputs()[0]
        self.input_shape = tuple(self.input.shape[1:])
        if len(output.shape) != 2 or not isinstance(output.shape[1], int):
            raise RunError(f"the model's output is {output.shape}, not one score per class",
                           hint="evaluate a classifier", code="E532")
        self.classes = int(output.shape[1])
        fixed = self.input.shape[0]
        self.batch = fixed if isinstance(fixed, int) else 256

    def predict(self, x_uint8):
        parts = [self.session.run(None, {self.input.name: x_uint8[i:i + self.batch].astype(np.float32)})[0]
                 for i in range(0, len(x_uint8), self.batch)]
        return np.concatenate(parts).astype(np.float32)
