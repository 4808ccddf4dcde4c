"""`archdsl train`: train a spec on a dataset, checkpointing every epoch.

    metrics = train(model, dataset, epochs=2, batch=64, lr=None, seed=0,
                    run_dir=runs.create_run_dir(Path("runs"), "best"), resume=False, verbose=1)

What is random, and how a resumed run repeats it exactly:
- weight initialisation: `keras.utils.set_random_seed(seed)` before the model is built;
- shuffling and augmentation: pure functions of (seed, epoch, batch) in `pipeline`;
  a run resumed after epoch k builds its data from epoch k on;
- dropout: Keras seed generators, whose state is saved with every checkpoint (Keras'
  own `.keras` files leave it out) and restored on resume (`checkpoints`);
- learning rate: a function of (epoch, step), `schedules.lr_at`;
- optimizer state (moments, iteration count, EMA weights) and batch-norm statistics: in
  the checkpoint's `.keras` file.
TensorFlow's CPU kernels are made deterministic with `enable_op_determinism`.

Under a tf.distribute strategy (`distribute.py`: --strategy, --precision, --scale-lr) the
model and optimizer are built in the strategy's scope, the spec's batch is per replica, each
replica trains on its share of the global batch (`pipeline`), only the chief writes the run
directory (the other workers write the same files to a scratch folder that is removed), and
`--resume` works as above on every worker, with the same number of replicas.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import runs
from ..errors import DataError, RunError, UsageError
from ..keras_backend.tensorflow_start import import_tensorflow
from ..fileio import shown_path
from ..ir import Model
from . import checkpoints, distribute, holdout, schedules, whitening
from .overrides import (  # check_flags: also evaluate's
    apply_recipe,
    check_flags,
    check_resume_recipe,
    check_spec_copy,
    recipe_of,
    with_overrides,
)

# The batch norm a new run trains with (the back-end's fused kernel), and the one a run from
# before `--batchnorm` existed trained with, so that it resumes bit for bit.
NEW_RUN_BATCHNORM = "fused"
OLD_RUN_BATCHNORM = "keras"

# --- the commands ----------------------------------------------------------------------------

def run_train(args) -> int:
    check_flags(args)
    if args.resume:
        return _resume(args)
    if not args.file:
        raise UsageError("train needs a spec FILE (or --resume RUN_DIR)", hint="e.g. archdsl train specs/best.arch",
                         code="E610")
    from .. import load
    from .data import load_dataset

    recipe, sets = recipe_of(args)
    model = apply_recipe(load(args.file), recipe, shown_path(args.recipe or ""), sets)
    model = with_overrides(model, epochs=args.epochs, batch=args.batch_size, lr=args.lr,
                           strategy=_strategy_flag(args), val_split=getattr(args, "val_split", None))
    plan = _plan(args, model, args.precision or "fp32", args.scale_lr)
    out = runs.check_out(args.out) if plan.is_chief else None  # only the chief writes under --out
    settings = {"data": args.data or "cifar10", "data_dir": _abs(args.data_dir), "limit": args.limit,
                "test_limit": args.test_limit, "seed": 0 if args.seed is None else args.seed,
                "precision": plan.precision, "scale_lr": plan.scale_lr,
                "batchnorm": getattr(args, "batchnorm", None) or NEW_RUN_BATCHNORM,
                "recipe": _abs(args.recipe), "set": sets}
    import_tensorflow()  # once the command line is checked: its notice said once, after no error
    plan.connect()  # before the data is loaded: a worker that cannot join its cluster fails fast
    if args.limit is not None and args.test_limit is None:
        # a --limit run validates (or tests) on the matching share of the test split, not all of it; the
        # test limit that gives it is recorded, so a resume loads the same images
        full = load_dataset(settings["data"], args.data_dir)
        dataset, settings["test_limit"] = holdout.matching_test_split(full, args.limit)
        if settings["test_limit"] is not None:
            print(f"testing on {len(dataset.y_test):,} of the {len(full.y_test):,} test images, the share --limit "
                  f"{args.limit:,} is of the {len(full.y_train):,} training images (--test-limit N chooses)")
        del full
    else:
        dataset = load_dataset(settings["data"], args.data_dir, args.limit, args.test_limit)
    if settings["data"] != "cifar10":
        settings["data"] = dataset.source  # absolute: a resume may start in another folder
    check_data(model, dataset)
    holdout.split_dataset(dataset, model.train.val_split, settings["seed"])  # an impossible N: refused here
    run = None
    if plan.is_chief:
        run = runs.create_run_dir(out, Path(args.file).stem)
        runs.write_bytes(run.spec, Path(args.file).read_bytes())
        if recipe is not None:  # the text read above: what the run trains with, for a resume and a rerun
            runs.write_bytes(run.recipe, recipe.encode("utf-8"))
    return _train_and_report(model, dataset, run, settings, resume=False, verbose=args.verbose, plan=plan,
                             command=getattr(args, "command_line", None))


def _given(value, default):
    """The flag's value if given (0 included: it is checked, not replaced), else the default."""
    return default if value is None else value


