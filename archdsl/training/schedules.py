"""Learning-rate schedules, optimizers and the loss of `archdsl train`, from `ir.TrainConfig`.

A schedule is a pure function of training progress, `lr_at(cfg, t, epochs)`, where `t`
is the number of epochs completed before the step (0-based, fractional inside an epoch).
Because the learning rate depends on nothing but the epoch and step, a resumed run
gets exactly the values of an uninterrupted one.

    inverse_time  lr / (1 + decay * epoch), set once per epoch (the seed's LearningRateScheduler:
                  epoch 1: 0.01, epoch 2: 0.0075815011, ..., epoch 50: 0.0006012868)
    constant      lr
    cosine        linear warm-up from ~0 to lr over `warmup` epochs, then cosine to final_lr
    onecycle      linear rise from lr/25 to lr over `warmup` epochs (default 30 % of the run),
                  then cosine to final_lr
    linear        linear warm-up from ~0 to lr over `warmup` epochs, then a straight line to final_lr
                  (airbench's triangle; Li et al. 2020 find linear decay best for a fixed budget)

`warmup` also ramps inverse_time and constant linearly from ~0. Schedules with a warm-up
or a cosine or linear decay change the rate every step; the others once per epoch.

Optimizers: adam, adamw (decoupled weight decay), sgd (momentum, nesterov), rmsprop.
Keras applies `weight_decay` decoupled (w -= lr * wd * w) for all of them; batch-norm
scales/offsets and biases are excluded from it. `ema` > 0 keeps an exponential moving
average of the weights in the optimizer, and one of the batch-norm statistics beside it
(`BatchNormAverages`); validation and the saved best/last models use both.
"""
from __future__ import annotations

import math
import sys

from ..errors import RunError
from ..ir import TrainConfig

ONECYCLE_START_DIV = 25.0
ONECYCLE_DEFAULT_WARMUP = 0.3


def lr_at(cfg: TrainConfig, t: float, epochs: int) -> float:
    """The learning rate for a step taken after `t` epochs of training (t in [0, epochs])."""
    lr, warmup = cfg.lr, cfg.warmup
    if cfg.schedule == "inverse_time":
        value = lr / (1.0 + cfg.decay * math.floor(t))
    elif cfg.schedule == "constant":
        value = lr
    elif cfg.schedule in ("cosine", "linear"):
        if warmup > 0 and t < warmup:
            return lr * t / warmup
        decay = _cosine if cfg.schedule == "cosine" else _linear
        return decay(lr, cfg.final_lr, t - warmup, epochs - warmup)
    elif cfg.schedule == "onecycle":
        rise = warmup if warmup > 0 else ONECYCLE_DEFAULT_WARMUP * epochs
        start = lr / ONECYCLE_START_DIV
        if t < rise:
            return start + (lr - start) * t / rise
        return _cosine(lr, cfg.final_lr, t - rise, epochs - rise)
    else:
        raise ValueError(f"unknown schedule {cfg.schedule!r}")
    if warmup > 0 and t < warmup:
        value *= t / warmup
    return value


def _cosine(high: float, low: float, t: float, span: float) -> float:
    return low + (high - low) * 0.5 * (1.0 + math.cos(math.pi * _fraction(t, span)))


def _linear(high: float, low: float, t: float, span: float) -> float:
    return high + (low - high) * _fraction(t, span)


def _fraction(t: float, span: float) -> float:
    return 1.0 if span <= 0 else min(max(t / span, 0.0), 1.0)


def per_step(cfg: TrainConfig) -> bool:
    """Whether the rate changes inside an epoch (else it is set at each epoch's start)."""
    return cfg.schedule in ("cosine", "onecycle", "linear") or cfg.warmup > 0


