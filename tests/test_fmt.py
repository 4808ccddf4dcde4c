"""`archdsl fmt`: property tests on random valid specs, and a few exact examples.

The generator writes specs the resolver accepts (it tracks the feature-map size, so `valid` windows
and strides never shrink it below 1) in a messy hand: extra spaces and tabs, blank lines, comments,
upper-case op and option names, numbers written `.05`, `0.050` or `5e-2`. Properties:

- fmt is idempotent: fmt(fmt(x)) == fmt(x);
- fmt changes nothing a spec means: resolving fmt(x) gives the IR of x, except source positions;
- fmt keeps every comment.

`max_examples=200` is the CI profile; ARCHDSL_FMT_EXAMPLES=5000 runs a longer search by hand.
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings, strategies as st

from archdsl.errors import ArchError
from archdsl.language.formatter import format_spec
from archdsl.ops.geometry import output_size
from archdsl.language.parser import parse
from archdsl.language.resolve import resolve
from archdsl.language.spec import canonical_number

EXAMPLES = int(os.environ.get("ARCHDSL_FMT_EXAMPLES", "200"))

ACTIVATIONS = ["relu", "relu6", "swish", "gelu", "sigmoid", "tanh", "elu", "linear"]
COMMENT_CHARS = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp"))


# ---------------------------------------------------------------- tokens written in many ways

@st.composite
def word(draw, text: str) -> str:
    """An op or option word, sometimes upper-case or capitalised (the language ignores their case)."""
    return draw(st.sampled_from([text, text, text, text.upper(), text.capitalize()]))


@st.composite
def integer(draw, n: int) -> str:
    return draw(st.sampled_from([str(n), str(n), f"{n}.0", f"{n}e0", f"0{n}", f"+{n}"]))


RATE_SPELLINGS = {0.0: ["0", "0.0", ".0", "0e0"], 0.05: [".05", "0.05", "0.050", "5e-2", "5E-2", "0.5e-1"],
                  0.1: [".1", "0.1", "1e-1", "0.10"], 0.25: [".25", "0.25", "2.5e-1"], 0.5: [".5", "0.50", "5e-1"]}
rates = st.sampled_from(sorted(RATE_SPELLINGS)).flatmap(lambda r: st.sampled_from(RATE_SPELLINGS[r]))


@st.composite
def big_number(draw) -> str:
    """An assert limit: 80k, 80K, 80000, 8e4, 0.08M ..."""
    k = draw(st.integers(1, 500))
    return draw(st.sampled_from([f"{k}k", f"{k}K", str(k * 1000), f"{k}e3", f"{k}000.0", f"{k / 1000}M"]))


# ---------------------------------------------------------------- one layer, keeping the map >= 1x1

def _post(draw) -> list[str]:
    """`drop P`, `bn`, activations after a layer, in any order."""
    out = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["drop", "bn", "act", "none"]))
        if kind == "drop":
            out += [draw(word("drop")), draw(rates)]
        elif kind == "bn":
            out.append(draw(word("bn")))
        elif kind == "act":
            out.append(draw(word(draw(st.sampled_from(ACTIVATIONS)))))
        else:
            out.append("none")
    return out


def _fits(size, kernel, stride, dilation, padding) -> tuple[int, int] | None:
    out = tuple(output_size(size[a], kernel[a], stride[a], dilation[a], padding) for a in (0, 1))
    return out if min(out) >= 1 else None


def _pair(draw, prefix: str, value: tuple[int, int]) -> list[str]:
    a, b = value
    text = f"{a}" if a == b and draw(st.booleans()) else f"{a}x{b}"
    if draw(st.booleans()):
        return [f"{prefix[0]}{text}"]        # s2, d2x1
    return [draw(word(prefix)), text]        # stride 2, dilation 2x1


@st.composite
def conv_layer(draw, size, filters: str | None = None):
    """conv / sep / dw with kernel, filters, stride or dilation, padding, dm, bias and post ops.
    Returns (tokens, new size)."""
    op = draw(st.sampled_from(["conv", "sep", "dw"]))
    kernel = (draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 3, 5])))
    stride, dilation = (1, 1), (1, 1)
    geometry = draw(st.sampled_from(["plain", "plain", "stride", "dilation"]))
    if geometry == "stride":
        stride = draw(st.sampled_from([(2, 2), (2, 2), (2, 1), (1, 2)]))
    elif geometry == "dilation":
        dilation = draw(st.sampled_from([(2, 2), (2, 1)]))
    padding = draw(st.sampled_from(["same", "valid", None]))
    out = _fits(size, kernel, stride, dilation, padding or "valid")
    if out is None:
        padding = "same"
        out = _fits(size, kernel, stride, dilation, "same")
    tokens = [draw(word(op)), f"{kernel[0]}x{kernel[1]}"]
    if op != "dw":
        tokens.append(filters or draw(st.integers(1, 48).flatmap(integer)))
    extra = []
    if stride != (1, 1):
        extra.append(_pair(draw, "stride", stride))
    if dilation != (1, 1):
        extra.append(_pair(draw, "dilation", dilation))
    if padding:
        extra.append([draw(word(padding))])
    if op != "conv" and draw(st.booleans()):
        extra.append([draw(word("dm")), draw(st.integers(1, 2).flatmap(integer))])
    if draw(st.booleans()):
        extra.append([draw(word(draw(st.sampled_from(["bias", "nobias"]))))])
    extra = draw(st.permutations(extra))
    return tokens + [t for group in extra for t in group] + _post(draw), out


@st.composite
def pool_layer(draw, size):
    op = draw(st.sampled_from(["maxpool", "avgpool"]))
    form = draw(st.sampled_from(["default", "size", "number"]))
    k = draw(st.sampled_from([2, 3])) if form != "default" else 2
    kernel = (k, k)
    tokens = [draw(word(op))] + ({"size": [f"{k}x{k}"], "number": [str(k)]}.get(form, []))
    stride = kernel
    if draw(st.booleans()):
        stride = draw(st.sampled_from([(1, 1), (2, 2)]))
        tokens += _pair(draw, "stride", stride)
    padding = draw(st.sampled_from(["same", "valid", None]))
    out = _fits(size, kernel, stride, (1, 1), padding or "valid")
    if out is None:
        padding = "same"
        out = _fits(size, kernel, stride, (1, 1), "same")
    if padding:
        tokens.append(draw(word(padding)))
    return tokens, out


@st.composite
def shape_keeping_layer(draw):
    kind = draw(st.sampled_from(["bn", "act", "dropout"]))
    if kind == "bn":
        return [draw(word("bn"))] + _post(draw)
    if kind == "act":
        return [draw(word(draw(st.sampled_from(ACTIVATIONS))))] + _post(draw)
    return [draw(word(draw(st.sampled_from(["dropout", "drop"])))), draw(rates)]


# ---------------------------------------------------------------- residual and parallel blocks

def _same_conv(draw, filters: str | None = None) -> list[str]:
    """A stride-1 `same` convolution: it keeps the map size."""
    return [draw(word(draw(st.sampled_from(["conv", "sep"])))), draw(st.sampled_from(["3x3", "1x1", "3x1"])),
            filters or draw(st.integers(1, 24).flatmap(integer)), draw(word("same"))] + _post(draw)


def _head(draw, count: int, *words: str) -> list[str]:
    """`2 * residual add {`, sometimes written `2*residual`, `add{`."""
    tokens = list(words) + ["{"]
    if draw(st.booleans()):
        tokens[-2:] = [tokens[-2] + "{"]
    if count > 1 or draw(st.integers(0, 5)) == 0:
        if draw(st.booleans()):
            tokens = [str(count), "*"] + tokens
        else:
            tokens = [f"{count}*{tokens[0]}"] + tokens[1:]
    return tokens


def graph_statement(draw, w: "Writer", size: tuple[int, int], indent: str = "", depth: int = 0,
                    keep_channels: bool = False) -> tuple[int, int]:
    """A residual or parallel statement, nested up to two deep; returns the map size after it.
    Nested ones (depth > 0) keep the map size, so parallel branches agree; with keep_channels, only
    kinds whose output has the input's shape (inside an identity residual)."""
    kinds = ["identity"] if keep_channels else ["projection", "identity", "concat", "parallel_concat",
                                                "parallel_add"]
    kind = draw(st.sampled_from(kinds))
    count = draw(st.sampled_from([1, 1, 1, 2]))

    def body(at: str, keep: bool, lines: tuple[int, int] = (1, 2)) -> None:
        """Layers that keep the map size (and, with keep, the channels)."""
        for _ in range(draw(st.integers(*lines))):
            if depth < 2 and draw(st.integers(0, 3)) == 0:
                graph_statement(draw, w, size, at, depth + 1, keep_channels=keep)
            elif keep:
                w.line([draw(word("dw")), "3x3", draw(word("same"))] + _post(draw), at)
            else:
                w.line(_same_conv(draw), at)

    inner = indent + "  "
    if kind == "projection":
        filters = draw(st.integers(1, 24).flatmap(integer))
        stride = draw(st.sampled_from([[], [], ["s2"], ["stride", "2"]])) if depth == 0 else []
        merge = [draw(word("add"))] if draw(st.booleans()) else []
        w.line(_head(draw, count, "residual", *merge), indent)
        w.line([draw(word("conv")), "3x3", filters, *stride, draw(word("same"))] + _post(draw), inner)
        if draw(st.booleans()):
            w.line(_same_conv(draw, filters), inner)
        w.line(draw(st.sampled_from([["}", "shortcut", "{"], ["}shortcut", "{"], ["}", "shortcut{"]])), indent)
        w.line([draw(word("conv")), "1x1", filters, *stride, draw(word("same"))], inner)
        w.line(["}"], indent)
        for _ in range(count if stride else 0):
            size = (-(-size[0] // 2), -(-size[1] // 2))
        return size
    if kind in ("identity", "concat"):
        w.line(_head(draw, count, "residual", *([draw(word("concat"))] if kind == "concat" else [])), indent)
        body(inner, keep=kind == "identity")
        w.line(["}"], indent)
        return size
    merge = "concat" if kind == "parallel_concat" else "add"
    w.line(_head(draw, count, "parallel", draw(word(merge))), indent)
    filters = draw(st.integers(1, 24).flatmap(integer))
    for _ in range(draw(st.integers(2, 3))):
        w.line(draw(st.sampled_from([["branch", "{"], ["branch{"]])), inner)
        if merge == "add":  # every branch ends with the same number of channels
            for _ in range(draw(st.integers(1, 2))):
                w.line(_same_conv(draw, filters), inner + "  ")
        else:
            body(inner + "  ", keep=False, lines=(0, 2))  # an empty branch is the identity
        w.line(["}"], inner)
    w.line(["}"], indent)
    return size


# ---------------------------------------------------------------- a whole spec

class Writer:
    """Statements -> messy text: spacing, blank lines and comments at random."""

    def __init__(self, draw):
        self.draw = draw
        self.lines: list[str] = []
        self.comments: list[str] = []

    def comment(self) -> str:
        text = "#" + self.draw(st.text(COMMENT_CHARS, max_size=20)).rstrip()
        self.comments.append(text)
        return text

    def gap(self, indent: str = "") -> None:
        for _ in range(self.draw(st.integers(0, 2))):
            if self.draw(st.booleans()):
                self.lines.append(self.draw(st.sampled_from(["", " ", "\t"])))
            else:
                self.lines.append(indent + self.comment())

    def line(self, tokens: list[str], indent: str = "") -> None:
        draw = self.draw
        text = draw(st.sampled_from(["", " ", "\t"])) + indent
        for i, tok in enumerate(tokens):
            text += (draw(st.sampled_from([" ", " ", "  ", "\t", " \t "])) if i else "") + tok
        text += draw(st.sampled_from(["", "", " ", "\t"]))
        if draw(st.integers(0, 4)) == 0:
            text += draw(st.sampled_from([" ", "  ", "\t", ""])) + self.comment()
        self.lines.append(text)
        self.gap(indent)

    def text(self) -> str:
        newline = self.draw(st.sampled_from(["\n", "\n", "\r\n"]))
        end = self.draw(st.sampled_from([newline, newline, ""]))
        return newline.join(self.lines) + end


@st.composite
def blocks(draw, writer: Writer) -> list[dict]:
    """0-2 named blocks whose bodies keep the map size (stride 1, same padding)."""
    defined = []
    for name in draw(st.lists(st.sampled_from(["stage", "unit", "Cell", "b2"]), max_size=2, unique=True)):
        params = draw(st.sampled_from([[], ["c"], ["c", "r"], ["width", "k"]]))
        defaults = {p: draw(st.one_of(st.none(), st.just(
            {"c": "16", "r": ".05", "width": "8", "k": "3x3"}[p]))) for p in params}
        # a parameter with a default is not followed by one without (by habit, not by rule)
        head = f"block {name}"
        if params:
            head += "(" + ", ".join(p + (f"={defaults[p]}" if defaults[p] else "") for p in params) + ")"
        writer.line(head.split(" ") + ["{"])
        filters = "c" if "c" in params else "width" if "width" in params else None
        for _ in range(draw(st.integers(1, 3))):
            kernel = "k" if "k" in params else "3x3"
            tokens = [draw(word(draw(st.sampled_from(["sep", "conv"])))), kernel, filters or "8", draw(word("same"))]
            if "r" in params:
                tokens += ["drop", "r"]
            writer.line(tokens + _post(draw), indent="  ")
        writer.line(["}"])
        defined.append({"name": name, "params": params, "defaults": defaults})
    return defined


@st.composite
def block_use(draw, block: dict) -> list[str]:
    values = {"c": lambda: draw(st.integers(1, 32).flatmap(integer)), "r": lambda: draw(rates),
              "width": lambda: draw(st.integers(1, 32).flatmap(integer)),
              "k": lambda: draw(st.sampled_from(["1x1", "3x3", "3x1"]))}
    args = []
    named = False
    for p in block["params"]:
        if block["defaults"][p] and draw(st.booleans()):
            named = True  # skipped: later arguments must name their parameter
            continue
        if named or draw(st.booleans()):
            args.append(f"{p}{draw(st.sampled_from(['=', ' = ', '= ']))}{values[p]()}")
            named = True
        else:
            args.append(values[p]())
    sep = draw(st.sampled_from([", ", ",", " , "]))
    call = block["name"] + draw(st.sampled_from(["", " "])) + "(" + sep.join(args) + ")"
    if not block["params"] and draw(st.booleans()):
        call = block["name"]
    return [call]


@st.composite
def valid_specs(draw) -> tuple[str, list[str]]:
    """(text, comments) of a spec that resolves."""
    w = Writer(draw)
    w.gap()
    classes = draw(st.one_of(st.none(), st.integers(2, 20)))
    h, wd = draw(st.sampled_from([(32, 32), (32, 32), (28, 28), (16, 24), (9, 9)]))
    header = [["model", draw(st.sampled_from(["m", "net_1", "Tiny"]))]] if draw(st.booleans()) else []
    header.append(["input", f"{h}x{wd}x{draw(st.sampled_from([1, 3]))}"])
    if classes:
        header.append(["classes", draw(integer(classes))])
    for tokens in draw(st.permutations(header)):
        w.line(tokens)
    defined = draw(blocks(w))
    size = (h, wd)
    strided = 0
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["conv", "conv", "conv", "pool", "keep", "repeat", "block", "graph"]))
        if kind == "block" and defined:
            tokens = draw(block_use(draw(st.sampled_from(defined))))
            count = draw(st.integers(1, 3))
            if count > 1:
                tokens = [f"{count}", "*"] + tokens if draw(st.booleans()) else [f"{count}*{tokens[0]}"] + tokens[1:]
        elif kind == "pool" and strided < 3:
            tokens, size = draw(pool_layer(size))
            strided += 1
        elif kind == "graph":
            size = graph_statement(draw, w, size)
            continue
        elif kind == "keep":
            tokens = draw(shape_keeping_layer())
        elif kind == "repeat":
            op = draw(st.sampled_from(["sep", "conv"]))
            count = draw(st.integers(1, 4))
            tokens = [str(count), "*", draw(word(op)), draw(st.sampled_from(["3x3", "1x1", "3x1"])),
                      draw(st.integers(1, 32).flatmap(integer)), draw(word("same"))] + _post(draw)
        else:
            tokens, size = draw(conv_layer(size))
        w.line(tokens)
    # the head: the last layer that sets channels gives `classes` of them when classes are declared
    head = draw(st.sampled_from(["gap", "gap_dense", "flatten_dense", "conv", "none"]))
    width = "classes" if classes else "10"
    if head == "gap":
        if classes:
            w.line(["sep", "1x1", width, "same"])
        w.line([draw(word(draw(st.sampled_from(["gap", "gmp"]))))])
    elif head in ("gap_dense", "flatten_dense"):
        w.line([draw(word("gap" if head == "gap_dense" else "flatten"))])
        w.line([draw(word("dense")), width] + ([draw(word("nobias"))] if draw(st.booleans()) else []))
    elif head == "conv" or classes:
        w.line([draw(word("conv")), "1x1", width, draw(word("same"))])
    if draw(st.booleans()):
        w.line([draw(word("softmax"))])
    # asserts: resolving only reads them, so they need not hold
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["compare", "in"]))
        if kind == "compare":
            metric = draw(st.sampled_from(["params", "macs", "rf", "layers", "jump", "rf_h"]))
            w.line(["assert", metric, draw(st.sampled_from(["<=", "<", ">=", ">", "==", "!="])), draw(big_number())])
        else:
            ops = draw(st.lists(st.sampled_from(["sep", "conv", "maxpool", "gap", "softmax", "relu", "drop"]),
                                min_size=1, max_size=4, unique=True))
            members = "[" + draw(st.sampled_from([", ", ","])).join(draw(word(o)) for o in ops) + "]"
            w.line(["assert", "ops", draw(st.sampled_from(["in", "not in"])), members])
    if draw(st.booleans()):
        train_section(draw, w)
    return w.text(), w.comments