def _strategy_flag(args) -> str | None:
    name = getattr(args, "strategy", None)
    return distribute.check_strategy(name) if name else None


def _plan(args, model: Model, precision: str, scale_lr: bool) -> distribute.Plan:
    return distribute.Plan(model.train.strategy, precision=precision, scale_lr=bool(scale_lr),
                           peer_timeout=_given(getattr(args, "peer_timeout", None), distribute.DEFAULT_PEER_TIMEOUT),
                           final_weights=getattr(args, "final_weights", None))


def _resume(args) -> int:
    from .data import load_dataset

    run = runs.open_run(args.resume)
    state = runs.load_state(run)  # `train` loads it again under the run's lock, and warns of any fallback
    settings = state["settings"]
    given = {"--epochs": (args.epochs, state["epochs"]), "--batch-size": (args.batch_size, state["batch"]),
             "--lr": (args.lr, state["lr"]), "--limit": (args.limit, settings["limit"]),
             "--test-limit": (args.test_limit, settings["test_limit"]), "--seed": (args.seed, settings["seed"]),
             "--precision": (args.precision and distribute.check_precision(args.precision),
                             settings.get("precision", "fp32"))}
    if args.scale_lr and not settings.get("scale_lr"):
        given["--scale-lr"] = (True, "unscaled learning rate")
    if getattr(args, "val_split", None) not in (None, settings.get("val_split") or 0):
        given["--val-split"] = (args.val_split, settings.get("val_split") or 0)
    for flag, (value, kept) in given.items():
        if value is not None and value != kept:
            raise UsageError(f"{flag} {value} differs from the run's {kept}: a resumed run keeps its settings",
                             hint=f"leave out {flag}, or start a new run", code="E611")
    kept = settings.get("batchnorm", OLD_RUN_BATCHNORM)
    if getattr(args, "batchnorm", None) not in (None, kept):
        # the one setting a resume may change: the same function, computed with other rounding
        _warn(f"--batchnorm {args.batchnorm}: the run trained with {kept} batch norm so far; the same function "
              "with other rounding, so the resumed run will not equal an uninterrupted one bit for bit; the run "
              "records the switch with its next checkpoint (stopped before, it resumes with its own again)")
        settings = {**settings, "batchnorm": args.batchnorm}
    if args.data and args.data != settings["data"] and _abs(args.data) != settings["data"]:
        raise UsageError(f"--data {args.data} differs from the run's {settings['data']}",
                         hint="leave out --data to resume on the run's own data", code="E611")
    check_resume_recipe(args, run, settings)
    if args.file:  # a spec named beside --resume must at least exist (a typo is not silently ignored)
        from ..language.parser import BOM, read_source
        # the run's copy is the user's file byte for byte, a byte order mark included (read_source drops it)
        if read_source(args.file).encode("utf-8") != run.spec.read_bytes().removeprefix(BOM.encode("utf-8")):
            _warn(f"{args.file} differs from the run's spec.arch; resuming with the run's copy")
    if state.get("complete"):  # after the checks above: `--epochs 5` on a finished run is refused, not ignored
        best, val = state["best"], _val_name(settings)
        said = (f"best {val} accuracy {best['val_accuracy']:.4f} at epoch {best['epoch']}" if best["epoch"]
                else f"no {val} accuracy")  # the state is checked (runs/state.py): both or neither
        print(f"run {run} is complete: {state['epoch']}/{state['epochs']} epochs, {said}; nothing to do")
        return 0
    try:
        model = Model.model_validate_json(run.resolved.read_text())
    except (OSError, ValueError) as exc:
        raise RunError(f"corrupt run file {run.resolved}: {' '.join(str(exc).split())[:160]}",
                       hint="the run cannot be resumed; start a new run", code="E523") from None
    check_spec_copy(run, model, state)
    if _strategy_flag(args):
        model = with_overrides(model, strategy=_strategy_flag(args))
    plan = _plan(args, model, settings.get("precision", "fp32"), settings.get("scale_lr", False))
    import_tensorflow()
    plan.connect()
    # the cache is the command line's or the default one, never a folder named by the run's files (state.json
    # records the first --data-dir only as a note): a run folder from elsewhere must not write outside itself
    dataset = load_dataset(settings["data"], args.data_dir, settings["limit"], settings["test_limit"])
    check_data(model, dataset)
    if state["data"].get("fingerprint") not in (None, runs.data_fingerprint(dataset)):
        _warn(f"the data of {settings['data']} differs from what the run trained on; "
              "the resumed run will not equal an uninterrupted one")
    print(f"resuming {run} after epoch {state['epoch']} of {state['epochs']}")
    return _train_and_report(model, dataset, run, settings, resume=True, verbose=args.verbose, plan=plan,
                             command=getattr(args, "command_line", None))


