"""Fuzzing the front end: whatever the bytes, `archdsl check` ends with 0, 1 or 2 and a message.

Never a traceback, a hang or a memory blow-up. The CI profile runs a few thousand cases;
the long profile (`ARCHDSL_FUZZ_EXAMPLES=100000 pytest tests/test_fuzz.py`) runs more.
Every input that ever broke the front end is kept in tests/corpus/ and replayed here.
"""
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archdsl.analysis import analyze, check_assertions
from archdsl.cli import main
from archdsl.errors import ArchError
from archdsl.language.parser import parse, read_source
from archdsl.language.resolve import resolve
from spec_files import spec_texts

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("ARCHDSL_FUZZ_EXAMPLES", "700"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not os.environ.get("ARCHDSL_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SEEDS = spec_texts()
VOCAB = ["sep", "conv", "dw", "maxpool", "avgpool", "gap", "flatten", "dense", "softmax", "relu", "bn", "drop",
         "same", "valid", "s2", "stride", "dilation", "d2", "dm", "bias", "3x3", "1x1", "3x1", "32x32x3", "64",
         "0", "-1", ".05", "1e9", "80k", "classes", "input", "model", "block", "assert", "train", "residual",
         "shortcut", "parallel", "branch", "add", "concat", "{", "}", "(", ")", ",", "=", "*", "[", "]", "<=",
         "in", "not", "params", "rf", "ops", "#", "\n", "\n", "\n", "  ", "é", "\t", "999999999999", "x",
         "pad", "1,2", "0,1,0,1", "groups", "upsample", "2x", "nearest", "bilinear", "noscale", "nocenter", "\ufeff"]


def check_text(text: str) -> int:
    """What `archdsl check` decides for a spec's text, in-process: 0, 1 or 2 (other exceptions escape)."""
    try:
        analysis = analyze(resolve(parse(text, "fuzz.arch")))
    except ArchError as exc:
        rendered = exc.render(text)
        assert "fuzz.arch" in rendered and "Traceback" not in rendered
        return exc.exit_status
    return 0 if all(r.ok for r in check_assertions(analysis)) else 1


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text):
    assert check_text(text) in (0, 1, 2)


@FUZZ
@given(st.lists(st.sampled_from(VOCAB), max_size=60))
def test_random_tokens(tokens):
    assert check_text("input 32x32x3\n" + " ".join(tokens)) in (0, 1, 2)


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(SEEDS))
    tokens = text.split(" ")
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(tokens) - 1))
        action = draw(st.sampled_from(["delete", "duplicate", "swap", "number", "unicode", "long", "vocab"]))
        if action == "delete":
            del tokens[i]
        elif action == "duplicate":
            tokens.insert(i, tokens[i])
        elif action == "swap":
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif action == "number":
            tokens[i] = draw(st.sampled_from(["0", "-3", "1.5", "1e308", "99999999999999999999", "1000000 *",
                                              "0x0", "3x0", "2.5x2", ".0", "1e-400", "nan", "inf"]))
        elif action == "unicode":
            tokens[i] = draw(st.text(min_size=1, max_size=5))
        elif action == "long":
            tokens[i] = tokens[i] * draw(st.integers(100, 3000))
        else:
            tokens[i] = draw(st.sampled_from(VOCAB))
        if not tokens:
            tokens = [""]
    return " ".join(tokens)


@FUZZ
@given(mutated())
def test_mutated_specs(text):
    assert check_text(text) in (0, 1, 2)


@settings(max_examples=max(50, EXAMPLES // 10), deadline=None, derandomize=True)
@given(st.binary(max_size=200))
def test_random_bytes_through_the_cli(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "bytes.arch"
    path.write_bytes(data)
    assert main(["check", str(path)]) in (0, 1, 2)


@pytest.mark.parametrize("text", [
    "input 8x8x1\n" + "residual {\n" * 500 + "}\n" * 500,                 # deep nesting: refused, no RecursionError
    "input 8x8x1\n1000000000 * sep 3x3 8 same\n",                         # a huge repeat: refused, not attempted
    "input 8x8x1\nblock a {\n  1000 * conv 3x3 0\n}\nblock b {\n  1000 * a\n}\n1000 * b\n",   # repeats of errors
    "input 8x8x1\nblock a {\n  1000 * conv 1x1 1 same\n}\nblock b {\n  1000 * a\n}\nb\n",   # 10^6 layers
    "input 8x8x1\n" + "conv 1x1 1 same " + "bn " * 20000 + "\n",            # a very long line
    "input 99999999999999999999x1x1\nconv 3x3 1\n",
    "input 8x8x1\nsep 3x3 1e308\n",
    "input 8x8x1\n" + "sep 3x3 0 " * 5000 + "\n",    # 15,000 errors on a 50 KB line: the long fuzz hung here
], ids=["deep-nesting", "huge-repeat", "repeated-errors", "million-layers", "long-line", "huge-input", "1e308",
        "errors-on-a-long-line"])
def test_pathological_inputs_end_quickly(text):
    assert check_text(text) in (0, 1, 2)


@pytest.mark.parametrize("path", sorted((ROOT / "tests/corpus").glob("*")), ids=lambda p: p.name)
def test_corpus_of_past_crashes(path):
    """Inputs that once broke the front end (kept forever)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        assert main(["check", str(path)]) in (0, 1, 2)
        return
    assert check_text(text) in (0, 1, 2)


def test_read_source_refuses_what_is_not_a_spec(tmp_path):
    (tmp_path / "bin.arch").write_bytes(b"input\x00\xff")
    for path in (tmp_path / "bin.arch", tmp_path, tmp_path / "missing.arch"):
        with pytest.raises(ArchError):
            read_source(str(path))