def step_progress(cfg: TrainConfig, epoch: int, step: int, steps_per_epoch: int) -> float:
    """`t` for step `step` (0-based) of epoch `epoch` (0-based).

    Per-step schedules count the step being taken, so the first step of a warm-up is
    small but not zero and the last step of a cosine lands on final_lr.
    """
    if not per_step(cfg):
        return float(epoch)
    return epoch + (step + 1) / max(1, steps_per_epoch)


def make_optimizer(cfg: TrainConfig):
    import keras

    common = dict(learning_rate=lr_at(cfg, step_progress(cfg, 0, 0, 1), cfg.epochs),
                  weight_decay=cfg.weight_decay or None,
                  use_ema=cfg.ema > 0, ema_momentum=cfg.ema if cfg.ema > 0 else 0.99)
    if cfg.optimizer == "adam":
        opt = keras.optimizers.Adam(**common)
    elif cfg.optimizer == "adamw":
        common["weight_decay"] = cfg.weight_decay
        opt = keras.optimizers.AdamW(**common)
    elif cfg.optimizer == "sgd":
        opt = keras.optimizers.SGD(momentum=cfg.momentum, nesterov=cfg.nesterov, **common)
    elif cfg.optimizer == "rmsprop":
        opt = keras.optimizers.RMSprop(**common)
    else:
        raise ValueError(f"unknown optimizer {cfg.optimizer!r}")
    if cfg.weight_decay:
        opt.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return opt


def make_loss(cfg: TrainConfig):
    import keras

    return keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)