def train_section(draw, w: Writer) -> None:
    items = {
        "optimizer": lambda: [draw(st.sampled_from(["adam", "sgd", "ADAMW", "rmsprop"]))],
        "lr": lambda: [draw(st.sampled_from(["0.01", ".01", "1e-2", "0.010", "3e-4"]))],
        "schedule": lambda: draw(st.sampled_from([["cosine"], ["inverse_time", "0.319"], ["constant"], ["linear"]])),
        "batch": lambda: [draw(st.sampled_from(["128", "64", "1.28e2"]))],
        "epochs": lambda: [draw(st.sampled_from(["50", "5", "1e1"]))],
        "passes": lambda: [draw(st.sampled_from(["2", "1"]))],
        "momentum": lambda: [draw(st.sampled_from([".9", "0.90"]))],
        "nesterov": lambda: [],
        "weight_decay": lambda: [draw(st.sampled_from(["5e-4", "0.0005"]))],
        "augment": lambda: draw(st.sampled_from([["flip"], ["flip", "crop", "4"], ["cutout", "8"],
                                                 ["flip", "alternate", "crop", "2"],
                                                 ["crop", "2", "zero"]])),
        "label_smoothing": lambda: [draw(st.sampled_from(["0.1", ".1"]))],
        "tta": lambda: ["flip"],
    }
    keys = draw(st.lists(st.sampled_from(sorted(items)), max_size=5, unique=True))
    w.line(["train", "{"])
    for key in keys:
        w.line([draw(st.sampled_from([key, key, key.upper()]))] + items[key](), indent="  ")
    w.line(["}"])


