"""The `train { ... }` section -> `ir.TrainConfig`, with positioned errors.

Each line is `key value...`. Keys and their values are checked here; ranges and
allowed names are the pydantic model's (ir.TrainConfig), whose complaints are
mapped back to the line that caused them.
"""
from __future__ import annotations

from pydantic import ValidationError

from ..errors import SpecSemanticError, did_you_mean
from ..ir import Augment, TrainConfig
from .spec import Token, TrainItem, TrainSection

# key -> an example line, for hints
NUMERIC = {"lr": "lr 0.01", "decay": "decay 0.319", "warmup": "warmup 2", "final_lr": "final_lr 0",
           "momentum": "momentum 0.9", "weight_decay": "weight_decay 5e-4", "batch": "batch 128",
           "epochs": "epochs 50", "passes": "passes 2", "label_smoothing": "label_smoothing 0.1", "ema": "ema 0.999",
           "val_split": "val_split 5000"}
CHOICE = {"optimizer": "optimizer sgd", "loss": "loss categorical_crossentropy", "normalize": "normalize scale",
          "strategy": "strategy multiworker"}
INTEGER = {"batch", "epochs", "passes", "val_split"}
KEYS = sorted([*NUMERIC, *CHOICE, "schedule", "nesterov", "augment", "tta"])


def resolve_train(section: TrainSection | None, errors: list, base: TrainConfig | None = None) -> TrainConfig:
    """The train config `section` gives, each setting it leaves out taken from `base` (default: the defaults).

    With a base, a setting replaces only itself: `augment` replaces the whole augmentation, `schedule
    inverse_time 0.319` also sets `decay`. On errors (appended to `errors`), the base is returned."""
    base = base or TrainConfig()
    if section is None:
        return base
    values: dict = {}
    where: dict[str, Token] = {}
    for item in section.items:
        key = item.key.text.lower()
        if key in where:
            errors.append(SpecSemanticError(f"train setting '{key}' is given twice", item.key.span,
                                            f"keep the one on line {where[key].span.line}", "E250"))
            continue
        where[key] = item.key
        _read_item(key, item, values, where, errors)
    try:
        return TrainConfig(**{**base.model_dump(), **values})
    except ValidationError as exc:
        for problem in exc.errors():
            field = str(problem["loc"][0]) if problem["loc"] else ""
            tok = where.get(f"{field}=") or where.get(field) or where.get("schedule") or section.items[0].key
            message, hint = _problem(field, problem, tok)
            errors.append(SpecSemanticError(message, tok.span, hint, "E251"))
        return base


def _read_item(key: str, item: TrainItem, values: dict, where: dict, errors: list) -> None:
    args = item.args

    def fail(message: str, hint: str | None, tok: Token | None = None):
        errors.append(SpecSemanticError(message, (tok or item.key).span, hint, "E252"))

    if key in NUMERIC or key in CHOICE:
        kind = "number" if key in NUMERIC else "name"
        example = NUMERIC.get(key) or CHOICE[key]
        if len(args) != 1 or args[0].kind != kind:
            fail(f"train '{key}' takes one {kind}", f"write e.g. `{example}`", args[0] if args else None)
            return
        value = args[0].number if kind == "number" else args[0].text.lower()
        if key in INTEGER:
            if value != int(value):
                fail(f"train '{key}' must be a whole number, not '{args[0].text}'", f"write e.g. `{example}`",
                     args[0])
                return
            value = int(value)
        values[key] = value
        where[f"{key}="] = args[0]  # the value, for range errors
    elif key == "schedule":
        if not args or args[0].kind != "name" or len(args) > 2 or (len(args) == 2 and args[1].kind != "number"):
            fail("train 'schedule' takes a name and, for inverse_time, its decay",
                 "write e.g. `schedule inverse_time 0.319` or `schedule cosine`")
            return
        values["schedule"] = args[0].text.lower()
        where["schedule="] = args[0]
        if len(args) == 2:
            values["decay"] = args[1].number
            where["decay="] = args[1]
    elif key == "nesterov":
        if args:
            fail("train 'nesterov' takes no value", "write `nesterov` alone", args[0])
        values["nesterov"] = True
    elif key == "tta":
        if [a.text for a in args] != ["flip"]:
            fail("train 'tta' takes `flip`", "write `tta flip`")
            return
        values["tta_flip"] = True
    elif key == "augment":
        augment = _read_augment(args, fail)
        if augment is not None:
            values["augment"] = augment
    else:
        fail(f"unknown train setting '{item.key.text}'", did_you_mean(key, KEYS) or "settings: " + ", ".join(KEYS))