def _train_and_report(model: Model, dataset, run: runs.RunDir | None, settings: dict, *, resume: bool,
                      verbose: int, plan: distribute.Plan | None = None, command: str | None = None) -> int:
    plan = plan or distribute.Plan(model.train.strategy)
    try:
        metrics = train(model, dataset, seed=settings["seed"], run_dir=run, resume=resume, verbose=verbose,
                        settings=settings, plan=plan, command=command)
    except KeyboardInterrupt:
        if plan.is_chief:
            done = runs.load_state(run)["epoch"]
            kept = f"keeps the checkpoint of epoch {done}" if done else "has no complete epoch yet"
            print(f"\ninterrupted; {run} {kept}. Resume with:\n  archdsl train --resume {run}", file=sys.stderr)
        return 130
    if plan.is_chief:
        print_summary(metrics)
    else:
        print(f"worker {plan.worker_id} of {plan.workers} done: epoch {metrics['epochs_done']}/{metrics['epochs']}, "
              f"{_val_name(metrics)} accuracy {metrics['final_val_accuracy']:.4f}; the chief wrote the run directory")
    plan.finish()
    return 0


def print_summary(m: dict) -> None:
    val = _val_name(m)
    print(f"best {val} accuracy {m['best_val_accuracy']:.4f} at epoch {m['best_epoch']}, "
          f"final {val} accuracy {m['final_val_accuracy']:.4f} (epoch {m['epochs_done']}/{m['epochs']})")
    if m.get("test_accuracy") is not None:
        final = (f"; the final model's {m['final_test_accuracy']:.4f}" if m["final_test_accuracy"] != m["test_accuracy"]
                 else "")
        print(f"test accuracy {m['test_accuracy']:.4f} of best.keras on {m['test_images']:,} test images, scored "
              f"once{final}")
    print(f"wall time {m['wall_seconds']:.1f} s ({m['train_seconds']:.1f} s training), "
          f"{m['images_per_second']:,.0f} training images/s")
    print(f"run directory: {m['run_dir']}")


# --- the library function --------------------------------------------------------------------

def train(model: Model, dataset, *, epochs: int | None = None, batch: int | None = None, lr: float | None = None,
          seed: int = 0, run_dir: runs.RunDir | str | os.PathLike | None, resume: bool = False, verbose: int = 1,
          settings: dict | None = None, plan: distribute.Plan | None = None, command: str | None = None,
          callbacks: Sequence = ()) -> dict:
    """Train `model` on `dataset` into `run_dir` (a new, empty run, or one to resume); returns metrics.

    `epochs`, `batch` and `lr` override the spec's train section (not allowed with resume,
    which also takes the seed from the run). `plan`: strategy, precision and LR scaling
    (default: the spec's strategy, fp32). A worker that is not the chief reads `run_dir`
    (only to resume; None otherwise) and writes to a scratch folder it removes at the end.
    `command`: the command line, kept in the run (with the epoch it started from) so that
    a result can be rerun exactly. `callbacks`: Keras callbacks run after the epoch's checkpoint
    (`archdsl tune` reports each epoch's validation accuracy to its pruner, and stops the fit).
    """
    plan = plan or distribute.Plan(model.train.strategy)
    chief = plan.is_chief
    run = run_dir if isinstance(run_dir, runs.RunDir) or run_dir is None else runs.RunDir(run_dir)
    if run is None and (chief or resume):
        raise ValueError("train() needs the run_dir to write (the chief) or to resume from")
    if resume:
        runs.open_run(run.path)
    writes = run if chief else runs.RunDir(distribute.scratch_dir(plan.worker_id))
    writes.checkpoint.mkdir(parents=True, exist_ok=True)
    try:
        with runs.RunLock(run) if chief else contextlib.nullcontext():
            if resume:
                if (epochs, batch, lr) != (None, None, None):
                    raise UsageError("a resumed run keeps its epochs, batch and lr",
                                     hint="resume without --epochs, --batch and --lr; to change them, start a new run",
                                     code="E611")
                state = runs.load_state(run, warn=_warn)
                if settings and "batchnorm" in settings:
                    state["settings"]["batchnorm"] = settings["batchnorm"]
                if chief:  # only the chief writes the run
                    runs.check_history(run, state, warn=_warn)
            else:
                model = with_overrides(model, epochs=epochs, batch=batch, lr=lr)
                state = _initial_state(model, dataset, seed, settings)
            if command:  # every process that trains the run adds its command line, before a new run's first write
                state.setdefault("commands", []).append({"command": command, "from_epoch": state["epoch"]})
            if not resume:
                if not writes.spec.exists():
                    runs.write_bytes(writes.spec, _spec_bytes(model))
                runs.write_bytes(writes.resolved, model.model_dump_json(indent=1).encode())
                runs.write_json(writes.state, state)
            check_data(model, dataset)
            if state["complete"]:
                return runs.summarize(state, run)
            return _fit(model, dataset, writes, state, verbose, plan, callbacks)
    finally:
        if not chief:
            shutil.rmtree(writes.path, ignore_errors=True)