# ---------------------------------------------------------------- the properties

def _ir(text: str) -> dict:
    """The resolved IR without source positions."""
    model = resolve(parse(text, "gen.arch"))
    dump = model.model_dump()
    for key in ("layers", "assertions"):
        for item in dump[key]:
            item.pop("where")
    return dump


def _fmt(text: str) -> str:
    return format_spec(parse(text, "gen.arch"))


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(valid_specs())
def test_fmt_is_idempotent_and_keeps_meaning_and_comments(case):
    text, comments = case
    try:
        original = _ir(text)
    except ArchError as exc:  # the generator promises valid specs: say which one was not
        raise AssertionError(f"generated spec does not resolve:\n{text}\n{exc}") from None
    formatted = _fmt(text)
    assert _fmt(formatted) == formatted
    assert _ir(formatted) == original
    for comment in comments:
        assert comment in formatted


# ---------------------------------------------------------------- examples

MESSY = """\
# a messy spec\r
model   demo
input 32x32x3    # CIFAR
classes 10



block stage( c , r=.050 ) {
	SEP 3x3 c SAME drop r BN Relu
      # inside the block

	sep 3x3 c same


}
2*stage(16)
stage( c = 32 )
3 *   conv  3x1 8 s2x1 same nobias drop 5E-2
maxpool
sep 3x3 classes same
GAP
softmax
assert params<=80K
assert ops in [sep,conv ,maxpool,gap,softmax,drop,relu]
train {

  OPTIMIZER adam
  lr 1e-2   # start
  schedule inverse_time .319
}
"""

