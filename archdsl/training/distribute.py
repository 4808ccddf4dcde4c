"""Training on several devices or hosts with tf.distribute: strategy choice, TF_CONFIG, precision.

    plan = Plan("multiworker", precision="fp32", scale_lr=True, peer_timeout=300)
    plan.connect()          # joins the cluster (or does nothing for the default strategy)
    plan.replicas           # replicas in sync, over all workers

Strategies (`--strategy`, or `strategy NAME` in the spec's train section):
    default      TensorFlow's default: one device (a GPU if there is one, else the CPU)
    mirrored     tf.distribute.MirroredStrategy over this host's GPUs; without a GPU it falls
                 back to `default` with a warning
    multiworker  tf.distribute.MultiWorkerMirroredStrategy over the hosts of TF_CONFIG
                 (each worker runs the same command with its own TF_CONFIG task)
    auto         mirrored when more than one GPU is visible, else default

Batch semantics: the spec's `batch` is the batch of ONE replica; a step trains on the global
batch `batch x replicas`. `--scale-lr` multiplies the learning rate (and `final_lr`) by the
number of replicas, the linear scaling rule for that larger batch.

Roles: the chief (TF_CONFIG's `chief` task, else worker 0) writes the run directory; every
other worker runs the same steps (saving too: saving can need collectives, so all workers
must do it) into a scratch run directory in the system's temp folder, removed at the end.

Nothing here imports TensorFlow at module level: TF_CONFIG (`cluster.py`) and the names are
checked before TensorFlow starts. `ARCHDSL_CPU_REPLICAS=N` splits the CPU into N logical devices that
`mirrored` uses when there is no GPU: the mirrored path, testable on a CPU-only machine.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import tempfile
import typing

from ..errors import RunError, UsageError, did_you_mean, one_of
from .cluster import DEFAULT_PEER_TIMEOUT, PEER_HINT, parse_tf_config, rendezvous
from ..fileio import pid_alive
from ..ir import TrainConfig

STRATEGIES: tuple[str, ...] = typing.get_args(TrainConfig.model_fields["strategy"].annotation)
PRECISIONS = {"fp32": "float32", "mixed_bf16": "mixed_bfloat16", "mixed_fp16": "mixed_float16"}


def check_strategy(name: str, flag: str = "--strategy") -> str:
    if name in STRATEGIES:
        return name
    guess = did_you_mean(name, STRATEGIES)
    raise UsageError(f"{flag} {name}: unknown strategy", hint=f"{guess} ({one_of(STRATEGIES)})" if guess
                     else one_of(STRATEGIES), code="E620")


def check_precision(name: str) -> str:
    if name in PRECISIONS:
        return name
    near = [p for p in PRECISIONS if p.endswith(name.lower())]  # bf16 -> mixed_bf16
    guess = f"did you mean '{near[0]}'?" if len(near) == 1 else did_you_mean(name, PRECISIONS)
    raise UsageError(f"--precision {name}: unknown precision", hint=f"{guess} ({one_of(PRECISIONS)})" if guess
                     else one_of(PRECISIONS), code="E620")


# --- choosing a strategy ---------------------------------------------------------------------

def choose(name: str, gpus: int, tf_config: str | None = None, cpu_replicas: int = 0) -> tuple[str, str | None]:
    """(the strategy to build: default/mirrored/multiworker, a warning or None) for `name` on this host."""
    check_strategy(name)
    if name == "multiworker":
        return "multiworker", None
    note = None
    if tf_config and tf_config.strip():
        note = f"TF_CONFIG is set but the strategy is {name}: training on this host only " \
               "(use --strategy multiworker to train on the cluster)"
    if name == "auto":
        return ("mirrored" if gpus > 1 else "default"), note
    if name == "mirrored" and gpus == 0 and cpu_replicas < 2:
        return "default", "--strategy mirrored: no GPU is visible; training with the default strategy"
    return name, note


class Plan:
    """How one process trains: strategy, precision, learning-rate scaling, and its role."""

    def __init__(self, strategy: str = "auto", *, precision: str = "fp32", scale_lr: bool = False,
                 peer_timeout: float = DEFAULT_PEER_TIMEOUT, final_weights: str | None = None,
                 environ: typing.Mapping[str, str] | None = None):
        self.name = check_strategy(strategy)
        self.precision = check_precision(precision)
        if not peer_timeout > 0:
            raise UsageError(f"--peer-timeout {peer_timeout}: must be more than 0 seconds",
                             hint="give the seconds to wait for the other workers, e.g. --peer-timeout 600",
                             code="E620")
        self.scale_lr, self.peer_timeout, self.final_weights = scale_lr, float(peer_timeout), final_weights
        self.environ = os.environ if environ is None else environ
        self.cluster = parse_tf_config(self.environ.get("TF_CONFIG")) if self.name == "multiworker" else None
        self.kind: str | None = None   # after connect(): default, mirrored or multiworker
        self.strategy = None           # after connect(): the tf.distribute strategy (None for default)
        self.replicas = 1

    @property
    def is_chief(self) -> bool:
        return self.cluster is None or self.cluster.is_chief

    @property
    def workers(self) -> int:
        return self.cluster.workers if self.cluster else 1

    @property
    def worker_id(self) -> int:
        return self.cluster.worker_id if self.cluster else 0

    def connect(self):
        """Build the strategy (once); for multiworker, first wait for every peer at most `peer_timeout` s."""
        if self.kind is not None:
            return self.strategy
        if self.cluster is not None:
            rendezvous(self.cluster, self.peer_timeout)  # before TensorFlow: see `rendezvous`
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        cpu_replicas = self.environ.get("ARCHDSL_CPU_REPLICAS") or "0"
        if not cpu_replicas.isdigit():
            raise UsageError(f"ARCHDSL_CPU_REPLICAS={cpu_replicas}: expected a number of logical CPUs",
                             hint="set it to a whole number such as 2, or unset it", code="E620")
        cpu_replicas = int(cpu_replicas)
        gpus = len(tf.config.list_physical_devices("GPU"))
        kind, warning = choose(self.name, gpus, self.environ.get("TF_CONFIG"), cpu_replicas)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
        if kind == "mirrored":
            devices = None
            if gpus == 0:
                cpu = tf.config.list_physical_devices("CPU")[0]
                tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
                devices = [f"/cpu:{i}" for i in range(cpu_replicas)]
            saved = os.environ.pop("TF_CONFIG", None)  # MirroredStrategy would read a cluster from it
            try:
                self.strategy = tf.distribute.MirroredStrategy(devices)
            finally:
                if saved is not None:
                    os.environ["TF_CONFIG"] = saved
        elif kind == "multiworker":
            self.strategy = self._join(tf)
        self.kind = kind
        self.replicas = self.strategy.num_replicas_in_sync if self.strategy else 1
        return self.strategy

    def _join(self, tf):
        """MultiWorkerMirroredStrategy, and one all-reduce over the workers as a barrier.

        The peers were all up a moment ago (`rendezvous`); should one vanish before it joins,
        TensorFlow would wait for it for ever, holding the GIL (so no Python thread can
        intervene) and ignoring SIGTERM: faulthandler's C watchdog ends the process then.
        """
        import faulthandler

        c = self.cluster
        faulthandler.dump_traceback_later(self.peer_timeout, exit=True)
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
            count = _barrier(strategy)
        except tf.errors.OpError as exc:
            raise RunError(f"worker {c.worker_id} ({c.address}) cannot join the cluster: {first_line(exc)}",
                           hint=PEER_HINT, code="E550") from None
        finally:
            faulthandler.cancel_dump_traceback_later()
        if count != strategy.num_replicas_in_sync:
            raise RunError(f"the cluster has {count} replicas, expected {strategy.num_replicas_in_sync}",
                           hint="give every worker the same cluster in TF_CONFIG (docs/distributed.md)", code="E550")
        return strategy

    def finish(self) -> None:
        """Multiworker: meet the other workers once more; then every worker but the chief exits at once.

        TensorFlow's coordination service lives in the chief's process. A worker still shutting
        down when the chief has gone logs the chief as dead and waits ~10 s for it, so the
        others leave first: os._exit right after the barrier (output flushed, nothing else to do).
        """
        if self.kind != "multiworker":
            return
        import tensorflow as tf

        try:
            _barrier(self.strategy)
        except tf.errors.OpError as exc:  # the run is complete and written; a peer went early
            print(f"warning: worker {self.worker_id}: the final barrier failed: {first_line(exc)}", file=sys.stderr)
        if not self.is_chief:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)

    def lr_scale(self) -> int:
        return self.replicas if self.scale_lr else 1

    def scaled(self, cfg: TrainConfig) -> TrainConfig:
        """The train config with the learning rates scaled for the replicas (with --scale-lr)."""
        k = self.lr_scale()
        return cfg if k == 1 else cfg.model_copy(update={"lr": cfg.lr * k, "final_lr": cfg.final_lr * k})

    def describe(self, cfg: TrainConfig) -> dict:
        """What state.json and metrics.json record about the distribution of a run."""
        return {"strategy": self.kind, "requested": self.name, "workers": self.workers,
                "replicas": self.replicas, "batch_per_replica": cfg.batch, "global_batch": cfg.batch * self.replicas,
                "lr": self.scaled(cfg).lr, "scale_lr": self.scale_lr, "precision": self.precision}

    def summary(self, cfg: TrainConfig) -> str:
        """The line printed at the start: strategy, replicas, batch semantics, learning rate, precision."""
        r, w = self.replicas, self.workers
        where = f"{w} workers x {r // w} replica{'s' if r // w > 1 else ''}" if w > 1 else \
            f"{r} replica{'s' if r > 1 else ''}"
        lr = f"lr {cfg.lr:g}" + (f" x {r} replicas = {cfg.lr * r:g} (--scale-lr)" if self.lr_scale() > 1 else "")
        role = ""
        if self.cluster:
            role = f"; worker {self.worker_id} ({'chief, writes the run' if self.is_chief else 'not chief'})"
        passes = f" x {cfg.passes} passes an epoch" if cfg.passes > 1 else ""
        return (f"strategy {self.kind}: {where}; batch {cfg.batch} per replica, global batch {cfg.batch * r}"
                f"{passes}; {lr}; precision {self.precision}{role}")

    def distribute(self, make):
        """`make(replica_ids, replicas)` -> tf.data.Dataset, as the strategy's distributed dataset.

        Each worker's input pipeline holds the shares of its own replicas (pipeline.py's
        `replica_ids`), so no auto-sharding is involved: the dataset is not the same on every
        worker and TensorFlow must not shard it again.
        """
        if self.strategy is None:
            return make(None, 1)
        r = self.replicas

        def dataset_fn(context):
            local = r // context.num_input_pipelines
            first = context.input_pipeline_id * local
            return make(list(range(first, first + local)), r)

        return self.strategy.distribute_datasets_from_function(dataset_fn)


def _barrier(strategy) -> int:
    """One all-reduce over every replica of the strategy: returns the number of replicas."""
    import tensorflow as tf

    ones = strategy.run(tf.function(lambda: tf.ones([])))
    return int(strategy.reduce(tf.distribute.ReduceOp.SUM, ones, axis=None))


# --- precision -------------------------------------------------------------------------------

@contextlib.contextmanager
def dtype_policy(precision: str):
    """Keras' global dtype policy for `precision` inside the block (layers take it when built)."""
    import keras

    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(PRECISIONS[precision])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def float32_head(kmodel) -> None:
    """Run the model's last layer (the softmax) in float32, as mixed precision needs for a stable loss."""
    head = kmodel.layers[-1]
    if head.dtype_policy.compute_dtype != "float32":
        head.dtype_policy = "float32"