def _val_name(m: dict) -> str:
    """How a run's (state settings' or metrics') validation is named: held out, or the seed's test split."""
    return "val (held out)" if m.get("val_split") else holdout.VAL_TEST_SPLIT


def _fit(model: Model, dataset, run: runs.RunDir, state: dict, verbose: int, plan: distribute.Plan,
         extra_callbacks: Sequence = ()) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    strategy = plan.connect()  # first: a multi-worker strategy must set TensorFlow up before anything runs
    import keras
    import numpy as np
    import tensorflow as tf

    from ..keras_backend.compile import compile as compile_keras
    from .pipeline import (
        make_eval_dataset,
        make_train_dataset,
        normalizer,
        steps_per_epoch,
    )

    cfg, seed, start = plan.scaled(model.train), state["settings"]["seed"], state["epoch"]
    before = (state.get("distribution") or {}).get("replicas", 1)
    if state.get("checkpoint_path") and before != plan.replicas:
        raise RunError(f"the run trained on {before} replica{'s' if before > 1 else ''}, this process has "
                       f"{plan.replicas}: the global batch would change", code="E526",
                       hint="resume with the strategy, workers and GPUs the run started with")
    batchnorm = state["settings"].get("batchnorm", OLD_RUN_BATCHNORM)
    parts = holdout.split_dataset(dataset, state["settings"].get("val_split"), seed)  # the same on a resume
    if verbose:
        print(f"{plan.summary(model.train)}; batch norm {batchnorm}")
        print(holdout.describe(parts))
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    n, classes = len(parts.x_train), model.output.output_shape[0]
    batch = cfg.batch * plan.replicas  # the global batch
    steps = steps_per_epoch(n, batch, plan.replicas) * cfg.passes  # `passes N`: N pipeline epochs in one
    with strategy.scope() if strategy else contextlib.nullcontext(), distribute.dtype_policy(plan.precision):
        kmodel = compile_keras(model, preprocess=normalizer(cfg.normalize, parts.x_train),
                               batchnorm=batchnorm)
        if plan.precision != "fp32":
            distribute.float32_head(kmodel)
        kmodel.compile(optimizer=schedules.make_optimizer(cfg), loss=schedules.make_loss(cfg), metrics=["accuracy"],
                       jit_compile=False)
        if state.get("checkpoint_path"):
            checkpoints.restore(kmodel, state, start * steps)
        else:
            whitening.set_whitened_kernels(model, kmodel, parts.x_train)  # a fresh run only
    state["params"] = int(kmodel.count_params())
    state["distribution"] = plan.describe(model.train)
    train_ds = plan.distribute(lambda ids, replicas: make_train_dataset(
        parts.x_train, parts.y_train, batch=batch, num_classes=classes, augment=cfg.augment, seed=seed,
        epoch=start * cfg.passes, epochs=(cfg.epochs - start) * cfg.passes, replicas=replicas, replica_ids=ids))

    def eval_data(x, y):
        def one(ids, replicas):
            ds = make_eval_dataset(x, y, batch=batch, num_classes=classes, replicas=replicas, replica_ids=ids)
            return ds if strategy is None else ds.repeat()  # a distributed dataset has no known length: count steps
        return plan.distribute(one), None if strategy is None else steps_per_epoch(len(x), batch)

    val_ds, val_steps = eval_data(parts.x_val, parts.y_val)
    bn_averages = schedules.BatchNormAverages(kmodel, cfg.ema, state.get("ema_batch_norm")) if cfg.ema else None
    checkpointer = checkpoints.checkpointer(keras, run, state, kmodel, bn_averages)
    callbacks = [schedules.schedule_callback(cfg, cfg.epochs, steps)]
    if strategy is not None:
        callbacks.append(distribute.batch_norm_averaging(kmodel, strategy))
    if bn_averages is not None:
        callbacks += [bn_averages.callback(), schedules.ema_validation(kmodel, bn_averages)]
    callbacks += [checkpoints.tensorboard(keras, tf, run.tb), checkpointer]
    if verbose:
        callbacks.append(holdout.epoch_line(keras, parts))
    callbacks += list(extra_callbacks)
    shapes = (np.zeros((1, *model.input_shape), np.float32), np.zeros((1, classes), np.float32))
    try:
        with distribute.keras_fit_fixes(kmodel, shapes) if strategy else contextlib.nullcontext():
            kmodel.fit(train_ds, epochs=cfg.epochs, initial_epoch=start, steps_per_epoch=steps,
                       validation_data=val_ds, validation_steps=val_steps, callbacks=callbacks, verbose=verbose,
                       shuffle=False)
    except tf.errors.OpError as exc:
        if plan.kind != "multiworker":
            raise
        done = checkpointer.state["epoch"]
        raise RunError(f"worker {plan.worker_id} lost the cluster during training ({type(exc).__name__}: "
                       f"{distribute.first_line(exc)})",
                       hint=f"the run keeps the checkpoint of epoch {done}; restart every worker with "
                            "`archdsl train --resume RUN_DIR --strategy multiworker`", code="E551") from None
    if plan.final_weights:
        distribute.save_final_weights(kmodel, plan.final_weights)
    if parts.x_test is not None and checkpointer.state["complete"]:  # held out: the test split, scored once

        def test_accuracy(ema: bool) -> float:
            ds, steps = eval_data(parts.x_test, parts.y_test)
            swap = [schedules.ema_validation(kmodel, bn_averages)] if ema and bn_averages is not None else []
            return float(kmodel.evaluate(ds, steps=steps, callbacks=swap, verbose=0, return_dict=True)["accuracy"])

        holdout.score_test(kmodel, run, checkpointer.state, test_accuracy, len(parts.y_test))
    return runs.summarize(checkpointer.state, run)


