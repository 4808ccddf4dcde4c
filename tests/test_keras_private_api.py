"""The private Keras names archdsl relies on still exist and behave as its patches assume.

Keras is not pinned. `archdsl/training/distribute.py` (`keras_fit_fixes`, around Keras' `fit` under
tf.distribute) replaces two functions of `keras.src.backend.tensorflow.trainer` and one method
of the model; `archdsl/training/schedules.py` (`ema_weights`) reads two private attributes of the
optimizer. Each test of the first part pins one of those names with plain Keras, without
archdsl's code: that it exists, its parameters, and the behaviour the patch depends on. A Keras
release that changes one fails here, by name, instead of in a distributed or EMA training run.

When one fails (or a new Keras release is installed): re-check the patch on that release, adapt
it, and add the release to CHECKED_KERAS in both modules. The last part checks the guards: a
Keras release not checked warns, a changed name is a RunError before anything is patched.
"""
from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

pytestmark = pytest.mark.tf


def _params(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


def _tiny_model(unbuilt: bool = False, **optimizer):
    """Dense + BatchNorm, compiled with SGD (a Sequential without an input shape when `unbuilt`)."""
    import keras

    keras.utils.set_random_seed(0)
    layers = [keras.layers.Dense(3), keras.layers.BatchNormalization()]
    model = keras.Sequential(layers if unbuilt else [keras.Input((4,)), *layers])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1, **optimizer), loss="mse")
    return model


def _data(n=8):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype("float32"), rng.normal(size=(n, 3)).astype("float32")


# --- keras_fit_fixes (archdsl/training/distribute.py) ----------------------------------------------------------

def test_reduce_per_replica_is_a_module_global_called_by_the_train_step(monkeypatch):
    """fit's step calls trainer.reduce_per_replica(outputs, strategy, reduction="auto") through the
    module's global, at each trace: replacing the module attribute is what makes the patch take effect."""
    from keras.src.backend.tensorflow import trainer

    assert _params(trainer.reduce_per_replica) == ["values", "strategy", "reduction"]
    original, calls = trainer.reduce_per_replica, []

    def recording(values, strategy, reduction):
        calls.append(reduction)
        return original(values, strategy, reduction)

    monkeypatch.setattr(trainer, "reduce_per_replica", recording)
    model = _tiny_model()
    x, y = _data()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert "auto" in calls


def test_reduce_per_replica_still_has_the_multi_worker_mean_the_patch_replaces():
    """The patch replaces "auto"/"mean" under MultiWorkerMirroredStrategy, where Keras 3.15 reduces a
    scalar with axis=0 (tensorflow/tensorflow#72388); "auto" means "mean" off TPUs. If Keras changes
    this, the workaround may be obsolete or wrong: re-check it."""
    from keras.src.backend.tensorflow import trainer

    source = re.sub(r"\s+", "", inspect.getsource(trainer.reduce_per_replica))
    assert 'if_collective_all_reduce_multi_worker(strategy):' in source
    assert 'elifreduction=="mean":returnstrategy.reduce("MEAN",v,axis=0)' in source
    assert 'else:reduction="mean"' in source  # "auto" off TPUs


def test_collective_all_reduce_multi_worker_takes_a_strategy():
    """The patch asks trainer._collective_all_reduce_multi_worker(strategy) whether it runs multi-worker."""
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer

    assert _params(trainer._collective_all_reduce_multi_worker) == ["strategy"]
    assert trainer._collective_all_reduce_multi_worker(tf.distribute.get_strategy()) is False
    source = inspect.getsource(trainer._collective_all_reduce_multi_worker)
    assert "MultiWorkerMirroredStrategy" in source and "_in_multi_worker_mode()" in source


def test_fit_and_evaluate_call_maybe_symbolic_build_through_the_model():
    """fit (and its validation) calls model._maybe_symbolic_build(iterator=...): an attribute set on
    the model replaces the method, as the patch does."""
    import keras

    assert _params(keras.Model._maybe_symbolic_build) == ["self", "iterator", "data_batch"]
    model, calls = _tiny_model(), []
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: calls.append(
        (iterator is not None, data_batch is not None))
    x, y = _data()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, validation_data=(x, y))
    assert calls == [(True, False), (True, False)]  # fit, then evaluate for the validation


def test_symbolic_build_builds_model_and_optimizer_from_a_batch():
    """The patch builds the model with model._symbolic_build(data_batch=(x, y)) from zero arrays."""
    import keras

    assert _params(keras.Model._symbolic_build) == ["self", "iterator", "data_batch"]
    model = _tiny_model(unbuilt=True)
    assert not model.built and not model.optimizer.built
    model._symbolic_build(data_batch=(np.zeros((1, 4), np.float32), np.zeros((1, 3), np.float32)))
    assert model.built and model.optimizer.built
    assert [tuple(v.shape) for v in model.trainable_variables] == [(4, 3), (3,), (3,), (3,)]


# --- ema_weights (archdsl/training/schedules.py) -------------------------------------------------------------

