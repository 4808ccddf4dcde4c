"""`archdsl eval`: the test accuracy, per-class accuracy and confusion matrix of a trained model.

    archdsl eval runs/best/20261125-220911          # the run's best.keras, on its own data
    archdsl eval model.keras --data cifar10 --tta   # any .keras file; flip test-time averaging
    archdsl eval model.tflite --data cifar10        # a converted model (training/deploy.py)

A run directory brings its data settings and the spec's `tta` along; a bare .keras file uses
`--data` (default: the built-in CIFAR-10).
"""
from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

from .. import runs
from ..errors import RunError, UsageError
from ..ir import Model
from ..safe_text import terminal_text


def run_eval(args) -> int:
    """Test accuracy, per-class accuracy and confusion matrix of a run's best.keras, a .keras file or a converted
    model (.tflite, .onnx)."""
    from .data import check_fits, load_dataset
    from .train import check_flags

    check_flags(args)
    target = Path(args.target).expanduser()
    data, data_dir, tta, test_limit = args.data, args.data_dir, args.tta, args.test_limit
    if target.is_file() and target.suffix.lower() in CONVERTED:
        from .deploy import evaluate_converted
        return evaluate_converted(target, data or "cifar10", data_dir, test_limit, tta)
    if target.is_dir():
        path, data, trained = run_model(target, data)
        tta = tta or (trained is not None and trained.train.tta_flip)
    elif target.is_file() and target.suffix == ".keras":
        path = target
    else:
        shown = terminal_text(target)
        raise UsageError(f"{shown} is neither a run directory nor a model file (.keras, .tflite, .onnx)"
                         if target.exists() else f"{shown} does not exist",
                         hint="e.g. archdsl eval runs/best/<timestamp>", code="E613")
    kmodel = load_keras_model(path, from_run=target.is_dir())
    dataset = load_dataset(data or "cifar10", data_dir, limit=1, test_limit=test_limit)

    import numpy as np

    from .pipeline import make_eval_dataset
    out = tuple(kmodel.output_shape[1:])
    if len(out) != 1:  # np.add.at below needs one predicted class per image
        raise RunError(f"the model's output is {'x'.join(map(str, out))}, not one score per class",
                       hint="evaluate a classifier: a spec that ends with e.g. `gap` and `softmax`", code="E532")
    check_fits(dataset, tuple(kmodel.input_shape[1:]), int(out[0]), subject="model")
    k = dataset.num_classes

    def predict(x):
        return kmodel.predict(make_eval_dataset(x, dataset.y_test, batch=256, num_classes=k), verbose=0)

    probs = predict(dataset.x_test)
    if tta:
        probs = (probs + predict(np.ascontiguousarray(dataset.x_test[:, :, ::-1]))) / 2
    print_accuracy(path, probs, dataset, tta)
    return 0


CONVERTED = (".tflite", ".onnx")


def run_model(run_dir: Path, data: str | None, last: bool = False) -> tuple[Path, str | None, Model | None]:
    """A run's best.keras (or last.keras), its data (`data` if given, else the run's own) and the model it trained
    (resolved.json: its `tta`, its asserts; None if that file cannot be read)."""
    run = runs.open_run(run_dir)
    path = run.last if last else run.best
    if not path.is_file():
        raise RunError(f"{terminal_text(run)} has no {path.name} yet (no epoch has finished)",
                       hint="train it for an epoch first, or give a .keras file", code="E530")
    try:  # the run's data is named in its state (the newest intact one, with a warning if that is not state.json)
        settings = runs.load_state(run, warn=_warn, check_model=False)["settings"]
    except RunError as exc:
        if data is None:
            raise RunError(exc.message, hint=f"the run's data is named in that file: give --data (and --data-dir) "
                           f"to use its {path.name}", code=exc.code) from None
        settings = {}  # --data given: the run's own settings are not needed
    try:
        trained = Model.model_validate_json(run.resolved.read_text())
    except (OSError, ValueError):
        trained = None
    return path, data or settings.get("data"), trained  # the cache stays the command line's (or the default)


def load_keras_model(path: Path, from_run: bool):
    """The model of a .keras file; one that cannot be loaded is an E531 (a run's own: damaged)."""
    hint = (f"the run's {path.name} is damaged: use a checkpoint instead (checkpoint/epoch-NNNN.keras)"
            if from_run else "give a .keras file written by `archdsl train` or `archdsl build`")
    if not zipfile.is_zipfile(path):  # Keras would say "file not found" of a file that exists
        raise RunError(f"cannot load {terminal_text(path)}: not a Keras .keras file (those are zip archives)",
                       hint=hint, code="E531")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from ..keras_backend.batchnorm import BatchNormalization
    try:  # a fused run's checkpoints, and best.keras of older runs, name "archdsl>BatchNormalization"
        return keras.models.load_model(path, compile=False,
                                       custom_objects={"archdsl>BatchNormalization": BatchNormalization})
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file: Keras raises anything
        raise RunError(f"cannot load {terminal_text(path)}: {terminal_text(' '.join(str(exc).split())[:160])}",
                       hint=hint, code="E531") from None


def print_accuracy(path: Path, probs, dataset, tta: bool = False, note: str = "") -> None:
    """The test accuracy line, the per-class accuracy and the confusion matrix of `probs` (images x classes)."""
    import numpy as np
    k = dataset.num_classes
    pred, true = probs.argmax(axis=1), dataset.y_test
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (true, pred), 1)
    print(f"{terminal_text(path)}: test accuracy {np.mean(pred == true):.4f} on {len(true):,} images of "
          f"{terminal_text(dataset.source)}" + (" (flip TTA)" if tta else "") + note)
    print(format_confusion(confusion, dataset.class_names))


def _warn(message: str) -> None:
    print(f"warning: {terminal_text(message)}", file=sys.stderr)


def format_confusion(confusion, names) -> str:
    """Per-class accuracy and the confusion matrix (rows: true class, columns: predicted)."""
    names = [terminal_text(n) for n in names]  # class folders' names: a terminal shows them, never obeys them
    k = len(names)
    width = max(5, len(str(int(confusion.max(initial=0)))))
    label = max(len(n) for n in names)
    lines = ["", f"{'class':<{label}}  accuracy   images"]
    for i, name in enumerate(names):
        total = int(confusion[i].sum())
        acc = f"{confusion[i, i] / total:8.4f}" if total else "       -"
        lines.append(f"{name:<{label}}  {acc}  {total:7,}")
    lines += ["", "confusion matrix (rows: true class, columns: predicted)",
              " " * label + "  " + " ".join(f"{n[:width]:>{width}}" for n in names)]
    for i, name in enumerate(names):
        lines.append(f"{name:<{label}}  " + " ".join(f"{int(c):>{width}}" for c in confusion[i]))
    return "\n".join(lines) if k else ""