# --- Keras 3.15 under tf.distribute ----------------------------------------------------------

# `keras_fit_fixes` replaces private Keras names (Keras is not pinned; tests/test_keras_private_api.py
# fails when one of them changes):
#   keras.src.backend.tensorflow.trainer.reduce_per_replica(values, strategy, reduction), which the
#       TF trainer's step functions look up as a module global at each call (so replacing it works)
#   keras.src.backend.tensorflow.trainer._collective_all_reduce_multi_worker(strategy)
#   TensorFlowTrainer._maybe_symbolic_build(self, iterator=None, data_batch=None), which fit and
#       evaluate call through the model (so an attribute of the model replaces it)
#   Trainer._symbolic_build(self, iterator=None, data_batch=None)
CHECKED_KERAS = ("3.15",)  # the Keras releases (major.minor) they were checked on
KERAS_FIT_PRIVATE_NAMES = {  # name -> the parameters keras_fit_fixes calls it with
    "trainer.reduce_per_replica": ("values", "strategy", "reduction"),
    "trainer._collective_all_reduce_multi_worker": ("strategy",),
    "Model._maybe_symbolic_build": ("self", "iterator", "data_batch"),
    "Model._symbolic_build": ("self", "iterator", "data_batch"),
}


def keras_release(version: str) -> str:
    """'3.15' of '3.15.1' (or of '3.15.0.dev2026...')."""
    return ".".join(version.split(".")[:2])


