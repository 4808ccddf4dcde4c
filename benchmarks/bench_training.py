#!/usr/bin/env python
"""Training speed of archdsl on this machine. A script, not a test: nothing here asserts a time.

    python benchmarks/bench_training.py                                 # all four benchmarks
    python benchmarks/bench_training.py --bench model --steps 150 --repeats 5
    python benchmarks/bench_training.py --data synthetic --steps 2 --repeats 1   # smoke run, < 1 min

Benchmarks (--bench, comma-separated, default all):

  model     compiled specs/best.arch vs tests/seed_models.py's hand-written best_model: one
            process, same pipeline (make_train_dataset + the spec's normalizer), same optimizer,
            timed windows interleaved A B / B A / ... Target: ratio >= 0.98.
  pipeline  archdsl's input (make_train_dataset, uint8 -> float batches, flip on batches, the
            normaliser in the model) vs the seed's way (model.fit on in-memory float32 x/255
            arrays of the whole training set, batch 128, shuffle=True), both on the compiled best
            model. Also: archdsl's pipeline with tf.data autotuning (what it uses on machines with
            more than 4 cores; see archdsl/training/pipeline.py BATCHING); the seed's way
            plus a keras RandomFlip layer (the same augmentation, done in the model); the
            pipeline alone (iterating batches, no model); the train step alone (a fixed batch,
            cached, repeated). Target: ratio >= 1.0.
  settings  oneDNN on/off, intra/inter-op threads, op determinism off, channels_first,
            mixed_bfloat16, against archdsl train's defaults: one long-lived process per variant
            (environment variables and thread pools are fixed when TensorFlow starts), their
            timed windows interleaved round by round (idle ones wait on a pipe).
  epoch     real epochs of specs/base.arch and specs/best.arch through archdsl.training.train.train (what
            `archdsl train` runs: validation and checkpoints included), in a fresh process each.

Speeds are steady-state training images/s: the time between the ends of batch `--skip` and
the last batch of a timed window of `--steps` batches (the first batches of a `fit` call
start the iterator and fill the prefetch buffer). Ratios are the median over rounds of
the per-round ratio (A and B run back to back in each round, so background load that
drifts slowly hits both alike); medians of each side are printed too. The load average
is printed with every number: numbers taken while other processes use the cores are not
absolute numbers.

XLA (jit_compile) is never enabled: it is pathologically slow on CPU.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ARCHIVE = ROOT.parent / "shared" / "data" / "cifar10-jpg.tar.gz"
BENCHES = ("model", "pipeline", "settings", "epoch")

# name: (environment, intra-op threads, inter-op threads, op determinism, dtype policy, data format)
# "default" is what `archdsl train` runs with: TensorFlow's own oneDNN default, its own thread
# pools (0 = one thread per core), op determinism on, float32, channels_last.
VARIANTS = {
    "default": ({}, 0, 0, True, "float32", "channels_last"),
    "onednn=1": ({"TF_ENABLE_ONEDNN_OPTS": "1"}, 0, 0, True, "float32", "channels_last"),
    "onednn=0": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, 0, 0, True, "float32", "channels_last"),
    "intra=1/inter=1": ({}, 1, 1, True, "float32", "channels_last"),
    "intra=2/inter=1": ({}, 2, 1, True, "float32", "channels_last"),
    "intra=1/inter=2": ({}, 1, 2, True, "float32", "channels_last"),
    "intra=2/inter=2": ({}, 2, 2, True, "float32", "channels_last"),
    "determinism=off": ({}, 0, 0, False, "float32", "channels_last"),
    "channels_first": ({}, 0, 0, True, "float32", "channels_first"),
    "mixed_bfloat16": ({}, 0, 0, True, "mixed_bfloat16", "channels_last"),
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", default="all", help=f"comma-separated: {', '.join(BENCHES)} (default: all)")
    p.add_argument("--steps", type=int, default=100, help="batches per timed window (>= 2; default 100)")
    p.add_argument("--repeats", type=int, default=3, help="timed windows per side, interleaved (default 3)")
    p.add_argument("--warmup", type=int, default=10, help="untimed batches that trace each model first")
    p.add_argument("--skip", type=int, default=3, help="batches at the start of each window left out")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--data", default=str(DEFAULT_ARCHIVE) if DEFAULT_ARCHIVE.is_file() else "cifar10",
                   help="dataset for load_dataset, or 'synthetic' (random images; default: the shared "
                        "CIFAR-10 archive)")
    p.add_argument("--data-dir", help="dataset cache (default: $ARCHDSL_DATA or ~/.cache/archdsl)")
    p.add_argument("--synthetic-n", type=int, default=1024, help="training images of --data synthetic")
    p.add_argument("--spec", default=str(ROOT / "specs" / "best.arch"), help="model of model/pipeline/settings")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help=f"settings to compare (default: all): {', '.join(VARIANTS)}")
    p.add_argument("--epoch-specs", default="specs/base.arch,specs/best.arch")
    p.add_argument("--epochs", type=int, default=1, help="epochs per spec in the epoch benchmark")
    p.add_argument("--epoch-limit", type=int,
                   help="train the epoch benchmark on the first N images and extrapolate to the full split")
    p.add_argument("--determinism", choices=["on", "off"], default="on",
                   help="op determinism in the model and pipeline benchmarks (archdsl train: on)")
    p.add_argument("--json", help="also write all results to this JSON file")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--worker-args", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return _worker(args)
    if args.steps < 2 or args.repeats < 1 or not 0 <= args.skip:
        p.error("need --steps >= 2, --repeats >= 1, --skip >= 0")
    args.skip = min(args.skip, args.steps - 2)
    benches = BENCHES if args.bench == "all" else tuple(b.strip() for b in args.bench.split(","))
    unknown = [b for b in benches if b not in BENCHES]
    if unknown:
        p.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHES)}")

    if {"model", "pipeline"} & set(benches):
        keras, tf = _tf()
        keras.utils.set_random_seed(0)  # as archdsl train; determinism needs seeded random ops
        if args.determinism == "on":
            tf.config.experimental.enable_op_determinism()
    results = {"machine": machine(), "args": {k: v for k, v in vars(args).items() if not k.startswith("worker")}}
    print(_machine_line(results["machine"]))
    for bench in benches:
        print(f"\n== {bench} ==  (load average at start {_load()})", flush=True)
        t0 = time.perf_counter()
        results[bench] = {"model": bench_model, "pipeline": bench_pipeline, "settings": bench_settings,
                          "epoch": bench_epoch}[bench](args)
        results[bench]["load_end"] = _load()
        print(f"({bench}: {time.perf_counter() - t0:.0f} s, load average at end {_load()})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


# --- the benchmarks ----------------------------------------------------------------------------

def bench_model(args) -> dict:
    """Compiled vs hand-written best, one process, the same pipeline, interleaved windows.

    The compiled model as `archdsl train` builds it (batch norm on TensorFlow's fused kernel), and
    with Keras' own batch norm, the layer the hand-written model uses.
    """
    keras, tf = _tf()
    from archdsl import load
    from archdsl.training.pipeline import normalizer

    spec = load(args.spec)
    data = _data(args)
    sys.path.insert(0, str(ROOT / "tests"))
    from seed_models import SEED_MODELS

    compiled, compiled_keras_bn = _compiled(spec, data), _compiled(spec, data, batchnorm="keras")
    inputs = keras.Input(spec.input_shape)
    hand = SEED_MODELS[spec.name](data.num_classes)
    hand = keras.Model(inputs, hand(normalizer(spec.train.normalize, data.x_train)(inputs)), name="hand")
    for m in (compiled, compiled_keras_bn, hand):
        _compile(m, spec)
    params = (compiled.count_params(), hand.count_params())
    print(f"params: compiled {params[0]:,}, hand-written {params[1]:,}")
    sides = {"compiled": compiled, "compiled_keras_bn": compiled_keras_bn, "hand": hand}
    feed = _feeder(args, spec, data)
    out = _interleave(args, {name: (lambda r, a, m=m: _fit_rate(a, m, feed(r))) for name, m in sides.items()},
                      ratio=("compiled", "hand"), target=0.98, rotate=True, extra={"params": params})
    out["fused_vs_keras_bn"] = _paired(out["runs"], "compiled", "compiled_keras_bn")
    out["keras_bn_vs_hand"] = _paired(out["runs"], "compiled_keras_bn", "hand")
    print(f"ratio compiled/compiled_keras_bn (fused batch norm): {out['fused_vs_keras_bn']:.3f}; "
          f"compiled_keras_bn/hand: {out['keras_bn_vs_hand']:.3f}")
    return out


def bench_pipeline(args) -> dict:
    """archdsl's tf.data input vs model.fit on float32 arrays; the pipeline alone; the step alone."""
    keras, tf = _tf()
    import numpy as np
    from archdsl import load

    spec = load(args.spec)
    data = _data(args)
    k = data.num_classes
    x_f = data.x_train.astype(np.float32) / np.float32(255)   # the seed's arrays: the whole training set
    y_f = keras.utils.to_categorical(data.y_train, k).astype(np.float32)
    archdsl_model = _compile(_compiled(spec, data), spec)
    seed_model = _compile(_compiled(spec, data, preprocess=None), spec)
    flip_model = _compile(_compiled(spec, data, preprocess=keras.layers.RandomFlip("horizontal", seed=0)), spec)
    feed = _feeder(args, spec, data)
    fixed = next(iter(feed(0)))
    cached = tf.data.Dataset.from_tensors(fixed).repeat()   # one batch, no input work at all
    step_model = _compile(_compiled(spec, data), spec)
    autotune_model = _compile(_compiled(spec, data), spec)

    def arrays(model):
        return lambda r, a: _fit_rate(a, model, (x_f, y_f), shuffle=True)

    def pipeline_alone(r, a):
        it = iter(feed(r))
        for _ in range(a.skip + 1):
            next(it)
        t0 = time.perf_counter()
        for _ in range(a.steps - a.skip - 1):
            images, _labels = next(it)
        _ = images.numpy()
        return (a.steps - a.skip - 1) * a.batch / (time.perf_counter() - t0)

    def autotuned(r):  # archdsl's pipeline as it is on a machine with more than pipeline.SMALL_CPU cores
        from archdsl.training import pipeline

        pipeline.BATCHING = "autotune"
        try:
            return feed(r)
        finally:
            pipeline.BATCHING = None

    sides = {"archdsl": lambda r, a: _fit_rate(a, archdsl_model, feed(r)),
             "archdsl_autotune": lambda r, a: _fit_rate(a, autotune_model, autotuned(r)),
             "seed_arrays": arrays(seed_model),
             "seed_arrays+flip": arrays(flip_model),
             "pipeline_alone": pipeline_alone,
             "step_alone": lambda r, a: _fit_rate(a, step_model, cached)}
    out = _interleave(args, sides, ratio=("archdsl", "seed_arrays"), target=1.0)
    med = out["median"]
    out["ratio_vs_seed_arrays+flip"] = _paired(out["runs"], "archdsl", "seed_arrays+flip")
    # both share two cores: if neither overlapped the other, images/s would be 1 / (1/P + 1/S)
    out["serial_estimate"] = 1 / (1 / med["pipeline_alone"] + 1 / med["step_alone"])
    print(f"archdsl vs seed_arrays+flip (same augmentation): {out['ratio_vs_seed_arrays+flip']:.3f}")
    print(f"pipeline alone {med['pipeline_alone']:,.0f} img/s, train step alone {med['step_alone']:,.0f} img/s: "
          f"{'compute' if med['pipeline_alone'] > med['step_alone'] else 'input'}-bound; "
          f"no-overlap estimate {out['serial_estimate']:,.0f} img/s, measured {med['archdsl']:,.0f}")
    return out


def bench_settings(args) -> dict:
    """One long-lived process per variant; their timed windows interleaved round by round.

    Environment variables and thread pools are fixed when TensorFlow starts, so each
    variant needs its own process; keeping the processes alive (idle ones wait on a pipe
    and use no CPU) lets the windows alternate every few seconds, like the in-process
    benchmarks, instead of once per process start.
    """
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [v for v in names if v not in VARIANTS]
    if bad:
        raise SystemExit(f"unknown variant {bad[0]!r}; choose from {', '.join(VARIANTS)}")
    workers = {}
    try:
        for name in names:  # they start (import, build, trace, warm up) side by side; untimed
            workers[name] = _Worker(args, "settings", {"variant": name}, VARIANTS[name][0])
        info = {name: w.ready() for name, w in workers.items()}
        for name, i in info.items():
            print(f"  {name:<18} oneDNN {'on' if i['onednn'] else 'off'}, intra {i['intra']}, inter {i['inter']}, "
                  f"{i['policy']}, {i['data_format']}")
        sides = {name: (lambda r, a, w=w: w.run(r)) for name, w in workers.items()}
        out = _interleave(args, sides, ratio=None, target=None, rotate=True, warm=False, extra={"info": info})
    finally:
        for w in workers.values():
            w.close()
    if "default" in names:
        out["vs_default"] = {n: _paired(out["runs"], n, "default") for n in names}
        print("vs default (median of per-round ratios): "
              + ", ".join(f"{n} {r:.3f}" for n, r in out["vs_default"].items()))
    return out


def bench_epoch(args) -> dict:
    out = {}
    for spec in [s.strip() for s in args.epoch_specs.split(",") if s.strip()]:
        r = _run_worker(args, "epoch", {"spec": spec})
        out[spec] = r
        note = " (EXTRAPOLATED from %d images)" % r["images"] if r["extrapolated"] else ""
        for row in r["history"]:
            print(f"{spec} epoch {row['epoch']}: {row['train_seconds']:.1f} s training + "
                  f"{row['seconds'] - row['train_seconds']:.1f} s validation and checkpoint = "
                  f"{row['seconds']:.1f} s; full-split training epoch {row['full_epoch_train_seconds']:.1f} s"
                  f"{note}  [load {r['load']}]", flush=True)
    return out


# --- measuring -------------------------------------------------------------------------------

def _interleave(args, sides: dict, *, ratio, target, rotate=False, warm=True, extra=None) -> dict:
    """Run each side once per round, in an order that alternates (or rotates), `repeats` rounds.

    `sides`: name -> f(round, args) -> images/s (or a dict with "rate"). With `warm`, each side
    first runs an untimed window of --warmup batches (tracing, allocation).
    """
    names = list(sides)
    if warm:
        short = argparse.Namespace(**{**vars(args), "steps": max(2, args.warmup), "skip": 0})
        for name in names:
            sides[name](-1, short)
    runs = []
    for r in range(args.repeats):
        order = names[r % len(names):] + names[:r % len(names)] if rotate else (names if r % 2 == 0 else names[::-1])
        for name in order:
            before = _load()
            value = sides[name](r, args)
            if isinstance(value, dict):
                rate, info = value["rate"], value
            else:
                rate, info = value, {}
            runs.append({"round": r, "side": name, "rate": rate, "load": before, **{k: v for k, v in info.items()
                                                                                  if k != "rate"}})
            print(f"  round {r} {name:<18} {rate:9,.0f} img/s   load {before}", flush=True)
    median = {n: statistics.median(x["rate"] for x in runs if x["side"] == n) for n in names}
    out = {"runs": runs, "median": median, **(extra or {})}
    print("median img/s: " + ", ".join(f"{n} {v:,.0f}" for n, v in median.items()))
    if ratio:
        out["ratio"] = _paired(runs, *ratio)
        out["ratio_of_medians"] = median[ratio[0]] / median[ratio[1]]
        out["target"] = target
        print(f"ratio {ratio[0]}/{ratio[1]}: {out['ratio']:.3f} (median of per-round ratios; ratio of medians "
              f"{out['ratio_of_medians']:.3f}); target >= {target}")
    return out


def _paired(runs, a: str, b: str) -> float:
    by_round = {}
    for x in runs:
        by_round.setdefault(x["round"], {})[x["side"]] = x["rate"]
    return statistics.median(v[a] / v[b] for v in by_round.values() if a in v and b in v)


def _fit_rate(args, model, data, **fit_kw) -> float:
    """Steady-state training images/s of one `fit` call of `--steps` batches."""
    keras, _ = _tf()
    times = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter())

    if isinstance(data, tuple):
        fit_kw.update(x=data[0], y=data[1], batch_size=args.batch)
    else:
        fit_kw.update(x=data, shuffle=False)  # a dataset is shuffled by itself
    model.fit(epochs=1, steps_per_epoch=args.steps, callbacks=[Timer()], verbose=0, **fit_kw)
    if len(times) != args.steps:
        raise RuntimeError(f"expected {args.steps} batches, timed {len(times)}")
    return (len(times) - 1 - args.skip) * args.batch / (times[-1] - times[args.skip])


