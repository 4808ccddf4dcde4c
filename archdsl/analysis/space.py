"""A design space analysed: every combination of its choices resolved and analysed, without TensorFlow.

Each variant is resolved as the spec it stands for (`language/choices.py`), analysed, and its asserts
checked: feasible when it resolves and every assert holds. A variant that does not resolve (a 5x5
kernel on a map of 4, say) is counted, not fatal; a choice value with which *no* variant resolves is
the spec's mistake, and raised with its position and the value named.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..errors import ArchError, ConstraintError, Span
from ..ir import Assertion
from ..language.choices import (Choice, check_choices, choice_uses, combinations, concrete_text, describe,
                                instantiate, note_values)
from ..language.resolve import resolve
from ..language.spec import Spec, Token, TrainSection
from ..language.train_config import resolve_train
from . import analyze, check_assertions

METRIC_COLUMNS = ("params", "macs", "rf", "ram", "flash")


@dataclass
class Variant:
    index: int                          # 1-based, in enumeration order (the last choice varies fastest)
    picks: dict[str, Token]
    metrics: dict | None = None         # params, macs, rf (h, w), ram, flash; None when it does not resolve
    failed: list[Assertion] = field(default_factory=list)   # the asserts that do not hold
    error: ArchError | None = None      # why it does not resolve

    @property
    def feasible(self) -> bool:
        return self.error is None and not self.failed

    @property
    def name(self) -> str:
        return describe(self.picks)

    def values(self) -> dict[str, str]:
        return {name: value.canonical() for name, value in self.picks.items()}


@dataclass
class SpaceAnalysis:
    spec: Spec
    choices: list[Choice]
    variants: list[Variant]

    @property
    def feasible(self) -> list[Variant]:
        return [v for v in self.variants if v.feasible]

    @property
    def invalid(self) -> list[Variant]:
        return [v for v in self.variants if v.error is not None]

    def model(self, variant: Variant):
        """The variant's model (`archdsl.Model`), resolved as the spec `text(variant)` is."""
        return resolve(instantiate(self.spec, variant.picks)[0])

    def text(self, variant: Variant) -> str:
        """The variant as a spec: the values written in, each `choose` line a comment saying what was chosen."""
        return concrete_text(self.spec, variant.picks)

    def ruled_out(self) -> Counter:
        """How many variants each assert rules out (a variant failing two counts for both)."""
        return Counter(a.text for v in self.variants for a in v.failed)

    def no_feasible_error(self) -> ConstraintError:
        """What `space` and `check` say when no variant holds every assert: the assert ruling out the most."""
        counts = Counter(a for v in self.variants for a in v.failed)
        worst, n = counts.most_common(1)[0]
        others = [f"`{a.text}` {k:,}" for a, k in counts.most_common()[1:]]
        span = Span(worst.where.file, worst.where.line, worst.where.column, worst.where.column + len("assert"))
        return ConstraintError(f"no variant holds every assert: `{worst.text}` rules out {n:,} of "
                               f"{len(self.variants):,}" + (f" (and {', '.join(others)})" if others else ""),
                               span, "loosen the limit, or add choices whose variants hold it", "E302",
                               self.spec.text)


def explore(spec: Spec) -> SpaceAnalysis:
    """Every variant of `spec`, analysed. Raises the spec's errors: those of its choices (E28x), and for a
    value that no variant can take, the error of its first variant, the value named."""
    choices = check_choices(spec)
    uses = choice_uses(spec)
    # choices used only in the train section (a learning rate) give variants of one model: it is analysed
    # once, and each variant's train section checked on its own
    section_lines = {line for s in spec.statements if isinstance(s, TrainSection)
                     for line in range(s.span.line, s.end_line + 1)}
    model_choices = [c.name for c in choices
                     if any(tok.text == c.name and tok.span.line not in section_lines for tok in uses)]
    models: dict[tuple, tuple[dict, list]] = {}
    variants = []
    for index, picks in enumerate(combinations(choices), start=1):
        key = tuple(picks[name].text for name in model_choices)
        variants.append(_variant(spec, index, picks, uses, models, key))
    _raise_impossible_values(choices, variants)
    return SpaceAnalysis(spec, choices, variants)


def _variant(spec: Spec, index: int, picks: dict[str, Token], uses: list[Token], models: dict, key: tuple
             ) -> Variant:
    member, uses = instantiate(spec, picks, uses)
    if key in models:  # the model is one analysed before: only this variant's train section is new
        errors: list[ArchError] = []
        section = next((s for s in member.statements if isinstance(s, TrainSection)), None)
        resolve_train(section, errors)
        if not errors:
            metrics, failed = models[key]
            return Variant(index, picks, metrics, failed)
    try:
        analysis = analyze(resolve(member))
    except ArchError as exc:
        return Variant(index, picks, error=note_values(exc, uses))
    memory = analysis.memory
    final = analysis.final
    metrics = {"params": analysis.params, "macs": analysis.macs, "rf": final.rf,
               "ram": memory.peak_elements, "flash": memory.flash_int8}
    failed = [r.assertion for r in check_assertions(analysis) if not r.ok]
    models[key] = (metrics, failed)
    return Variant(index, picks, metrics, failed)


def _raise_impossible_values(choices: list[Choice], variants: list[Variant]) -> None:
    resolving = {(name, id(value)) for v in variants if v.error is None for name, value in v.picks.items()}
    first: dict[tuple[str, int], Variant] = {}  # (choice, value) -> its first variant, in one pass
    for v in variants:
        for name, value in v.picks.items():
            first.setdefault((name, id(value)), v)
    for choice in choices:
        for value in choice.values:
            key = (choice.name, id(value))
            if key in first and key not in resolving:
                mine = first[key]
                error = mine.error
                drop = (f"or drop {value.text} from `choose {choice.name}` (line {choice.stmt.span.line}): "
                        f"no variant with it resolves")
                for e in getattr(error, "errors", [error]):
                    if f"`{choice.name}` is" not in e.message:
                        e.message += f" (with {mine.name})"
                    e.hint = f"{e.hint}; {drop}" if e.hint else drop
                raise error


def sort_key(column: str):
    """The key that orders variants by a metric column or a choice (unresolved variants last)."""
    def key(v: Variant):
        if column in METRIC_COLUMNS:
            value = v.metrics[column] if v.metrics else None
            return (value is None, min(value) if column == "rf" and value else value or 0)
        token = v.picks[column]
        return (False, token.number if token.kind == "number" else token.dims if token.kind == "size" else token.text)
    return key
