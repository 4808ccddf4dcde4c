"""Names in the resolver: block and parameter names must be free of the language's words in any case,
and an error about a value a name stands for points at the name's use.

The words come from the tables the resolver reads (language/options.py, merges.py, grammar.lark), not from a list
written here, so a new op or option is covered when it is added.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from lark import Lark

from archdsl.language.blocks import KEYWORDS
from archdsl.errors import ArchError
from archdsl.language.merges import MERGES
from archdsl.language.options import WRITTEN_OPS
from archdsl.language.options import _TAKES_VALUE, OPTION_WORDS
from archdsl.language.parser import parse
from archdsl.language.resolve import resolve

GRAMMAR = Path(__file__).resolve().parent.parent / "archdsl" / "language" / "grammar.lark"
WORDS = sorted({*WRITTEN_OPS, *OPTION_WORDS, *_TAKES_VALUE, *KEYWORDS, *MERGES, "s2", "d1", "s2x1", "d2x3"})


def errors_of(text: str) -> list[ArchError]:
    try:
        resolve(parse(text, "t.arch"))
    except ArchError as exc:
        return list(getattr(exc, "errors", [exc]))
    return []


def test_keywords_are_the_grammars():
    terminals = Lark(GRAMMAR.read_text(), parser="lalr").terminals
    words = {t.pattern.value for t in terminals if t.pattern.type == "str" and t.pattern.value.isidentifier()}
    assert sorted(KEYWORDS) == sorted(words)


@pytest.mark.parametrize("word", WORDS)
def test_a_word_of_the_language_is_no_parameter_name_in_any_case(word):
    for name in {word, word.upper(), word.capitalize()}:
        text = f"input 8x8x1\nblock b({name}=1) {{\n  conv 3x3 4 same\n}}\nb()\n"
        errors = errors_of(text)
        assert [(e.code, e.span.line, e.span.column) for e in errors] == [("E222", 2, 9)], (name, errors)


@pytest.mark.parametrize("word", WORDS)
def test_a_word_of_the_language_is_no_block_name_in_any_case(word):
    for name in {word, word.upper(), word.capitalize()}:
        text = f"input 8x8x1\nblock {name}(c) {{\n  conv 3x3 c same\n}}\n{name}(4)\n"
        try:
            spec = parse(text, "t.arch")
        except ArchError:  # `model(4)`, `input(4)`: the parser reads the keyword
            spec = parse(text.replace(f"{name}(4)\n", ""), "t.arch")
        with pytest.raises(ArchError) as caught:
            resolve(spec)
        errors = list(getattr(caught.value, "errors", [caught.value]))
        # said once, at the definition: the use is not reported again
        assert [(e.code, e.span.line) for e in errors] == [("E220", 2)], (name, [e.render(text) for e in errors])


def test_free_names_that_merely_contain_words_are_allowed():
    text = "input 8x8x1\nblock samer(s, dm2=1, stride_=1, convs=3x3) {\n  conv convs 4 stride s same\n}\nsamer(1)\n"
    assert errors_of(text) == []


def test_a_parameter_named_twice_is_an_error_and_the_block_is_not_expanded():
    text = "input 8x8x1\nblock b(c, c) {\n  conv 3x3 c same\n}\nb(8, 9)\n"
    [error] = errors_of(text)
    assert (error.code, error.span.line, error.span.column) == ("E222", 2, 12)


def test_an_error_about_a_substituted_value_points_at_its_use():
    text = "input 8x8x1\nclasses 10\nblock b(c) {\n  conv 3x3 c same\n}\ndw 3x3 classes\nb(0)\n"
    errors = errors_of(text)
    assert [(e.code, e.span.line, e.span.column) for e in errors] == [("E214", 4, 12), ("E210", 6, 8)]
    assert errors[0].message.endswith("(`c` is 0, from line 7)")
    assert errors[1].message.endswith("(`classes` is 10, from line 2)")


def test_a_numeral_beyond_float_range_is_reported_once_at_the_numeral():
    text = "input 8x8x1\nblock b(c) {\n  conv 3x3 c same\n}\nb(1e999)\nb(2e308)\nconv 3x3 1e400\n"
    errors = errors_of(text)
    assert [(e.code, e.span.line, e.span.column) for e in errors] == [("E217", 5, 3), ("E217", 6, 3), ("E217", 7, 10)]