def check_data(model: Model, dataset) -> None:
    """DataError unless the spec's input shape and class count match the data."""
    from .data import check_fits

    out = model.output.output_shape
    if len(out) != 1:
        raise DataError(f"the model's output is {'x'.join(map(str, out))}, not one score per class",
                        hint="end the spec with a vector of class scores, e.g. `gap` and `softmax`")
    check_fits(dataset, model.input_shape, model.classes if model.classes is not None else out[0])


def _initial_state(model: Model, dataset, seed: int, settings: dict | None) -> dict:
    cfg = model.train
    settings = dict(settings or {})
    settings.setdefault("data", dataset.source)
    for key in ("data_dir", "limit", "test_limit", "recipe"):
        settings.setdefault(key, None)
    settings.setdefault("set", [])
    settings["seed"] = seed
    settings.setdefault("batchnorm", NEW_RUN_BATCHNORM)
    settings["val_split"] = cfg.val_split or None  # the report labels its curve by it
    return {"format": runs.FORMAT, "spec": model.name, "epoch": 0, "epochs": cfg.epochs, "batch": cfg.batch,
            "passes": cfg.passes, "lr": cfg.lr, "complete": False, "checkpoint": None, "sha256": None,
            "settings": settings,
            "data": {"source": dataset.source, "fingerprint": runs.data_fingerprint(dataset),
                     "archive_sha256": getattr(dataset, "archive_sha256", None),
                     # the images trained on, and (--val-split) held out of them
                     "train_images": int(len(dataset.x_train)) - cfg.val_split, "val_images": cfg.val_split,
                     "test_images": int(len(dataset.x_test)), "classes": list(dataset.class_names)},
            "rng": {"seed": seed, "seed_generators": []}, "best": {"epoch": None, "val_accuracy": None},
            "history": []}


def _spec_bytes(model: Model) -> bytes:
    try:
        return Path(model.file).read_bytes()
    except OSError:
        return b""


def _abs(path: str | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else None


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
