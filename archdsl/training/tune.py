"""`archdsl tune FILE`: the feasible variants of a design space tuned by Optuna, each trial an ordinary run.

    archdsl tune space.arch --trials 20 --epochs 5 --limit 5000     # runs/tune/space/: the study, trials/, best.arch

The choices are the study's categorical parameters (tune_variants.py: a proposal that cannot be trained is
repaired to the nearest feasible variant nobody has taken). Each trained trial resolves its variant, with
--epochs and the held-out validation split (--val-split, else the spec's val_split, else a tenth of the
training images used), and trains it with `train()` into trials/<number>/; every epoch's held-out accuracy is
reported to the pruner, and the last one is the trial's value (maximised). The data is loaded once a worker.
The study lives in the storage (tune_storage.py: a SQLite file in the tune folder, or a database server);
workers that open it share it, `--trials N` counting the trained, finished trials of all of them
(tune_study.py), and `--resume` continues it. Everything is checked before TensorFlow is imported.
"""
from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

from .. import runs
from ..errors import ArchError, UsageError
from ..fileio import shown_path
from . import progress, tune_folder, tune_study
from .tune_storage import describe_storage, masked_url, open_storage, storage_url
from .tune_variants import VariantIndex, why_not_trained

DEFAULT_OUT = "runs/tune"