def test_optimizer_ema_attributes_pair_each_variable_with_its_average():
    """optimizer._trainable_variables are the model's trainable variables (the objects, in order);
    optimizer._model_variables_moving_average[i] is the EMA of the i-th: by hand (the first step
    copies, later steps mix with ema_momentum), and as Keras' own finalize_variable_values pairs them."""
    model = _tiny_model(use_ema=True, ema_momentum=0.5)
    x, y = _data()
    opt = model.optimizer
    after = []
    for _ in range(3):
        model.train_on_batch(x, y)
        after.append([v.numpy() for v in model.trainable_variables])

    assert [id(v) for v in opt._trainable_variables] == [id(v) for v in model.trainable_variables]
    averages = opt._model_variables_moving_average
    assert len(averages) == len(model.trainable_variables) == 4
    for i, average in enumerate(averages):
        expected = 0.5 * (0.5 * after[0][i] + 0.5 * after[1][i]) + 0.5 * after[2][i]
        np.testing.assert_allclose(average.numpy(), expected, rtol=1e-6)

    values = [a.numpy() for a in averages]
    opt.finalize_variable_values(model.trainable_variables)  # Keras' own swap puts average i in variable i
    assert all(np.array_equal(v.numpy(), a) for v, a in zip(model.trainable_variables, values))


def test_loss_scale_optimizer_keeps_the_ema_in_its_inner_optimizer():
    """Under mixed_fp16 the optimizer is wrapped: ema_weights reads inner_optimizer's use_ema and averages."""
    import keras

    inner = keras.optimizers.SGD(learning_rate=0.1, use_ema=True)
    outer = keras.optimizers.LossScaleOptimizer(inner)
    assert outer.inner_optimizer is inner and inner.use_ema
    variables = [keras.Variable(np.ones((2, 2), np.float32))]
    outer.build(variables)
    assert [id(v) for v in inner._trainable_variables] == [id(v) for v in variables]
    assert [tuple(a.shape) for a in inner._model_variables_moving_average] == [(2, 2)]


# --- the guards ---------------------------------------------------------------------------------------

def test_keras_fit_fixes_warns_on_a_keras_release_not_checked(monkeypatch, capsys):
    import keras
    from keras.src.backend.tensorflow import trainer

    from archdsl.training.distribute import keras_fit_fixes

    model, original = _tiny_model(), trainer.reduce_per_replica
    monkeypatch.setattr(keras, "__version__", "3.99.0")
    with keras_fit_fixes(model, _data(1)):
        assert trainer.reduce_per_replica is not original
    assert trainer.reduce_per_replica is original and "_maybe_symbolic_build" not in vars(model)
    err = capsys.readouterr().err
    assert "warning: Keras 3.99.0:" in err and "pip install 'keras==3.15.*'" in err


@pytest.mark.parametrize("name", ["reduce_per_replica", "_collective_all_reduce_multi_worker"])
def test_keras_fit_fixes_refuses_a_changed_private_name(monkeypatch, name):
    from keras.src.backend.tensorflow import trainer

    from archdsl.training.distribute import keras_fit_fixes
    from archdsl.errors import RunError

    model = _tiny_model()
    monkeypatch.delattr(trainer, name)
    with pytest.raises(RunError, match=f"trainer.{name} is missing") as err:
        with keras_fit_fixes(model, _data(1)):
            pass
    assert "--strategy default" in err.value.hint and "keras==3.15.*" in err.value.hint
    assert "_maybe_symbolic_build" not in vars(model)  # nothing was patched


def test_keras_fit_fixes_refuses_a_changed_signature(monkeypatch):
    import keras

    from archdsl.training.distribute import keras_fit_fixes
    from archdsl.errors import RunError

    model = _tiny_model()
    monkeypatch.setattr(keras.Model, "_symbolic_build", lambda self, data_batch=None: None, raising=False)
    with pytest.raises(RunError, match=r"Model._symbolic_build takes \(self, data_batch\), "
                                       r"expected \(self, iterator, data_batch\)"):
        with keras_fit_fixes(model, _data(1)):
            pass


def test_ema_weights_refuses_averages_that_do_not_pair(monkeypatch):
    from archdsl.errors import RunError
    from archdsl.training.schedules import ema_weights

    model = _tiny_model(use_ema=True)
    model.train_on_batch(*_data())
    with ema_weights(model):  # the installed Keras: accepted
        pass
    averages = model.optimizer._model_variables_moving_average
    monkeypatch.setattr(model.optimizer, "_model_variables_moving_average", averages[1:])
    with pytest.raises(RunError, match="3 moving averages for 4 variables"):
        ema_weights(model)
    monkeypatch.setattr(model.optimizer, "_model_variables_moving_average", averages[::-1])
    with pytest.raises(RunError, match=r"is \(3,\), the variable is \(4, 3\)"):
        ema_weights(model)
    monkeypatch.delattr(model.optimizer, "_model_variables_moving_average")
    with pytest.raises(RunError, match="no _model_variables_moving_average") as err:
        ema_weights(model)
    assert "without `ema`" in err.value.hint


def test_ema_weights_warns_once_on_a_keras_release_not_checked(monkeypatch, capsys):
    import keras

    from archdsl.training import schedules

    model = _tiny_model(use_ema=True)
    model.train_on_batch(*_data())
    monkeypatch.setattr(keras, "__version__", "3.99.0")
    monkeypatch.setattr(schedules, "_warned_keras", set())
    for _ in range(2):  # ema_weights runs at every validation: one warning is enough
        with schedules.ema_weights(model):
            pass
    err = capsys.readouterr().err
    assert err.count("warning: Keras 3.99.0:") == 1 and "pip install 'keras==3.15.*'" in err