def _keras_fit_private_api(kmodel):
    """Keras' TF trainer module, once the private names keras_fit_fixes replaces are checked.

    A Keras release the fixes were not checked on gets a warning; a private name missing or with
    other parameters is a RunError (the fixes would not take effect, or would break `fit`).
    """
    import inspect

    import keras

    version = keras.__version__
    pin = f"pip install 'keras=={CHECKED_KERAS[-1]}.*'"
    if keras_release(version) not in CHECKED_KERAS:
        print(f"warning: Keras {version}: archdsl's fixes of Keras' fit under tf.distribute replace private "
              f"Keras names checked on Keras {', '.join(CHECKED_KERAS)} only; if training fails or its logs look "
              f"wrong, {pin} (tests/test_keras_private_api.py checks a Keras release)", file=sys.stderr)
    try:
        from keras.src.backend.tensorflow import trainer
    except ImportError as exc:
        trainer, problem = None, f"keras.src.backend.tensorflow.trainer cannot be imported ({exc})"
    else:
        problem = None
        found = {"trainer": trainer, "Model": type(kmodel)}
        for name, params in KERAS_FIT_PRIVATE_NAMES.items():
            owner, attr = name.split(".")
            fn = getattr(found[owner], attr, None)
            try:
                have = tuple(inspect.signature(fn).parameters) if callable(fn) else None
            except (TypeError, ValueError):
                have = None
            if have != params:
                problem = f"{name} is missing" if fn is None else \
                    f"{name} takes ({', '.join(have or ['?'])}), expected ({', '.join(params)})"
                break
    if problem:
        raise RunError(f"Keras {version} changed a private name that archdsl's distributed training replaces: "
                       f"{problem}", hint=f"train without a strategy (--strategy default), or install a Keras the "
                       f"fixes were checked on: {pin}", code="E560")
    return trainer


