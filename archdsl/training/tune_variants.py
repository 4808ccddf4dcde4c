"""The variants a tune may train, looked up by the values an Optuna trial suggested, and the repair of a
proposal that cannot be trained.

Each choice is one categorical Optuna parameter, its values written as in the spec (`3x3`, `0.1`), so the
sampler learns per choice. A proposal is a value for every choice, one combination; it is trained only
if the combination is feasible (resolves and holds every assert) and no other trial trains it. Otherwise
the trial is not trained, and the feasible variant nearest to it (fewest choices changed) that no trial
has taken is queued in its place: every untrainable proposal is followed by a trainable one, so a space
whose feasible fraction is small still finishes, and once every feasible variant is taken the tune stops.
No Optuna here: `taken` is a set of variant indices the caller reads from the study.
"""
from __future__ import annotations

from ..analysis.space import SpaceAnalysis, Variant


class VariantIndex:
    def __init__(self, space: SpaceAnalysis):
        self.space = space
        self.choices = space.choices
        self._by_values = {self.key(v.values()): v for v in space.variants}
        self.feasible = space.feasible

    @staticmethod
    def key(values: dict[str, str]) -> tuple:
        return tuple(sorted(values.items()))

    def search_space(self) -> dict[str, list[str]]:
        """Each choice's values as Optuna's categorical parameter takes them."""
        return {c.name: c.texts for c in self.choices}

    def variant(self, values: dict[str, str]) -> Variant:
        return self._by_values[self.key(values)]

    def nearest_untaken(self, variant: Variant, taken: set[int]) -> Variant | None:
        """The feasible variant, not in `taken`, that differs from `variant` in the fewest choices (the first
        in enumeration order among equals); None when every feasible variant is taken."""
        mine = variant.values()
        free = [v for v in self.feasible if v.index not in taken]
        if not free:
            return None
        return min(free, key=lambda v: (sum(mine[k] != x for k, x in v.values().items()), v.index))


def why_not_trained(variant: Variant) -> str:
    """`assert params <= 5k` (the asserts it fails), or the first error of a variant that does not resolve."""
    if variant.error is not None:
        first = getattr(variant.error, "errors", [variant.error])[0]
        return f"{first.code} {first.message}"
    return "; ".join(a.text for a in variant.failed)