class Tune:
    """What every trial of one worker shares: the space, the study, the settings, the data (once loaded)."""

    def __init__(self, args):
        self.args = args
        self.optuna = tune_study.import_optuna()
        _check_numbers(args)
        if getattr(args, "report", None):  # refused before minutes of training, not after
            _check_report(args.report)
        from ..analysis.space import explore
        from ..language.parser import parse, read_source
        text = read_source(args.file)
        self.spec = parse(text, shown_path(args.file))
        self.space = explore(self.spec)
        if not self.space.feasible:
            raise self.space.no_feasible_error()
        self.index = VariantIndex(self.space)
        self.name = args.study or Path(args.file).stem
        self.folder = runs.check_out(args.out or DEFAULT_OUT) / self.name
        self.storage_shown = describe_storage(storage_url(args.storage, self.folder))
        sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
        # the storage as the folder records it: the same from any working folder (the default: its own study.db)
        kept_in = "study.db" if args.storage is None else masked_url(args.storage)
        manifest = tune_folder.manifest(self.name, Path(args.file).name, sha, kept_in)
        tune_folder.check_folder(self.folder, manifest,
                                 must_exist=(args.leaderboard or args.resume) and args.storage is None)
        self.settings = {"spec_sha256": sha, "data": _data_setting(args.data), "limit": args.limit,
                         "test_limit": args.test_limit,
                         "epochs": args.epochs, "val_split": args.val_split, "seed": args.seed,
                         "sampler": args.sampler, "pruner": args.pruner}
        grace = getattr(args, "heartbeat_grace", None)
        beat = {} if grace is None else {"grace_period": grace, "heartbeat_interval": max(1, grace // 4)}
        self.storage = open_storage(args.storage, self.folder, **beat)
        if not args.leaderboard:
            tune_folder.claim_folder(self.folder, manifest)
        self.study, self.created = tune_study.open_study(self.optuna, self.storage, self.name, self.settings,
                                                         resume=args.resume, must_exist=args.leaderboard)
        self.seed = self.settings["seed"] or 0
        self.dataset = None
        self.stopped = ""

    # --- output ------------------------------------------------------------------------------------

    def board(self) -> dict:
        from .tune_board import board
        return board(self.study, [c.name for c in self.space.choices], self.storage_shown, self.spec.file)

    def write_outputs(self) -> tuple[dict, Path | None]:
        """leaderboard.json, and best.arch (the best complete trial's variant) once there is one."""
        board = self.board()
        tune_folder.write_leaderboard(self.folder, board)
        if board["best"] is None:
            return board, None
        from ..language.choices import concrete_text
        text = concrete_text(self.spec, self.space.variants[board["best"]["variant"] - 1].picks)
        return board, tune_folder.write_best(self.folder, text if text.endswith("\n") else text + "\n")

    def say(self, line: str) -> None:
        if self.args.verbose:
            print(line, flush=True)

    # --- the trials --------------------------------------------------------------------------------

    def load_data(self) -> None:
        from . import holdout
        from .data import load_dataset
        from .train import check_data
        args = self.args
        data = self.settings["data"] or "cifar10"
        limit, self.test_limit = self.settings["limit"], self.settings["test_limit"]
        if limit is not None and self.test_limit is None:  # the test split's matching share, as `train` takes it
            full = load_dataset(data, args.data_dir)
            self.dataset, self.test_limit = holdout.matching_test_split(full, limit)
            del full
        else:
            self.dataset = load_dataset(data, args.data_dir, limit, self.test_limit)
        first = self.model_of(self.index.feasible[0])
        check_data(first, self.dataset)
        holdout.check_val_split(self.dataset.y_train, first.train.val_split, self.seed)

    def model_of(self, variant):
        """The variant's resolved model, with --epochs and the held-out split it trains with."""
        from ..language.choices import instantiate, note_values
        from ..language.resolve import resolve
        from .overrides import with_overrides
        member, uses = instantiate(self.spec, variant.picks)
        try:
            model = resolve(member)
        except ArchError as exc:
            raise note_values(exc, uses) from None
        val_split = self.settings["val_split"] or model.train.val_split
        if not val_split and self.dataset is not None:
            val_split = max(1, len(self.dataset.y_train) // 10)
        return with_overrides(model, epochs=self.settings["epochs"], val_split=val_split or None)

    def objective(self, trial) -> float:
        values = {c.name: trial.suggest_categorical(c.name, c.texts) for c in self.space.choices}
        variant = self.index.variant(values)
        trial.set_user_attr("variant", variant.index)
        trial.set_user_attr("worker", tune_study.worker_name())
        shown = f"trial {trial.number}  {variant.name or self.spec.file}"
        if not variant.feasible:
            why = why_not_trained(variant)
            trial.set_user_attr("infeasible", why)
            self.say(f"{shown}: infeasible ({why}), not trained")
            self.repair(trial, variant)
            raise self.optuna.TrialPruned(why)
        trials = self.study.get_trials(deepcopy=False)
        twin = tune_study.twin_of(trials, trial.number, variant.index)
        if twin is not None:
            trial.set_user_attr("repeat_of", twin.number)
            self.say(f"{shown}: trial {twin.number} trains this variant, not trained again")
            self.repair(trial, variant)
            if twin.state.name == "COMPLETE":
                return twin.value  # what Optuna's FAQ does for a repeated proposal: the sampler sees its value
            raise self.optuna.TrialPruned("a repeat")
        if not tune_study.claim(self.study, trial, self.args.trials):
            trial.set_user_attr("skipped", f"the budget of {self.args.trials} trials was taken by other workers")
            self.stopped = f"--trials {self.args.trials} reached"
            self.study.stop()
            raise self.optuna.TrialPruned("budget reached")
        return self.train_trial(trial, variant, shown)

    def repair(self, trial, variant) -> None:
        """Queue the nearest feasible variant nobody has taken in place of this proposal; stop when none is
        left. The grid sampler needs no repair: it proposes each combination once, and stops by itself."""
        if self.settings["sampler"] == "grid":
            return
        free = self.index.nearest_untaken(variant, tune_study.taken(self.study.get_trials(deepcopy=False),
                                                                    trial.number))
        if free is None:
            self.stopped = "every feasible variant has a trial"
            self.study.stop()
        else:
            tune_study.queue(self.study, free.values(), free.index)

    def train_trial(self, trial, variant, shown: str) -> float:
        import keras

        from ..language.choices import concrete_text
        from .train import train
        model = self.model_of(variant)
        # recorded before the folder is made: a worker killed in between leaves a trial whose folder is missing,
        # never a folder no trial names
        for key, value in (("run_dir", f"trials/{trial.number}"), ("params", variant.metrics["params"]),
                           ("macs", variant.metrics["macs"]), ("epochs", 0), ("val_accuracy", None),
                           ("test_accuracy", None), ("seconds", None), ("continued_from", None)):
            trial.set_user_attr(key, value)
        run = tune_folder.trial_run(self.folder, trial.number)
        settings = {"data": self.settings["data"] or "cifar10", "data_dir": _abs(self.args.data_dir),
                    "limit": self.settings["limit"], "test_limit": self.test_limit, "seed": self.seed,
                    "recipe": None, "set": []}
        if settings["data"] != "cifar10":
            settings["data"] = self.dataset.source
        earlier = self.continue_failed(trial, variant, model, run, settings, shown)
        if earlier is None:
            runs.write_bytes(run.spec, concrete_text(self.spec, variant.picks).encode("utf-8"))
        reporter = _pruning_callback(keras, trial, model.train.epochs)
        start = time.monotonic()
        try:
            metrics = train(model, self.dataset, seed=self.seed, run_dir=run, resume=earlier is not None,
                            verbose=2 if self.args.verbose > 1 else 0, settings=settings,
                            command=getattr(self.args, "command_line", None), callbacks=[reporter])
        finally:
            keras.backend.clear_session()
        # a continued run's time includes the epochs the failed trial trained
        seconds = time.monotonic() - start + sum(row["seconds"] for row in (earlier or {}).get("history", []))
        value = metrics["final_val_accuracy"]
        # the final model's test accuracy, scored once after training: reported beside the held-out accuracy
        # (what a record is stated in), never what the study optimises
        for key, v in (("epochs", metrics["epochs_done"]), ("val_accuracy", value),
                       ("test_accuracy", metrics.get("final_test_accuracy")), ("seconds", seconds)):
            trial.set_user_attr(key, v)
        where = _shown(run.path)
        if reporter.pruned:
            self.say(f"{shown}: pruned after {_epochs(metrics['epochs_done'])}, val (held out) accuracy "
                     f"{value:.4f}, {seconds:.1f} s, {where}")
            raise self.optuna.TrialPruned(f"pruned at epoch {metrics['epochs_done']}")
        self.say(f"{shown}: val (held out) accuracy {value:.4f} after {_epochs(metrics['epochs_done'])}, "
                 f"{seconds:.1f} s, {where}")
        return value

    def continue_failed(self, trial, variant, model, run: runs.RunDir, settings: dict, shown: str) -> dict | None:
        """A trial of a variant that failed before (a retry, mostly) continues the failed run of the variant that
        got furthest, from its last checkpoint, when it has one of this model, data and settings: training
        resumes bit for bit, so the result is the one an uninterrupted trial gets. Its epochs' held-out
        accuracies are reported to the pruner as this trial's. The state continued from, or None."""
        failed = tune_study.failed_trials(self.study.get_trials(deepcopy=False), variant.index)
        found = tune_folder.continue_failed(self.folder, failed, run, model.model_dump_json(indent=1), settings,
                                           runs.data_fingerprint(self.dataset)) if failed else None
        if found is None:
            return None
        number, state = found
        for row in state["history"]:
            if row.get("val_accuracy") is not None:
                trial.report(float(row["val_accuracy"]), row["epoch"])
        trial.set_user_attr("continued_from", {"trial": number, "epoch": state["epoch"]})
        self.say(f"{shown}: continues trial {number}'s run from its checkpoint of {_epochs(state['epoch'])}")
        return state

    def after_trial(self, study, trial) -> None:
        """Optuna's callback after each trial: the budget, and leaderboard.json kept current."""
        budget = self.args.trials
        if budget is not None and sum(tune_study.counted(t) for t in study.get_trials(deepcopy=False)) >= budget:
            self.stopped = f"--trials {budget} reached"
            study.stop()
        self.write_outputs()


def _pruning_callback(keras, trial, epochs: int):
    class ReportToPruner(keras.callbacks.Callback):
        """After each epoch (its checkpoint written): the held-out accuracy to the pruner; stop when it prunes.
        The last epoch is reported, not pruned: the trial is complete anyway."""
        pruned = False

        def on_epoch_end(self, epoch, logs=None):
            value = (logs or {}).get("val_accuracy")
            if value is None:
                return
            trial.report(float(value), epoch + 1)
            if epoch + 1 < epochs and trial.should_prune():
                self.pruned = True
                self.model.stop_training = True

    return ReportToPruner()


def run_tune(args) -> int:
    tune = Tune(args)
    if args.leaderboard:
        board, best = tune.board(), tune.folder / "best.arch"
        from ..render.tune import render
        print(render(board, args.format, _shown(best) if best.exists() else None))
        _write_report(args, board)
        return 0
    trials = tune.study.get_trials(deepcopy=False)
    done = sum(tune_study.counted(t) for t in trials)
    if args.trials is not None and done >= args.trials:  # nothing to train: TensorFlow is not started
        tune.stopped = f"the study has {done} trained, finished trials already (--trials {args.trials})"
    elif {v.index for v in tune.index.feasible} <= tune_study.taken(trials):
        tune.stopped = "every feasible variant has a trial already"
    else:
        try:
            _train_trials(tune, args)
        except KeyboardInterrupt:
            tune.write_outputs()
            again = ["archdsl", "tune", args.file, "--resume", *(["--out", args.out] if args.out else []),
                     *(["--study", args.study] if args.study else []), *(["--storage", "URL"] if args.storage else [])]
            print(f"\ninterrupted; the study keeps its finished trials (the one interrupted is marked failed, and "
                  f"continued from its last checkpoint on resume). Resume with:\n  {' '.join(again)}",
                  file=sys.stderr)
            return 130
    board, best = tune.write_outputs()
    from ..render.tune import render
    if tune.stopped:
        tune.say(f"stopped: {tune.stopped}")
    print(render(board, args.format, _shown(best) if best else None))
    _write_report(args, board)
    return 0


def _train_trials(tune: Tune, args) -> None:
    """This worker's part of the study: the sampler and pruner set, the data loaded, the trials run."""
    optuna = tune.optuna
    # the study's first worker samples with --seed itself, so a one-worker tune proposes the same variants
    # again; every other worker (or a resume) with its own offset, so two workers do not propose alike
    seed = tune.seed if tune.created else (tune.seed + 1 + os.getpid()) % 2**32
    first = tune.model_of(tune.index.feasible[0]).train  # --epochs, and the spec's warm-up
    epochs = first.epochs
    tune.study.sampler = tune_study.make_sampler(optuna, tune.settings["sampler"] or "tpe",
                                                 tune.index.search_space(), seed)
    tune.study.pruner = tune_study.make_pruner(optuna, tune.settings["pruner"] or "median", epochs, first.warmup)
    from ..keras_backend.tensorflow_start import import_tensorflow
    shown = progress.VERBOSE
    progress.VERBOSE = args.verbose > 0
    try:
        import_tensorflow()
        tune.load_data()
    finally:
        progress.VERBOSE = shown
    optuna.storages.fail_stale_trials(tune.study)  # a killed worker's trial: failed, and queued again
    retried = tune_study.queue_retries(tune.study)
    feasible = len(tune.index.feasible)
    tune.say(f"study {tune.name} ({tune.storage_shown}): {feasible:,} feasible variant{'s' if feasible != 1 else ''} "
             f"of {len(tune.space.variants):,}; trials in {_shown(tune.folder / 'trials')}"
             + (f"; queued again: the failed trial{'s' if len(retried) > 1 else ''} "
                f"{', '.join(map(str, retried))}" if retried else ""))
    tune.study.optimize(tune.objective, timeout=args.time, callbacks=[tune.after_trial], gc_after_trial=True)


def _check_report(path: str) -> None:
    from ..fileio import check_target
    if not path.lower().endswith((".html", ".htm")):
        raise UsageError(f"--report {path}: the report is an HTML page", hint="write e.g. --report tune.html",
                         code="E689")
    check_target(path, overwrite=False)


def _write_report(args, board: dict) -> None:
    if getattr(args, "report", None):
        from ..fileio import replace_with_bytes
        from ..render.tune import report_html
        replace_with_bytes(Path(args.report), report_html(board).encode("utf-8"))
        print(f"wrote {shown_path(args.report)}", file=sys.stderr)


def _check_numbers(args) -> None:
    from .overrides import check_flags
    check_flags(args)  # --seed, --limit (E612), as `archdsl train` checks them
    for flag in ("trials", "epochs", "val_split"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            name = "--" + flag.replace("_", "-")
            raise UsageError(f"{name} {value}: must be at least 1", hint=f"e.g. {name} 4, or leave it out",
                             code="E685")
    if args.time is not None and not args.time > 0:
        raise UsageError(f"--time {args.time:g}: must be more than 0 seconds", hint="e.g. --time 3600, or leave it "
                         "out to stop at --trials (or when every feasible variant has a trial)", code="E685")


def _epochs(n: int) -> str:
    return f"{n} epoch{'s' if n != 1 else ''}"


def _shown(path: Path) -> str:
    """A path of the tune folder as printed: relative to the working folder when inside it."""
    try:
        path = path.relative_to(Path.cwd())
    except ValueError:
        pass
    return shown_path(path)


def _data_setting(data: str | None) -> str | None:
    """--data as the study records it: cifar10, or an absolute path (workers may start in other folders)."""
    if data is None or data == "cifar10":
        return data
    return _abs(data)


def _abs(path: str | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else None