@contextlib.contextmanager
def keras_fit_fixes(kmodel, batch_spec):
    """Work around two bugs of Keras 3.15's `fit` under a tf.distribute strategy (TF back-end).

    1. `_maybe_symbolic_build` takes a batch from the distributed iterator and reduces it with
       `strategy.reduce("MEAN", (x, y))`, which MultiWorkerMirroredStrategy refuses (a tuple
       is no tensor). The model is built here from `batch_spec`, zero arrays of a batch's shape.
    2. `reduce_per_replica` reduces the per-step logs with `strategy.reduce("MEAN", v, axis=0)`
       under MultiWorkerMirroredStrategy; the logs are scalars, so that raises "Invalid
       reduction dimension 0 for input with 0 dimensions" (tensorflow/tensorflow#72388).
       They are reduced over all axes instead: the mean over the replicas.
    The epoch logs that history.csv records do not come from these per-step values: Keras
    reads the metrics' sync-on-read variables, summed over all replicas, at the epoch's end.

    Both replace private Keras names (KERAS_FIT_PRIVATE_NAMES), checked first: a Keras release
    not in CHECKED_KERAS gets a warning, a changed name a RunError before anything is replaced.
    """
    import tensorflow as tf

    trainer = _keras_fit_private_api(kmodel)
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            def mean(v):
                if isinstance(v, (tf.Tensor, tf.distribute.DistributedValues)):
                    return strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                return v
            return tf.nest.map_structure(mean, values)
        return original(values, strategy, reduction)

    def symbolic_build(iterator=None, data_batch=None):
        with kmodel.distribute_strategy.scope():
            kmodel._symbolic_build(data_batch=data_batch if data_batch is not None else batch_spec)

    trainer.reduce_per_replica = reduce_per_replica
    kmodel._maybe_symbolic_build = symbolic_build
    try:
        yield
    finally:
        trainer.reduce_per_replica = original
        del kmodel._maybe_symbolic_build


