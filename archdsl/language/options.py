"""How a layer's written arguments are read, for every op alike.

Each op's `signature` (ops/base.py) says which arguments it takes; `read_options`
turns a layer's written tokens (`3x3 64 s2 same drop .05 bn relu`) into `Options`,
reporting every token it cannot place with its position and a did-you-mean. The values
(a count, a rate, a size, a padding) are read and range-checked by option_values.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import get_close_matches

from ..errors import Span, SpecSemanticError, did_you_mean, one_of
from ..ir import ACTIVATIONS, PostOp
from .option_values import (as_number, explicit_padding, pair, pair_from_match, pair_or_int, positive_int, square,
                            unit_rate)
from .spec import Token
from ..ops.base import OPS, OPTIONAL, REQUIRED, OpSignature



def _registry():
    return OPS  # filled by the ops' modules, which import this one


def spellings() -> dict[str, str]:
    """Every name a layer line may start with -> its op (`drop` -> dropout, `relu` -> act)."""
    return {word: op.name for op in _registry().values() for word in op.spellings}


def assert_name(word: str) -> str | None:
    """The name `assert ops in [...]` knows a written op by (`relu`, `dropout` for `drop`), or None.
    Merges are ops too: `residual`/`parallel` lines add `add`/`concat` layers."""
    lower = word.lower()
    if lower in spellings():
        return OPS[spellings()[lower]].assert_spelling(lower)
    return lower if lower in OPS and not OPS[lower].spellings else None


def written_ops() -> list[str]:
    return sorted(spellings())


WRITTEN_OPS = written_ops()  # importing ops.base has registered every op


INTERPOLATIONS = ("nearest", "bilinear")
OPTION_WORDS = [*INTERPOLATIONS, "same", "valid", "pad", "stride", "dilation", "dm", "groups", "bias", "nobias", "whiten", "drop",
                "bn", "noscale", "nocenter", "none", *ACTIVATIONS]
_PADDING_LIKE = {"full", "causal", "zero", "zeros", "reflect", "symmetric"}
_TAKES_VALUE = {"drop", "stride", "dilation", "dm", "groups", "pad", "padding"}
_STRIDE = re.compile(r"^s(\d+)(?:x(\d+))?$")
_DILATION = re.compile(r"^d(\d+)(?:x(\d+))?$")


@dataclass
class Options:
    kernel: tuple[int, int] | None = None
    filters: int | None = None
    rate: float | None = None
    stride: tuple[int, int] | None = None
    dilation: tuple[int, int] | None = None
    padding: str | None = None
    pad: tuple[int, int, int, int] | None = None   # explicit: top, bottom, left, right
    depth_multiplier: int | None = None
    groups: int | None = None
    factor: tuple[int, int] | None = None          # upsample: per axis
    interpolation: str | None = None
    use_bias: bool | None = None
    whiten: Token | None = None    # where `whiten` was written, for the errors resolve may raise about it
    scale: bool = True             # a `bn` layer's own `noscale` / `nocenter`
    center: bool = True
    post: list[PostOp] = field(default_factory=list)


def option_word(word: str) -> bool:
    """Whether a lower-case word is an option of some op: `same`, `dm`, `s2`, `d2x1`, ..."""
    return word in OPTION_WORDS or word in _TAKES_VALUE or bool(_STRIDE.match(word) or _DILATION.match(word))


def language_word(name: str) -> str | None:
    """What a name is to the layers of the language, its case ignored ("an op", "an option"), or None."""
    if canonical_op(name):
        return "an op"
    return "an option" if option_word(name.lower()) else None


def canonical_op(written: str) -> str | None:
    return spellings().get(written.lower())


def read_options(op: str, written_op: str, tokens: list[Token], errors: list) -> Options:
    """Place each token of a layer; append a positioned error for each one that does not fit."""
    sig = _registry()[op].signature
    opts = Options()
    i = 0
    given: set[str] = set()  # slots written, even with a bad value: no "needs a kernel" on top of its error
    first: dict[str, str] = {}  # option -> as first written: a second one is a contradiction, not a last-wins
    # the bn a `noscale`/`nocenter` here would modify: "layer" (a `bn` line's own), an index into opts.post, or
    # None (the token before was no bn nor a flag of one); bn_flags: the flags each bn was given
    bn_target: str | int | None = "layer" if sig.scale_center else None
    bn_flags: dict[str | int, set[str]] = {"layer": set()}

    def fail(tok: Token, message: str, hint: str | None = None, code: str = "E210"):
        errors.append(SpecSemanticError(message, tok.span, hint, code))

    def once(slot: str, tok: Token, value: Token | None = None) -> bool:
        """Whether this is the first padding (stride, ...) of the layer; else an error."""
        text = tok.text + (f" {value.text}" if value is not None else "")
        if slot in first:
            span = tok.span if value is None or value.span.line != tok.span.line else \
                Span(tok.span.file, tok.span.line, tok.span.column, value.span.end_column)
            if text.lower() == first[slot].lower():
                message, hint = f"'{text}' is written twice for {written_op}", "remove one"
            else:
                message = f"a second {_SLOT_NAMES[slot]} for {written_op}: '{text}'"
                hint = f"the {_SLOT_NAMES[slot]} is already given as '{first[slot]}'; keep one of them"
            errors.append(SpecSemanticError(message, span, hint, "E210"))
            return False
        first[slot] = text
        return True

    def take_value(tok: Token, what: str) -> Token | None:
        nonlocal i
        if i + 1 >= len(tokens) or tokens[i + 1].kind == "name":
            fail(tok, f"'{tok.text}' needs a value", f"write e.g. `{what}`", "E211")
            return None
        i += 1
        return tokens[i]

    def bn_flag(tok: Token, word: str):
        """`noscale` / `nocenter`: the bn written just before loses its gamma / beta."""
        nonlocal i
        if bn_target is None:  # misplaced, with the flags that follow it: one error, one fix
            last = i
            while last + 1 < len(tokens) and tokens[last + 1].text.lower() in _BN_FLAGS:
                last += 1
            end = tokens[last].span
            span = Span(tok.span.file, tok.span.line, tok.span.column, end.end_column) \
                if end.line == tok.span.line else tok.span
            text = " ".join(t.text for t in tokens[i:last + 1])
            errors.append(SpecSemanticError(f"'{text}' must come right after a `bn`", span,
                                            _bn_flag_hint(written_op, tokens, i, last, sig), "E210"))
            i = last
        elif word in bn_flags[bn_target]:
            whose = written_op if bn_target == "layer" else f"{written_op}'s bn"
            fail(tok, f"'{tok.text}' is written twice for {whose}", "remove one")
        else:
            bn_flags[bn_target].add(word)
            field = _BN_FLAGS[word]
            if bn_target == "layer":
                setattr(opts, field, False)
            else:
                opts.post[bn_target] = opts.post[bn_target].model_copy(update={field: False})

    while i < len(tokens):
        tok = tokens[i]
        word = tok.text.lower()
        if word not in _BN_FLAGS:
            bn_target = None  # a flag modifies the bn just before it, or the flags that follow that bn
        if tok.kind in ("size", "factor", "number") and sig.factor and "factor" not in given:
            given.add("factor")  # `upsample 2x`, `upsample 2`, `upsample 2x1`
            opts.factor = pair(tok, errors, "factor") if tok.kind == "size" else \
                square(positive_int(tok if tok.kind == "number" else as_number(tok), errors, "factor"))
        elif tok.kind == "factor":
            fail(tok, f"unexpected factor '{tok.text}' for {written_op}",
                 f"{written_op} takes no factor" if not sig.factor else "the factor is already given")
        elif tok.kind == "size":
            if sig.kernel and "kernel" not in given:
                given.add("kernel")
                opts.kernel = pair(tok, errors, "kernel")
            else:
                fail(tok, f"unexpected size '{tok.text}' for {written_op}",
                     "the kernel is already given" if sig.kernel else f"{written_op} takes no kernel")
        elif tok.kind == "number":
            if sig.filters and "filters" not in given:
                given.add("filters")
                opts.filters = positive_int(tok, errors, _registry()[op].count_word)
            elif sig.rate and "rate" not in given:
                given.add("rate")
                opts.rate = unit_rate(tok, errors, f"{written_op.lower()} .1")
            elif sig.kernel == OPTIONAL and "kernel" not in given:
                given.add("kernel")
                n = positive_int(tok, errors, "pool size")
                opts.kernel = (n, n) if n else None
            else:
                fail(tok, f"unexpected number '{tok.text}' for {written_op}", _number_hint(written_op, sig))
        elif tok.kind == "numbers":
            fail(tok, f"unexpected numbers '{tok.text}' for {written_op}",
                 f"numbers joined by commas are a padding: write `pad {tok.text}`" if sig.window
                 else f"{written_op} takes no padding")
        elif word in INTERPOLATIONS and sig.factor:
            if once("interpolation", tok):
                opts.interpolation = word
        elif word in ("same", "valid") and sig.window:
            if once("padding", tok):
                opts.padding = word
        elif word == "pad" and sig.window:
            value = take_value(tok, "pad 1")
            if once("padding", tok, value):
                opts.pad = explicit_padding(value, errors) if value else None
                opts.padding = "explicit" if opts.pad else None
        elif (m := _STRIDE.match(word)) and sig.window:
            if once("stride", tok):
                opts.stride = pair_from_match(m, tok, errors, "stride")
        elif word == "stride" and sig.window:
            value = take_value(tok, "stride 2")
            if once("stride", tok, value):
                opts.stride = pair_or_int(value, errors, "stride") if value else None
        elif (m := _DILATION.match(word)) and sig.dilation:
            if once("dilation", tok):
                opts.dilation = pair_from_match(m, tok, errors, "dilation")
        elif word == "dilation" and sig.dilation:
            value = take_value(tok, "dilation 2")
            if once("dilation", tok, value):
                opts.dilation = pair_or_int(value, errors, "dilation") if value else None
        elif word == "groups" and sig.groups:
            value = take_value(tok, "groups 2")
            if once("groups", tok, value):
                opts.groups = positive_int(value, errors, "groups") if value else None
        elif word == "dm" and sig.depth_multiplier:
            value = take_value(tok, "dm 2")
            if once("dm", tok, value):
                opts.depth_multiplier = positive_int(value, errors, "depth multiplier") if value else None
        elif word in ("bias", "nobias") and sig.bias is not None:
            if once("bias", tok):
                opts.use_bias = word == "bias"
        elif word == "whiten" and sig.whiten:
            if once("whiten", tok):
                opts.whiten = tok
        elif word == "drop" and sig.post:
            value = take_value(tok, "drop .05")
            rate = unit_rate(value, errors) if value else None
            if rate is not None:
                opts.post.append(PostOp(kind="drop", rate=rate))
        elif word == "bn" and sig.post:
            opts.post.append(PostOp(kind="bn"))
            bn_target = len(opts.post) - 1
            bn_flags[bn_target] = set()
        elif word in _BN_FLAGS and (sig.post or sig.scale_center):
            bn_flag(tok, word)
        elif word in ACTIVATIONS and sig.post:
            if word != "linear":
                opts.post.append(PostOp(kind="act", activation=word))
        elif word == "none" and sig.post:
            pass  # explicit "no activation"
        else:
            allowed = _allowed_words(sig)
            guess = _close(word, allowed)
            if word in OPTION_WORDS or _STRIDE.match(word) or _DILATION.match(word):
                fail(tok, f"{written_op} takes no '{tok.text}'", "it takes " + (", ".join(allowed) or "no options"))
            elif sig.window and word == "padding":
                fail(tok, f"{written_op} takes no '{tok.text}' keyword",
                     f"write the padding alone, `same` or `valid`, or `pad N`: e.g. `{_example(op)}`")
                guess = "padding"
            elif sig.window and (word in _PADDING_LIKE or guess in ("same", "valid")):
                fail(tok, f"unknown padding '{tok.text}' for {written_op}",
                     (f"did you mean '{guess}'? " if guess in ("same", "valid") else "")
                     + "padding is one of: same, valid")
                guess = None
            else:
                fail(tok, f"unknown option '{tok.text}' for {written_op}",
                     f"did you mean '{guess}'?" if guess else ("options: " + ", ".join(allowed) if allowed else None))
            # a misspelled `drop .05` or `stride 2`: its value belongs to it, not a second error
            if guess in _TAKES_VALUE and i + 1 < len(tokens) and tokens[i + 1].kind != "name":
                i += 1
            elif guess == "padding" and i + 1 < len(tokens) and tokens[i + 1].kind == "name" \
                    and tokens[i + 1].text.lower() in ("same", "valid"):
                i += 1
        i += 1

    if sig.kernel == REQUIRED and "kernel" not in given:
        errors.append(SpecSemanticError(f"{written_op} needs a kernel size", None,
                                        f"write e.g. `{written_op} 3x3 ...`", "E212"))
    if sig.filters == REQUIRED and "filters" not in given:
        what = f"a number of {_registry()[op].count_word}"
        errors.append(SpecSemanticError(f"{written_op} needs {what}", None,
                                        f"write e.g. `{_example(op)}`", "E212"))
    if sig.rate and "rate" not in given:
        errors.append(SpecSemanticError(f"{written_op} needs a rate", None, "write e.g. `dropout .1`", "E212"))
    return opts


_BN_FLAGS = {"noscale": "scale", "nocenter": "center"}   # word -> the field of the bn it turns off


def _bn_flag_hint(written_op: str, tokens: list[Token], first: int, last: int, sig: OpSignature) -> str:
    """How to write the misplaced flags tokens[first:last + 1] so that the line is accepted: right after the
    nearest `bn` (less those it has already), or after a `bn` added for them."""
    flags = list(dict.fromkeys(t.text.lower() for t in tokens[first:last + 1]))   # each once, in written order
    words = [written_op] + [t.text for t in tokens]   # words[k + 1] is tokens[k]; -1 is the op itself
    bns = ([-1] if sig.scale_center else []) + [k for k, t in enumerate(tokens) if t.text.lower() == "bn" and sig.post]
    before, after = [k for k in bns if k < first], [k for k in bns if k > last]
    if not before and not after:
        line = " ".join(words[:first + 1] + ["bn", *flags] + words[last + 2:])
        return f"{'it turns' if len(flags) == 1 else 'they turn'} off the gamma or beta of a batch norm: " \
               f"write `bn {' '.join(flags)}`, e.g. `{line}`"
    bn = before[-1] if before else after[0]
    end = bn + 1
    while end < len(tokens) and tokens[end].text.lower() in _BN_FLAGS:
        end += 1
    has = {t.text.lower() for t in tokens[bn + 1:end]}   # (the misplaced ones are not among them)
    moved = [f for f in flags if f not in has]
    without = words[:first + 1] + words[last + 2:]
    if not moved:
        return f"that `bn` has {'it' if last == first else 'them'} already; remove " \
               f"{'this one' if last == first else 'these'}: `{' '.join(without)}`"
    at = bn + 2 if bn < first else bn + 1 - (last - first)   # in `without`, right after the bn
    what = "it right after the `bn` it modifies" if last == first else "them right after the `bn` they modify"
    return f"write {what}: `{' '.join(without[:at] + moved + without[at:])}`"


def _close(word: str, choices: list[str]) -> str | None:
    matches = get_close_matches(word, choices, n=1, cutoff=0.6)
    return matches[0] if matches else None


def _example(op: str) -> str:
    return _registry()[op].example


_SLOT_NAMES = {"interpolation": "interpolation", "padding": "padding", "stride": "stride", "dilation": "dilation", "dm": "depth multiplier",
               "groups": "groups count", "bias": "bias option", "whiten": "whitening"}


def _number_hint(written_op: str, sig: OpSignature) -> str:
    if sig.filters:
        return "the filters are already given; options like stride are written `s2` or `stride 2`"
    if sig.depth_multiplier:  # dw
        return f"{written_op} takes no number of filters: it keeps its input's channels, times `dm N`"
    if sig.window:
        return "write the window as 3x3 and the stride as s2"
    if sig.rate:
        return "the rate is already given"
    return f"{written_op} takes no number"


def _allowed_words(sig: OpSignature) -> list[str]:
    words = []
    if sig.factor:
        words += [*INTERPOLATIONS]
    if sig.window:
        words += ["same", "valid", "pad", "s2", "stride"]
    if sig.dilation:
        words += ["dilation", "d2"]
    if sig.depth_multiplier:
        words += ["dm"]
    if sig.groups:
        words += ["groups"]
    if sig.bias is not None:
        words += ["bias", "nobias"]
    if sig.whiten:
        words += ["whiten"]
    if sig.post or sig.scale_center:
        words += ["drop", "bn", "noscale", "nocenter", "none", *ACTIVATIONS] if sig.post else ["noscale", "nocenter"]
    return words


def unknown_op_hint(word: str, extra: list[str]) -> str:
    ops = written_ops()
    return did_you_mean(word, ops + extra) or "ops: " + one_of(ops)[len("one of: "):]