def schedule_callback(cfg: TrainConfig, epochs: int, steps_per_epoch: int):
    """A Keras callback that sets the optimizer's rate from `lr_at` and logs it as `lr`."""
    import keras

    class LRSchedule(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch = 0
            self.epoch_lr = cfg.lr

        def _set(self, value: float) -> None:
            self.model.optimizer.learning_rate.assign(value)

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.epoch_lr = lr_at(cfg, step_progress(cfg, epoch, 0, steps_per_epoch), epochs)
            self._set(self.epoch_lr)

        def on_train_batch_begin(self, batch, logs=None):
            if per_step(cfg) and batch > 0:
                self._set(lr_at(cfg, step_progress(cfg, self.epoch, batch, steps_per_epoch), epochs))

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["lr"] = self.epoch_lr

    return LRSchedule()


class BatchNormAverages:
    """The EMA of the batch-norm statistics that goes with the optimizer's EMA of the weights.

    Keras' optimizer averages trainable variables only. Batch norm's moving mean and variance
    are not trainable, and averaged weights normalised with the raw model's statistics are a
    model nobody trained: fast85w_ema_rawbn validated at 82.5 % where the same training without
    an EMA had 84.8 % (experiments/README.md). As timm's ModelEma does with its buffers, they are averaged
    at the same decay after every step. The averages are part of the run's state (`values`,
    saved in each checkpoint's JSON), so a resumed run continues them exactly.
    """

    def __init__(self, kmodel, decay: float, saved: list | None = None):
        import numpy as np
        import tensorflow as tf

        from ..keras_backend.compile import batch_norm_statistics

        self.statistics = batch_norm_statistics(kmodel)
        if saved is not None and [len(s) for s in saved] != [int(np.prod(v.shape)) for v in self.statistics]:
            saved = None  # not this model's: start again from the current statistics
        initial = ([np.reshape(np.asarray(s, np.float32), v.shape) for v, s in zip(self.statistics, saved)]
                   if saved else [v.numpy() for v in self.statistics])
        self.averages = [tf.Variable(x, trainable=False, name="bn_average") for x in initial]
        pairs = list(zip(self.statistics, self.averages))

        @tf.function
        def update():
            for value, average in pairs:
                average.assign(decay * average + (1.0 - decay) * tf.convert_to_tensor(value))

        self.update = update

    def values(self) -> list[list[float]]:
        """The averages as lists of floats, for the checkpoint's JSON (float32 values round-trip exactly)."""
        return [a.numpy().ravel().tolist() for a in self.averages]

    def callback(self):
        import keras

        averages = self

        class UpdateBatchNormAverages(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                averages.update()

        return UpdateBatchNormAverages()


# `ema_weights` reads two private attributes of Keras' optimizer (Keras is not pinned;
# tests/test_keras_private_api.py fails when one of them changes):
#   BaseOptimizer._trainable_variables            the variables `build` was given, in its order
#   BaseOptimizer._model_variables_moving_average  with use_ema, their moving averages, in the same order
CHECKED_KERAS = ("3.15",)  # the Keras releases (major.minor) they were checked on
_warned_keras: set[str] = set()


def _ema_pairs(opt) -> list:
    """(variable, its moving average) of an optimizer with use_ema, from Keras' private attributes.

    A Keras release they were not checked on gets a warning (once); attributes missing, or
    averages that do not pair with the variables one for one, shape for shape, are a RunError:
    swapping in the wrong values would validate and save a model nobody trained.
    """
    import keras

    version = keras.__version__
    pin = f"pip install 'keras=={CHECKED_KERAS[-1]}.*'"
    if ".".join(version.split(".")[:2]) not in CHECKED_KERAS and version not in _warned_keras:
        _warned_keras.add(version)
        print(f"warning: Keras {version}: archdsl's EMA weights (spec `ema`) are read from private Keras "
              f"names checked on Keras {', '.join(CHECKED_KERAS)} only; if validation looks wrong, {pin} "
              "(tests/test_keras_private_api.py checks a Keras release)", file=sys.stderr)
    variables = getattr(opt, "_trainable_variables", None)
    averages = getattr(opt, "_model_variables_moving_average", None)
    if variables is None or averages is None:
        problem = "the optimizer has no " + ("_trainable_variables" if variables is None
                                             else "_model_variables_moving_average")
    elif len(variables) != len(averages):
        problem = f"the optimizer has {len(averages)} moving averages for {len(variables)} variables"
    else:
        problem = next((f"the moving average of {getattr(v, 'path', 'a variable')} "
                        f"is {'missing' if a is None else tuple(a.shape)}, the variable is {tuple(v.shape)}"
                        for v, a in zip(variables, averages) if a is None or tuple(a.shape) != tuple(v.shape)), None)
    if problem:
        raise RunError(f"Keras {version}: the optimizer's EMA weights are not where archdsl reads them: {problem}",
                       hint=f"train without `ema` in the spec, or install a Keras it was checked on: {pin}",
                       code="E560")
    return list(zip(variables, averages))


class ema_weights:
    """Within the block the model holds the optimizer's EMA weights and, if given, the averaged
    batch-norm statistics (all exactly restored after)."""

    def __init__(self, kmodel, batch_norm: BatchNormAverages | None = None):
        opt = getattr(kmodel.optimizer, "inner_optimizer", kmodel.optimizer)  # under mixed_fp16's loss scaling
        self.pairs = _ema_pairs(opt) if getattr(opt, "use_ema", False) else []
        if self.pairs and batch_norm is not None:
            self.pairs += list(zip(batch_norm.statistics, batch_norm.averages))
        self.saved = None

    def __enter__(self):
        self.saved = [v.numpy() for v, _ in self.pairs]
        for var, average in self.pairs:
            var.assign(average)

    def __exit__(self, *exc):
        for (var, _), value in zip(self.pairs, self.saved):
            var.assign(value)


def ema_validation(kmodel, batch_norm: BatchNormAverages | None = None):
    """A Keras callback: validate with the EMA weights (and averaged batch-norm statistics).

    Not keras.callbacks.SwapEMAWeights: on TensorFlow it swaps by arithmetic (a+b, a-b), which
    is not exact in floating point and would nudge the trained weights at every validation.
    """
    import keras

    class EMAEval(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            self.swap = ema_weights(kmodel, batch_norm)
            self.swap.__enter__()

        def on_test_end(self, logs=None):
            self.swap.__exit__()

    return EMAEval()