def batch_norm_averaging(kmodel, strategy):
    """A Keras callback: once an epoch, before validation, the replicas' batch-norm statistics are averaged.

    Each replica normalises over its own batch (the spec's `batch`, as on one device) and
    updates its own moving mean and variance from it: Keras' BatchNormalization is not
    synchronized, so the replicas' statistics drift apart and they would validate, and the
    workers save, different models. The mean over the replicas makes all of them equal
    (trainable weights are equal anyway: their gradients are all-reduced every step).
    """
    import keras
    import tensorflow as tf

    from ..keras_backend.compile import batch_norm_statistics

    variables = batch_norm_statistics(kmodel)

    @tf.function
    def average():
        def replica_step():
            context = tf.distribute.get_replica_context()
            means = context.all_reduce(tf.distribute.ReduceOp.MEAN, [tf.identity(v.value) for v in variables])
            for v, mean in zip(variables, means):
                v.assign(mean)
        strategy.run(replica_step)

    class BatchNormAveraging(keras.callbacks.Callback):
        done = False

        def _average(self):
            if variables and not self.done:
                average()
            self.done = True

        def on_epoch_begin(self, epoch, logs=None):
            self.done = False

        def on_test_begin(self, logs=None):
            self._average()

        def on_epoch_end(self, epoch, logs=None):
            self._average()

    return BatchNormAveraging()


# --- the other workers' scratch run directories ----------------------------------------------

SCRATCH_PREFIX = "archdsl-worker"


def scratch_dir(worker_id: int) -> str:
    """A new folder in the temp folder for a non-chief worker's writes; stale ones of dead processes go."""
    root = tempfile.gettempdir()
    for name in os.listdir(root):
        m = re.match(rf"^{SCRATCH_PREFIX}\d+-(\d+)-", name)
        if m and not pid_alive(int(m.group(1))):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{worker_id}-{os.getpid()}-", dir=root)


def save_final_weights(kmodel, path: str) -> None:
    """Every model and optimizer variable, by position and path, as an .npz (tests compare workers)."""
    import numpy as np

    variables = list(kmodel.weights) + list(kmodel.optimizer.variables)
    np.savez(path, **{f"{i:04d}:{v.path}": np.asarray(v.numpy()) for i, v in enumerate(variables)})


def first_line(exc: BaseException) -> str:
    """The informative first line of an exception's message (TensorFlow's start with headers)."""
    text = getattr(exc, "message", None) or str(exc)
    lines = [re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", s).rstrip() for s in text.splitlines()]
    line = next((s for s in lines if s and not s[0].isspace()  # not a line of the traceback TF quotes
                 and not s.startswith(("Graph execution error", "Detected at node", "[["))), type(exc).__name__)
    return line if len(line) <= 200 else line[:197] + "..."
