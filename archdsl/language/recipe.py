"""Recipe overrides of a spec's `train { }` section: `archdsl train --recipe FILE --set KEY=VALUE ...`.

    model = with_recipe(model, recipe="fast.recipe", sets=["lr=0.2", "schedule=cosine"])

A recipe file holds only a `train { }` section (and comments); a `--set KEY=VALUE` is one line of one.
Both are read by the spec's own parser and train-section reader (`train_config.resolve_train`), so a
value is accepted or refused exactly as in a spec, with the same codes and messages. A `--set`'s
messages name it as their file (`--set lr=abc:1:4`) and point into the argument: `KEY=VALUE` is read
as the line `KEY VALUE`, which has the same columns.

Precedence, lowest first: the spec's section, the recipe file, each --set in the order given. A
setting replaces only itself (`augment` the whole augmentation: `--set "augment=flip"` drops the
spec's crop; `schedule inverse_time 0.3` also sets `decay`).
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence

from ..errors import ArchError, Span, SpecSemanticError, UsageError, raise_collected
from ..fileio import shown_path
from ..ir import Model, TrainConfig
from .parser import parse, read_source
from .spec import BlockDef, LayerStmt, ParallelStmt, ResidualStmt, TrainSection
from .train_config import resolve_train

RECIPE_HINT = "a recipe file holds one `train { }` section: `train {`, one setting a line, `}`"
_KEY = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*(=)?")  # a key, and the `=` after it if there is one


def with_recipe(model: Model, recipe: str | os.PathLike | None = None, sets: Sequence[str] = ()) -> Model:
    """`model` with its train section overridden by the recipe file at `recipe` (a path), then by each
    `KEY=VALUE` of `sets` in order. Raises the positioned errors a spec's train section would."""
    text = read_source(os.fspath(recipe)) if recipe is not None else None
    return with_recipe_text(model, text, shown_path(os.fspath(recipe)) if recipe is not None else "", sets)


def with_recipe_text(model: Model, text: str | None, file: str, sets: Sequence[str] = ()) -> Model:
    """As `with_recipe`, the recipe given as its text (None: no recipe), named `file` in messages."""
    train = model.train
    if text is not None:
        train = read_recipe(text, file, train)
    for argument in sets:
        train = apply_set(argument, train)
    return model if train == model.train else model.model_copy(update={"train": train})


def read_recipe(text: str, file: str, base: TrainConfig) -> TrainConfig:
    """`base` overridden by the recipe `text` (named `file` in messages)."""
    spec = parse(text, file)
    sections = [s for s in spec.statements if isinstance(s, TrainSection)]
    other = next((s for s in spec.statements if not isinstance(s, TrainSection)), None)
    if other is not None:
        layers = any(isinstance(s, (LayerStmt, ResidualStmt, ParallelStmt, BlockDef)) for s in spec.statements)
        what = "a spec" if layers else "not a recipe"
        raise UsageError(f"{file} is {what}: a recipe file holds only a `train {{ }}` section", _span(other, file),
                         "give the spec as FILE and put only its `train { }` section in the recipe file", "E614",
                         text)
    if not sections:
        raise UsageError(f"{file} has no `train {{ }}` section", None, RECIPE_HINT, "E614")
    errors: list[ArchError] = []
    for extra in sections[1:]:
        errors.append(SpecSemanticError("a second train section", extra.span,
                                        f"merge it into the one on line {sections[0].span.line}", "E207"))
    train = resolve_train(sections[0], errors, base)
    for e in errors:
        e.source = text
    raise_collected(errors)
    return train


def apply_set(argument: str, base: TrainConfig) -> TrainConfig:
    """`base` with the one setting of a `--set KEY=VALUE` (or `--set KEY` for `nesterov`) applied."""
    file = f"--set {argument}"
    key = _KEY.match(argument)
    if "\n" in argument or "\r" in argument or not key:
        raise UsageError(f"--set {argument!r}: not a KEY=VALUE setting of the train section", None,
                         "write one setting, on one line, e.g. --set lr=0.2 or --set \"augment=flip crop 4\"",
                         "E614")
    equals = key.start(1)  # `KEY=VALUE` is read as `KEY VALUE`: the same columns as the argument
    line = argument[:equals] + " " + argument[equals + 1:] if key.group(1) else argument
    try:
        spec = parse(f"train {{\n{line}\n}}\n", file)
        sections = [s for s in spec.statements if isinstance(s, TrainSection)]
        if len(spec.statements) != 1 or len(sections[0].items) != 1:  # `--set "#lr"`: a comment only
            raise UsageError(f"--set {argument!r}: not a KEY=VALUE setting of the train section", None,
                             "write one setting, e.g. --set lr=0.2", "E614")
        errors: list[ArchError] = []
        train = resolve_train(sections[0], errors, base)
        raise_collected(errors)
        return train
    except ArchError as exc:
        for e in getattr(exc, "errors", [exc]):
            _into_argument(e, argument)
        if hasattr(exc, "errors"):
            exc.span, exc.source = exc.errors[0].span, argument
        raise


def _into_argument(error: ArchError, argument: str) -> None:
    """Move an error found in the synthetic `train {` / line / `}` text onto the argument itself (line 1)."""
    error.source = argument
    span = error.span
    if span is None:
        return
    if span.line != 2:  # the braces around it: the argument's end
        end = len(argument) + 1
        error.span = Span(span.file, 1, end, end + 1)
    else:
        error.span = Span(span.file, 1, span.column, span.end_column)


def _span(statement, file: str) -> Span | None:
    span = getattr(statement, "span", None)
    if span is None and hasattr(statement, "op"):  # a layer: its op's token
        span = statement.op.span
    return span