def _feeder(args, spec, data):
    """r -> archdsl's training dataset for window r (its own epoch: a fresh order), with enough batches."""
    from archdsl.training.pipeline import make_train_dataset

    n = len(data.x_train)
    epochs = math.ceil((args.steps + args.warmup + 1) * args.batch / n)

    def feed(r):  # r = -1: the warm-up window
        return make_train_dataset(data.x_train, data.y_train, batch=args.batch, num_classes=data.num_classes,
                                  augment=spec.train.augment, seed=0, epoch=(r + 1) * epochs, epochs=epochs)
    return feed


def _compiled(spec, data, preprocess="normalizer", batchnorm="fused"):
    """The spec's Keras model as `archdsl train` builds it (unless told another batch norm)."""
    from archdsl.keras_backend.compile import compile as compile_keras
    from archdsl.training.pipeline import normalizer

    if preprocess == "normalizer":
        preprocess = normalizer(spec.train.normalize, data.x_train)
    return compile_keras(spec, preprocess=preprocess, batchnorm=batchnorm)


def _compile(model, spec):
    """As archdsl train compiles (its optimizer and loss, accuracy metric, no XLA), then trace it."""
    from archdsl.training import schedules

    model.compile(optimizer=schedules.make_optimizer(spec.train), loss=schedules.make_loss(spec.train),
                  metrics=["accuracy"], jit_compile=False)
    return model


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf
    return keras, tf