CANONICAL = """\
# a messy spec
model demo
input 32x32x3  # CIFAR
classes 10

block stage(c, r=0.05) {
  sep 3x3 c same drop r bn relu
  # inside the block

  sep 3x3 c same
}
2 * stage(16)
stage(c=32)
3 * conv 3x1 8 s2x1 same nobias drop 0.05
maxpool
sep 3x3 classes same
gap
softmax
assert params <= 80k
assert ops in [sep, conv, maxpool, gap, softmax, drop, relu]
train {
  optimizer adam
  lr 0.01  # start
  schedule inverse_time 0.319
}
"""


def test_messy_file_formats_to_canonical_text():
    assert _fmt(MESSY) == CANONICAL
    assert _fmt(CANONICAL) == CANONICAL
    assert _ir(MESSY) == _ir(CANONICAL)


def test_seed_specs_are_stable_under_fmt():
    for path in ("specs/base.arch", "specs/best.arch"):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        formatted = _fmt(text)
        assert _fmt(formatted) == formatted
        assert _ir(formatted) == _ir(text)


def test_fmt_of_only_a_header():
    assert _fmt("input   32x32x3\nsep 3x3 8  same") == "input 32x32x3\nsep 3x3 8 same\n"


def test_numbers_in_canonical_form():
    text = "input 8x8x1\nconv 03x3 016 same drop 5e-2\ndropout 0.50\nassert params < 0.08M\nassert macs < 1e6\n"
    assert _fmt(text) == ("input 8x8x1\nconv 3x3 16 same drop 0.05\ndropout 0.5\nassert params < 0.08M\n"
                          "assert macs < 1000000\n")


