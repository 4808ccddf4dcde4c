"""The Optuna side of `archdsl tune`: the study opened (or created) and checked against the tune's settings,
its sampler and pruner, the `--trials` budget shared by every worker, the retries of failed trials, and
the leaderboard's rows read from the trials.

What a trial records (user attributes), beside Optuna's own state, number, params, value and times:
    variant       the variant's index, as `archdsl space` numbers it
    infeasible    why the combination is not trained (the asserts it fails, or why it does not resolve)
    repeat_of     the trial that trains the same variant (this one is not trained)
    skipped       why it was not trained: the `--trials` budget was taken by other workers
    claim         when it claimed a place in the budget (time.time()), just before training
    run_dir       its run directory, relative to the tune folder (trials/<number>)
    params, macs  the variant's, as `archdsl space` gives them
    epochs, val_accuracy, seconds   after training: epochs run, the last epoch's held-out accuracy
    retry_of      the failed trial whose variant it trains again (a resume queues one per failed trial;
                  `retry_of()` reads the storage's heartbeat retries too)
    continued_from  the failed run and epoch the trial continued ({"trial": n, "epoch": k}), or None
    worker        host:pid of the process that ran it
A trial is *trained* when it has a run_dir; only trained trials that finished (complete, or pruned by the
pruner) count towards `--trials`.
"""
from __future__ import annotations

import math
import os
import socket
import time
import warnings

from ..errors import UsageError

# what a flag left out means, so that giving its default value to a study started without it is no change
FLAG_DEFAULTS = {"data": "cifar10", "seed": 0, "sampler": "tpe", "pruner": "median"}
SETTINGS_ATTR = "archdsl"  # the study's user attribute holding the settings every worker must share
SETTING_FLAGS = {"spec_sha256": None, "data": "--data", "limit": "--limit", "test_limit": "--test-limit",
                 "epochs": "--epochs",
                 "val_split": "--val-split", "seed": "--seed", "sampler": "--sampler", "pruner": "--pruner"}


def import_optuna():
    """Optuna, quiet (archdsl prints a line a trial, and its own errors), or E681 with the extra to install."""
    try:
        import optuna
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("optuna", "sqlalchemy", "alembic"):
            raise
        raise UsageError(f"`archdsl tune` needs Optuna ({exc})", hint="pip install 'archdsl[tune]'",
                         code="E681") from None
    # its warnings (a trial failed, with the traceback of the Ctrl-C that stopped it) repeat what archdsl says
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def open_study(optuna, storage, name: str, settings: dict, *, resume: bool, must_exist: bool = False):
    """(study, created): the study `name` in `storage`, created if missing unless `must_exist`. Its settings
    (a user attribute) must be `settings` (a flag left out takes the study's: `settings` is updated);
    without `resume`, a study with finished trials and none running is refused (E687)."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
        created = False
    except KeyError:
        if resume or must_exist:
            raise UsageError(f"no study '{name}' to {'resume' if resume else 'show'} in this storage", code="E687",
                             hint="start it with `archdsl tune FILE` (without --resume; check --study and --storage)"
                             ) from None
        try:
            study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
            created = True
        except optuna.exceptions.DuplicatedStudyError:  # another worker created it a moment ago
            study, created = optuna.load_study(study_name=name, storage=storage), False
    kept = study.user_attrs.get(SETTINGS_ATTR)
    if kept is None:
        study.set_user_attr(SETTINGS_ATTR, settings)
    else:
        _check_settings(name, kept, settings)
    if not resume and not must_exist:
        # a worker started while another one works on the study joins it; a study whose workers have all
        # stopped (done, or killed) is continued only when asked
        trials = study.get_trials(deepcopy=False)
        finished = [t for t in trials if t.state.is_finished()]
        if finished and not any(t.state.name == "RUNNING" for t in trials):
            raise UsageError(f"study '{name}' already has {len(finished)} finished trial"
                             f"{'s' if len(finished) != 1 else ''}", code="E687",
                             hint="add --resume to continue it (finished trials are not repeated), or give "
                                  "another --study or --out")
    return study, created


def _check_settings(name: str, kept: dict, settings: dict) -> None:
    """E686 for another spec, E688 for a flag given with another value; a flag left out (None) takes the
    study's value, written into `settings`."""
    if kept.get("spec_sha256") != settings["spec_sha256"]:
        raise UsageError(f"study '{name}' tunes another spec (or this spec before an edit): its trials would "
                         "not be comparable", hint="give another --study (or --out), or tune the spec as it was",
                         code="E686")
    for key, flag in SETTING_FLAGS.items():
        if flag is None:
            continue
        stored = kept.get(key) if kept.get(key) is not None else FLAG_DEFAULTS.get(key)
        if settings.get(key) is None:
            settings[key] = kept.get(key)
        elif settings[key] != stored:
            shown = "not given" if stored is None else stored
            raise UsageError(f"{flag} {settings[key]} differs from the study's {shown}: every trial of a study "
                             "trains with the same settings", hint=f"leave out {flag}, or give another --study",
                             code="E688")