def _data(args):
    """The training data: load_dataset's arrays, or random images for --data synthetic."""
    if args.data != "synthetic":
        from archdsl.training.data import load_dataset
        return load_dataset(args.data, args.data_dir)
    import numpy as np
    from archdsl.training.data import Dataset

    rng = np.random.default_rng(0)
    n, t = args.synthetic_n, max(64, args.synthetic_n // 8)
    return Dataset(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n),
                   rng.integers(0, 256, (t, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, t),
                   tuple(f"c{i}" for i in range(10)), "synthetic")


# --- worker processes --------------------------------------------------------------------------

class _Worker:
    """A benchmark process of its own: set up once, then `run r` on its stdin -> `RESULT {json}` on stdout."""

    def __init__(self, args, kind: str, params: dict, env: dict | None = None):
        environ = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
        environ.update(env or {}, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1",
                       PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        wargs = {k: v for k, v in vars(args).items() if not k.startswith("worker")}
        self.what = f"{kind} {params}"
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--worker", kind,
                                      "--worker-args", json.dumps({**wargs, **params})],
                                     env=environ, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True)

    def _reply(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT "):])
        self.proc.wait()
        self.stderr.seek(0)
        raise RuntimeError(f"worker {self.what} failed ({self.proc.returncode}):\n{self.stderr.read()[-3000:]}")

    def ready(self) -> dict:
        return self._reply()

    def run(self, r: int) -> dict:
        self.proc.stdin.write(f"run {r}\n")
        self.proc.stdin.flush()
        return self._reply()

    def close(self) -> None:
        try:
            self.proc.stdin.close()  # the worker's loop ends at EOF
            self.proc.wait(timeout=60)
        except Exception:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


def _run_worker(args, kind: str, params: dict, env: dict | None = None) -> dict:
    w = _Worker(args, kind, params, env)
    try:
        w.ready()
        return w.run(0)
    finally:
        w.close()


def _worker(args) -> int:
    """The worker side of `_Worker`: set up, say RESULT (ready), then one RESULT per `run r` line."""
    params = json.loads(args.worker_args)
    for k, v in params.items():
        setattr(args, k, v)
    info, run = {"settings": _worker_settings, "epoch": _worker_epoch}[args.worker](args)
    print("RESULT " + json.dumps(info), flush=True)
    for line in sys.stdin:
        if line.startswith("run "):
            print("RESULT " + json.dumps(run(int(line.split()[1]))), flush=True)
    return 0


def _worker_settings(args):
    env, intra, inter, determinism, policy, data_format = VARIANTS[args.variant]
    keras, tf = _tf()
    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    keras.utils.set_random_seed(0)
    if determinism:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy(policy)
    from archdsl import load
    from archdsl.training.data import Dataset

    spec = load(args.spec)
    data = _data(args)
    keep = max(10_000, (max(args.steps, args.warmup) + 1) * args.batch)  # enough for a window; less memory
    data = Dataset(data.x_train[:keep], data.y_train[:keep], data.x_test[:1], data.y_test[:1],
                   data.class_names, data.source)
    model = _compiled(spec, data)
    feed = _feeder(args, spec, data)
    if data_format == "channels_first":
        model = _to_channels_first(keras, model)

        def feed(r, _feed=feed):
            return _feed(r).map(lambda x, y: (tf.transpose(x, [0, 3, 1, 2]), y))
    _compile(model, spec)
    warm = argparse.Namespace(**{**vars(args), "steps": max(2, args.warmup), "skip": 0})
    _fit_rate(warm, model, feed(-1))
    from tensorflow.python.util import _pywrap_util_port

    info = {"onednn": bool(_pywrap_util_port.IsMklEnabled()), "policy": policy, "data_format": data_format,
            "intra": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter": tf.config.threading.get_inter_op_parallelism_threads(), "params": model.count_params()}
    return info, lambda r: {"rate": _fit_rate(args, model, feed(r))}


def _to_channels_first(keras, model):
    """The same functional model with NCHW inputs and channels_first layers (fresh weights)."""
    def nchw(shape):
        return [shape[0], shape[3], shape[1], shape[2]] if shape and len(shape) == 4 else shape

    def fix(node):
        if isinstance(node, list):
            return [fix(x) for x in node]
        if not isinstance(node, dict):
            return node
        node = {k: fix(v) for k, v in node.items() if k != "build_config"}  # rebuilt from the new inputs
        if node.get("class_name") == "__keras_tensor__":
            node["config"]["shape"] = nchw(node["config"]["shape"])
        cfg = node.get("config")
        if isinstance(cfg, dict) and "class_name" in node:
            if "data_format" in cfg:
                cfg["data_format"] = "channels_first"
            if node["class_name"] in ("BatchNormalization", "Normalization"):
                cfg["axis"] = 1
            if node["class_name"] == "InputLayer":
                cfg["batch_shape"] = nchw(cfg["batch_shape"])
        return node

    return keras.Model.from_config(fix(model.get_config()))


def _worker_epoch(args):
    return {}, lambda r: _epochs(args)


def _epochs(args) -> dict:
    """Real epochs through archdsl.training.train.train, as `archdsl train` runs them."""
    from archdsl import load, runs
    from archdsl.training.data import Dataset
    from archdsl.training.train import train, with_overrides

    data = _data(args)
    full = len(data.x_train)
    if args.epoch_limit and args.epoch_limit < full:
        data = Dataset(data.x_train[:args.epoch_limit], data.y_train[:args.epoch_limit], data.x_test, data.y_test,
                       data.class_names, data.source)
    spec = with_overrides(load(str(ROOT / args.spec)), epochs=args.epochs)
    tmp = Path(tempfile.mkdtemp(prefix="archdsl-bench-"))
    load_before = _load()
    try:
        train(spec, data, seed=0, run_dir=runs.RunDir(tmp / "run"), verbose=0)
        history = json.loads((tmp / "run" / "checkpoint" / "state.json").read_text())["history"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = len(data.x_train)
    for row in history:
        row["full_epoch_train_seconds"] = row["train_seconds"] * full / n
        row["images_per_second"] = n / row["train_seconds"]
    return {"history": history, "images": n, "full_split": full, "extrapolated": n < full,
            "test_images": len(data.x_test), "load": f"{load_before} -> {_load()}"}


# --- the machine -----------------------------------------------------------------------------

def machine() -> dict:
    model = platform.processor()
    flags = []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    keras, tf = _tf()
    return {"cpu": model, "cores": cores, "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "avx512": any(f.startswith("avx512") for f in flags),
            "bf16": any(f in flags for f in ("avx512_bf16", "amx_bf16")),
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}


def _machine_line(m: dict) -> str:
    return (f"{m['cpu']}, {m['cores']} cores, TensorFlow {m['tensorflow']}, Keras {m['keras']}, "
            f"AVX-512 {'yes' if m['avx512'] else 'no'}, native bf16 {'yes' if m['bf16'] else 'no'}; "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")


def _load() -> str:
    return "%.2f" % os.getloadavg()[0]


if __name__ == "__main__":
    sys.exit(main())