def test_option_words_are_written_lower_case():
    # `sN`, `dN` and `sAxB` are option words too (docs/language.md: fmt writes option names lower-case)
    text = "input 32x32x3\nconv 3x3 8 SAME S2 D1 BN\nsep 3x3 8 Same S2X1 Stride 2x1 DM 2 RELU\n"
    assert _fmt(text) == "input 32x32x3\nconv 3x3 8 same s2 d1 bn\nsep 3x3 8 same s2x1 stride 2x1 dm 2 relu\n"


def test_a_model_name_spelled_like_a_word_is_kept():
    text = "model Same\ninput 8x8x1\nconv 3x3 8 same\n"
    assert _fmt(text) == text
    assert _ir(_fmt(text))["name"] == "Same"


def test_names_fmt_would_lower_case_are_refused():
    # fmt writes words of the language lower-case; a block or parameter named like one in another case
    # would change meaning (`Same()` -> `same()`), so the resolver refuses such names
    text = "input 32x32x3\nblock Same(Dm=8) {\n  conv 3x3 Dm same bn relu\n}\nSame()\ngap\n"
    try:
        _ir(text)
    except ArchError as exc:
        assert sorted(e.code for e in exc.errors) == ["E220", "E222"]
    else:
        raise AssertionError("a block named 'Same' resolved")