def make_sampler(optuna, name: str, search_space: dict, seed: int):
    if name == "grid":
        return optuna.samplers.GridSampler(search_space, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(optuna, name: str, epochs: int, warmup: float = 0):
    """The pruner; no trial is pruned at an epoch that had learning-rate warm-up in it (`warmup` epochs): a
    held-out accuracy while the rate still rises says little of where the trial ends (the record-3 study's
    trial 5 was last but one at epoch 1, in a warm-up of 2, and ended on the MACs front)."""
    warm = min(math.ceil(warmup), max(epochs - 1, 0))  # the last epoch is never pruned anyway
    if name == "median":
        # Optuna prunes from step n_warmup_steps on; archdsl's steps are epochs, counted from 1
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warm + 1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=warm + 1, max_resource=max(epochs, warm + 1))
    return optuna.pruners.NopPruner()


# --- which trials are what ---------------------------------------------------------------------------

def kind(trial) -> str:
    """complete, pruned, failed, running, waiting; or, for a trial not trained: infeasible, repeat, skipped."""
    for attr in ("infeasible", "skipped"):
        if attr in trial.user_attrs:
            return attr
    if "repeat_of" in trial.user_attrs:
        return "repeat"
    return {"FAIL": "failed"}.get(trial.state.name, trial.state.name.lower())


def trained(trial) -> bool:
    """Whether the trial trains (trained) its variant in its own run directory. A retry made by the storage's
    heartbeat callback inherits the failed trial's attributes: its run_dir is the failed one's until it
    starts training in its own."""
    attrs = trial.user_attrs
    return (attrs.get("run_dir") == f"trials/{trial.number}"
            and not any(a in attrs for a in ("repeat_of", "skipped", "infeasible")))


def retry_of(trial) -> int | None:
    """The failed trial this one trains again (the latest, for a retry of a retry), or None. The storage's
    heartbeat callback records its chain in the system attribute retry_history (and copies the failed trial's
    user attributes, an older retry_of among them); a resume's queue_retries records retry_of."""
    chain = trial.system_attrs.get("retry_history")
    return chain[-1] if chain else trial.user_attrs.get("retry_of")


def failed_trials(trials, variant: int) -> list[int]:
    """The numbers of the trained trials of `variant` that failed: the runs a new trial of it may continue."""
    return [t.number for t in trials if t.state.name == "FAIL" and trained(t) and t.user_attrs.get("variant") == variant]


def counted(trial) -> bool:
    """A trained trial that finished: what `--trials` counts."""
    return trained(trial) and trial.state.name in ("COMPLETE", "PRUNED")


def taken(trials, me: int | None = None) -> set[int]:
    """The variants a trial trains, has trained or is queued to train (failed ones may be tried again)."""
    out = set()
    for t in trials:
        if t.number == me or "variant" not in t.user_attrs and t.state.name != "WAITING":
            continue
        if t.state.name == "WAITING" or (trained(t) and t.state.name in ("COMPLETE", "PRUNED", "RUNNING")):
            out.add(t.user_attrs.get("variant", t.user_attrs.get("queued_variant")))
    return out - {None}


def twin_of(trials, me: int, variant: int):
    """Another trial that trains (or trained) `variant`, if any: the one to repeat instead of training."""
    for t in trials:
        if t.number != me and trained(t) and t.user_attrs.get("variant") == variant \
                and t.state.name in ("COMPLETE", "PRUNED", "RUNNING"):
            return t
    return None


def claim(study, trial, budget: int | None) -> bool:
    """Take a place in the `--trials` budget before training; False when the budget is full. The places are
    ordered by (claim time, trial number), read from the storage: of two workers claiming at once exactly
    one counts the other, so the study ends with exactly `budget` counted trials (on one machine; across
    machines whose clocks differ, at most one more a worker)."""
    mine = (time.time(), trial.number)
    trial.set_user_attr("claim", mine[0])
    if budget is None:
        return True
    used = 0
    for t in study.get_trials(deepcopy=False):
        if t.number == trial.number:
            continue
        earlier_claim = (t.state.name == "RUNNING" and "claim" in t.user_attrs and "skipped" not in t.user_attrs
                         and (t.user_attrs["claim"], t.number) < mine)
        used += counted(t) or earlier_claim
    return used < budget


def queue_retries(study) -> list[int]:
    """Queue the variant of every trained trial that failed (killed, interrupted, crashed) and that no other
    trial trains, has trained or is queued to train; the failed trials' numbers."""
    trials = study.get_trials(deepcopy=False)
    busy = taken(trials)
    retried = []
    for t in reversed(trials):  # a variant that failed more than once: the retry of its latest failure
        if t.state.name == "FAIL" and trained(t) and t.user_attrs.get("variant") not in busy:
            study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number,
                                                            "queued_variant": t.user_attrs["variant"]})
            busy.add(t.user_attrs["variant"])
            retried.append(t.number)
    return retried


def queue(study, values: dict[str, str], variant: int) -> None:
    study.enqueue_trial(values, user_attrs={"queued_variant": variant})