def _read_augment(args: list[Token], fail) -> Augment | None:
    fields: dict = {}
    i = 0
    while i < len(args):
        word = args[i].text.lower()
        if word == "none":
            pass
        elif word == "flip":
            fields["flip"] = True
            i = _read_mode(args, i, "flip_mode", fields)
        elif word in ("crop", "cutout"):
            if i + 1 >= len(args) or args[i + 1].kind != "number" or args[i + 1].number != int(args[i + 1].number) \
                    or not 0 <= args[i + 1].number <= 1024:
                fail(f"augment '{word}' takes a size in pixels", f"write e.g. `augment {word} 4`", args[i])
                return None
            fields[word] = int(args[i + 1].number)
            i += 1
            if word == "crop":
                i = _read_mode(args, i, "crop_mode", fields)
        else:
            fail(f"unknown augmentation '{args[i].text}'",
                 did_you_mean(word, ["flip", "crop", "cutout", "none"])
                 or "augmentations: flip [random|alternate], crop N [reflect|zero], cutout N", args[i])
            return None
        i += 1
    return Augment(**fields)


def _read_mode(args: list[Token], i: int, field: str, fields: dict) -> int:
    """An optional mode word after args[i] (`flip alternate`, `crop 2 zero`), one of the IR field's
    values: store it in fields[field]. Returns the index of the last token read."""
    if i + 1 < len(args) and args[i + 1].text.lower() in _choices(field, Augment):
        fields[field] = args[i + 1].text.lower()
        return i + 1
    return i


_BOUNDS = {"greater_than_equal": ("ge", "at least"), "greater_than": ("gt", "greater than"),
           "less_than_equal": ("le", "at most"), "less_than": ("lt", "less than")}


def _problem(field: str, problem: dict, tok: Token) -> tuple[str, str | None]:
    """A pydantic complaint in the words of the spec: (message, hint)."""
    kind, ctx = problem.get("type", ""), problem.get("ctx") or {}
    if kind in _BOUNDS:
        bound, words = _BOUNDS[kind]
        limit = ctx.get(bound)
        limit = int(limit) if isinstance(limit, float) and limit.is_integer() else limit
        return f"train '{field}' must be {words} {limit}, not '{tok.text}'", _example_hint(field)
    choices = _choices(field)
    if kind == "literal_error" and choices:
        guess = did_you_mean(tok.text, choices)
        listed = "one of: " + ", ".join(choices)
        return f"unknown {field} '{tok.text}'", f"{guess} ({listed})" if guess else f"choose {listed}"
    message = problem.get("msg", "invalid value")
    return f"train '{field}': {message[0].lower() + message[1:]}", _example_hint(field)


def _example_hint(field: str) -> str:
    example = NUMERIC.get(field) or CHOICE.get(field)
    return f"write e.g. `{example}`" if example else "see the train section's settings in docs/language.md"


def _choices(field: str, model: type = TrainConfig) -> tuple[str, ...]:
    """The names a Literal field of the IR model allows; () for other fields."""
    info = model.model_fields.get(field)
    args = getattr(info.annotation, "__args__", None) if info else None
    return args if args and all(isinstance(a, str) for a in args) else ()