def test_numbers_fmt_cannot_shorten_are_kept_as_written():
    assert canonical_number("1e400") == "1e400"
    assert canonical_number("+1e999k") == "+1e999k"
    assert canonical_number("0" * 5000 + "7") == "7"
    assert canonical_number("-" + "0" * 5000) == "0"
    assert canonical_number("1e308") == "1e+308"
    for text in ("1e400", "2e308", "1e308k"):
        assert "inf" not in canonical_number(text)


def test_trailing_comments_of_consecutive_lines_share_a_column():
    """As gofmt does: a run of lines with trailing comments aligns them two spaces after its longest code;
    a line without a comment, a blank or a comment line ends the run."""
    messy = ("input 32x32x3\n"
             "conv 3x3 8 same   # stem\n"
             "maxpool # 16x16\n"
             "sep 3x3 16 same\n"
             "sep 3x3 16 same bn relu # alone\n"
             "\n"
             "gap   # head\n"
             "softmax    # probabilities\n")
    aligned = ("input 32x32x3\n"
               "conv 3x3 8 same  # stem\n"
               "maxpool          # 16x16\n"
               "sep 3x3 16 same\n"
               "sep 3x3 16 same bn relu  # alone\n"
               "\n"
               "gap      # head\n"
               "softmax  # probabilities\n")
    assert _fmt(messy) == aligned
    assert _fmt(aligned) == aligned
