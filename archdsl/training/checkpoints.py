"""The Keras side of `archdsl train`'s checkpoints: one committed after every epoch, restored on resume.

    callbacks = [..., tensorboard(keras, tf, run.tb), checkpointer(keras, run, state, kmodel, bn_averages)]
    restore(kmodel, state, iterations)    # on resume, before `fit`: weights, optimizer and dropout RNG state

`runs` owns the run directory: its layout, and the order of writes that makes an epoch's
checkpoint atomic. This module saves into it what only the built Keras model holds: weights
and optimizer state (the `.keras` files) and the state of the dropout seed generators, which
Keras' own `.keras` files leave out (the epoch's state, under `rng`). Beside the checkpointer,
`tensorboard` writes the epoch scalars. Keras and TensorFlow are handed in or imported inside
the functions: importing this module imports neither.
"""
from __future__ import annotations

import time
import zipfile
from pathlib import Path

from .. import runs
from . import schedules
from ..errors import RunError


def checkpointer(keras, run: runs.RunDir, state: dict, kmodel, bn_averages=None):
    """The callback that commits a checkpoint after every epoch (see `runs` for the order of writes)."""

    from ..keras_backend.batchnorm import saved_as_keras_layers

    class Checkpointer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.state = {k: v for k, v in state.items() if k != "checkpoint_path"}
            self.t0 = self.t_train = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = self.t_train = time.perf_counter()

        def on_test_begin(self, logs=None):
            self.t_train = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            now, logs, e = time.perf_counter(), logs or {}, epoch + 1
            if self.t_train <= self.t0:
                self.t_train = now
            row = {"epoch": e, "lr": logs.get("lr")}
            row.update({k: float(logs[k]) if k in logs else None
                        for k in ("loss", "accuracy", "val_loss", "val_accuracy")})
            row.update(seconds=round(now - self.t0, 3), train_seconds=round(self.t_train - self.t0, 3))
            s = self.state
            best = s["best"]["val_accuracy"]
            improved = row["val_accuracy"] is not None and (best is None or row["val_accuracy"] > best)
            s.update(epoch=e, history=s["history"] + [row], complete=e >= s["epochs"],
                     checkpoint=run.epoch_model(e).name,
                     sha256=runs.save_model(kmodel, run.epoch_model(e)))
            s["rng"] = {"seed": s["settings"]["seed"], "seed_generators": [v.numpy().tolist()
                                                                        for v in _seed_states(kmodel)]}
            if bn_averages is not None:
                s["ema_batch_norm"] = bn_averages.values()
            if improved:
                s["best"] = {"epoch": e, "val_accuracy": row["val_accuracy"]}
            runs.write_json(run.epoch_state(e), s)
            runs.write_bytes(run.history, runs.history_csv(s["history"]).encode())
            runs.write_json(run.metrics, runs.summarize(s, run))
            # the files a user loads hold Keras' own batch norm; the resume checkpoint above, archdsl's
            with schedules.ema_weights(kmodel, bn_averages), saved_as_keras_layers(kmodel):
                runs.save_model(kmodel, run.last)
                if improved:
                    runs.save_model(kmodel, run.best)
            runs.write_json(run.state, s)  # the commit point
            runs.prune_checkpoints(run, keep_from=e - 1)

    return Checkpointer()


def tensorboard(keras, tf, folder: Path):
    """Epoch scalars in TensorBoard's format (tb/train, tb/validation), written with TF's own summary ops.

    keras.callbacks.TensorBoard needs the tensorboard package for `tf.summary.scalar`;
    `tf.summary.write` with the scalars plugin's metadata is what that function writes.
    """
    from tensorflow.core.framework import summary_pb2

    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    metadata = metadata.SerializeToString()

    class TensorBoardScalars(keras.callbacks.Callback):
        writers: dict = {}

        def on_epoch_end(self, epoch, logs=None):
            for split, prefix in (("train", ""), ("validation", "val_")):
                if split not in self.writers:
                    self.writers[split] = tf.summary.create_file_writer(str(folder / split))
                with self.writers[split].as_default():
                    for name in ("loss", "accuracy") + (("lr",) if split == "train" else ()):
                        if (logs or {}).get(prefix + name) is not None:
                            tag = "epoch_learning_rate" if name == "lr" else f"epoch_{name}"
                            tf.summary.write(tag, tf.constant(float(logs[prefix + name]), tf.float32), step=epoch,
                                             metadata=metadata)
                self.writers[split].flush()

        def on_train_end(self, logs=None):
            for writer in self.writers.values():
                writer.close()

    return TensorBoardScalars()


def restore(kmodel, state: dict, iterations: int) -> None:
    """Load weights, optimizer state and dropout RNG state of the checkpoint into `kmodel`."""
    import warnings

    import numpy as np

    path = state["checkpoint_path"]
    resolved = Path(path).parent.parent / "resolved.json"  # the run's model, as the checkpoint's run describes it
    misfit = (f"checkpoint {path} does not fit the model of {resolved}", "if resolved.json was edited since the "
              "run started, restore it; otherwise the run cannot be resumed: start a new run")
    kmodel.optimizer.build(kmodel.trainable_variables)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            kmodel.load_weights(path)
        except Exception as exc:  # keras/h5py raise many kinds on a damaged file
            reason = " ".join(str(exc).split())[:160]
            if not zipfile.is_zipfile(path):  # not a Keras file at all (its checksum matched: it was written so)
                raise RunError(f"corrupt checkpoint {path}: {reason}",
                               hint="the run cannot be resumed from it; start a new run", code="E523") from None
            # an intact file (its checksum matched) whose weights the model built from resolved.json cannot take
            raise RunError(f"{misfit[0]} ({reason})", hint=misfit[1], code="E525") from None
    skipped = [str(w.message) for w in caught if "Skipping" in str(w.message)]
    gens, saved = _seed_states(kmodel), state["rng"]["seed_generators"]
    if skipped or len(gens) != len(saved) or int(kmodel.optimizer.iterations.numpy()) != iterations:
        raise RunError(misfit[0] + (f" ({skipped[0].splitlines()[0][:120]})" if skipped else ""), hint=misfit[1],
                       code="E525")
    for var, value in zip(gens, saved):
        var.assign(np.asarray(value, dtype=var.dtype))


def _seed_states(kmodel) -> list:
    """The state variables of the model's seed generators (dropout), in a stable order."""
    return [v for v in kmodel.variables if v.name == "seed_generator_state" or v.path.endswith("/seed_generator_state")]
