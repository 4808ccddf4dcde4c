"""What `archdsl train`'s command line changes in the spec's train section, recorded so a run can be resumed
and rerun exactly; and the numbers on it that no setting can take (`check_flags`).

Precedence, lowest first: the spec's `train { }` section, `--recipe FILE`, each `--set KEY=VALUE` in the
order given (both read by `language.recipe`, exactly as the spec's section), then the flags `--epochs`,
`--batch-size`, `--lr`, `--val-split` and `--strategy`. A run keeps its copy of the recipe file
(recipe.arch) and its --set arguments (state settings "recipe" and "set"), so that `--resume` can tell
an edit of spec.arch from the overrides the run was started with.
"""
from __future__ import annotations

import sys

from .. import runs
from ..errors import ArchError, UsageError
from ..ir import Model, TrainConfig

# the train section's keys that a flag of its own overrides, and that flag
OVERRIDES = {"epochs": "--epochs", "batch": "--batch-size", "lr": "--lr", "strategy": "--strategy",
             "val_split": "--val-split"}


MAX_SEED = 2**32 - 1  # what keras.utils.set_random_seed takes


def check_flags(args) -> None:
    """Numbers on the command line that no setting can take, refused before anything is written."""
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise UsageError(f"--seed {seed}: must be from 0 to {MAX_SEED:,}", hint="e.g. --seed 1", code="E612")
    for flag in ("limit", "test_limit"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} {value}: must be at least 1 image",
                             hint=f"e.g. --{flag.replace('_', '-')} 1000, or leave it out for every image", code="E612")


def with_overrides(model: Model, **overrides) -> Model:
    """`model` with its train section's settings replaced by the given (non-None) values of OVERRIDES' keys."""
    values = {k: v for k, v in overrides.items() if v is not None}
    if not values:
        return model
    try:
        cfg = TrainConfig(**{**model.train.model_dump(), **values})
    except ValueError as exc:
        problem = exc.errors()[0] if hasattr(exc, "errors") else {"loc": ["?"], "msg": str(exc)}
        flag = OVERRIDES.get(str(problem["loc"][0]), "")
        raise UsageError(f"{flag} {values.get(problem['loc'][0])}: {problem['msg'].lower()}",
                         hint="see `archdsl train --help`", code="E612") from None
    return model.model_copy(update={"train": cfg})


def recipe_of(args) -> tuple[str | None, list[str]]:
    """The text of `--recipe` (None without one) and the `--set` arguments, as given."""
    from ..language.parser import read_source

    recipe = getattr(args, "recipe", None)
    return (read_source(recipe) if recipe else None), list(getattr(args, "set", None) or [])


def apply_recipe(model: Model, recipe: str | None, recipe_file: str, sets: list[str]) -> Model:
    from ..language.recipe import with_recipe_text
    return with_recipe_text(model, recipe, recipe_file, sets)


def check_resume_recipe(args, run: runs.RunDir, settings: dict) -> None:
    """E611 unless a resume's --set and --recipe are those the run started with (or left out)."""
    recipe, sets = recipe_of(args)
    if sets and sets != settings.get("set", []):
        kept = " ".join(f"--set {s}" for s in settings.get("set", [])) or "no --set"
        raise UsageError(f"{' '.join(f'--set {s}' for s in sets)} differs from the run's {kept}: a resumed run "
                         "keeps its settings", hint="leave out --set, or start a new run", code="E611")
    if recipe is not None and recipe != _run_recipe(run, settings):
        kept = "recipe (recipe.arch)" if settings.get("recipe") else "spec's train section (it had no --recipe)"
        raise UsageError(f"--recipe {args.recipe} differs from the run's {kept}: a resumed run keeps its settings",
                         hint="leave out --recipe, or start a new run", code="E611")


def _run_recipe(run: runs.RunDir, settings: dict) -> str | None:
    """The text of the run's copy of its recipe file; None if it had none."""
    from ..language.parser import read_source
    return read_source(str(run.recipe)) if settings.get("recipe") else None


def check_spec_copy(run: runs.RunDir, model: Model, state: dict) -> None:
    """Warn when the run's spec.arch no longer means its resolved.json: a resume trains resolved.json (the model
    the run's checkpoints hold), so an edit of spec.arch is not applied, and the user is told so.

    The two are compared as resolved models, leaving out positions (a comment or a reformatted line is no
    change) and asserts (they do not train); the run's recipe.arch and --set arguments (state settings) are
    applied to spec.arch first, and the train section's values that the first command line gave as flags
    (state "commands"; all of OVERRIDES when it is not recorded) are taken from resolved.json.
    """
    from ..fileio import os_reason
    from ..language.parser import BOM, parse
    from ..language.resolve import resolve

    try:
        text = run.spec.read_text(encoding="utf-8").removeprefix(BOM)  # `train` copies the mark too
    except (OSError, UnicodeDecodeError) as exc:
        why = f"it cannot be read: {os_reason(exc)}"
    else:
        if not text.strip():  # `train()` given a model without a file writes an empty copy
            return
        commands = state.get("commands") or []
        given = _flags_of(commands[0]["command"]) if commands and commands[0]["from_epoch"] == 0 else set(OVERRIDES)
        settings = state.get("settings") or {}
        try:
            written = resolve(parse(text, str(run.spec)))
        except (ArchError, ValueError):
            why = "it is not a valid spec any more"
        else:
            try:
                written = apply_recipe(written, _run_recipe(run, settings), str(run.recipe), settings.get("set", []))
                written = with_overrides(written, **{k: getattr(model.train, k) for k in given})
            except (ArchError, ValueError):
                why = "its recipe.arch or --set settings are not valid any more"
            else:
                if _meaning(written) == _meaning(model):
                    return
                why = "it describes another model or recipe"
    _warn(f"{run.spec} differs from {run.resolved} ({why}): resuming with resolved.json, the model the run has "
          f"trained so far; the edit is not applied (to train the edited spec, start a new run: archdsl train "
          f"{run.spec})")


def _flags_of(command: str) -> set[str]:
    """Which of OVERRIDES' settings a recorded command line gave (argparse also takes a flag's unique prefix)."""
    import shlex

    try:
        words = shlex.split(command)
    except ValueError:
        return set(OVERRIDES)
    prefixes = [w.split("=")[0] for w in words if w.startswith("--") and len(w.split("=")[0]) > 2]
    return {key for key, flag in OVERRIDES.items() if any(flag.startswith(p) for p in prefixes)}


def _meaning(model: Model):
    """What a model trains: its dump without the file, positions and asserts."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k != "where"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return strip(model.model_dump(mode="json", exclude={"file", "assertions"}))


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
