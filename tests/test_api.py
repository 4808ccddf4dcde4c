"""The Python API (`archdsl.__all__`) and the README's "Python API" section, which must run as shown.

Each ```python block of that section runs, in order and in one namespace as a reader would paste them;
what it prints must be the block shown right after it. The values are also checked against truths
found elsewhere: the README's `archdsl rf` table (itself checked against the command by test_readme.py),
the spec listing, and the command line's own output in every format.
"""
import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import archdsl
from archdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SECTION = README.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
# (code, what the README shows it prints): a python block and the plain block right after it
SNIPPETS = re.findall(r"```python\n(.*?)```\s*```\n(.*?)```", SECTION, re.S)
NEEDS_TF = "to_keras("


def _run(code: str, namespace: dict) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md (Python API)", "exec"), namespace)
    return out.getvalue()


def _readme_rf_table() -> str:
    return re.search(r"\$ archdsl rf specs/best.arch\n(.*?)```", README, re.S).group(1)


def _cli(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(list(argv))
    return out.getvalue()


def test_the_section_has_snippets_each_with_its_output():
    assert len(SNIPPETS) == SECTION.count("```python") >= 3
    assert sum(NEEDS_TF in code for code, _ in SNIPPETS) == 1


def test_readme_snippets_print_what_the_readme_shows():
    namespace: dict = {}
    for code, shown in SNIPPETS:
        if NEEDS_TF not in code:
            assert _run(code, namespace) == shown, code
    # the values, against truths found elsewhere
    rf_table = _readme_rf_table()
    params = int(re.search(r"total params: ([\d,]+)", rf_table).group(1).replace(",", ""))
    assert params == 76_995 == namespace["analysis"].params == namespace["data"]["total"]["params"]
    listing = re.search(r"```\n# specs/best.arch[^\n]*\n(.*?)```", README, re.S).group(1)
    body = listing.split("classes 10\n", 1)[1].split("\nassert", 1)[0]
    layers = [line for line in body.splitlines() if line.strip()]  # one layer a line: no blocks or repeats
    assert len(namespace["data"]["layers"]) == len(namespace["analysis"].rows) == len(layers) == 14
    table_rows = re.findall(r"^\s*(\d+)\s+\d+\s+(\S+)", rf_table, re.M)
    assert [op for _, op in table_rows] == [line.split()[0] for line in layers]
    shown_asserts = re.findall(r"^(ok  |FAIL) (assert .*?)   \(line", rf_table, re.M)
    checked = archdsl.check(namespace["analysis"])
    assert [("ok  " if r.ok else "FAIL", r.assertion.text) for r in checked] == shown_asserts
    assert all(r.ok for r in checked) and checked[0].actual == params


@pytest.mark.tf
def test_readme_keras_snippet_prints_what_the_readme_shows():
    namespace = {"archdsl": archdsl, "model": archdsl.load("specs/best.arch")}
    code, shown = next((code, shown) for code, shown in SNIPPETS if NEEDS_TF in code)
    assert _run(code, namespace) == shown
    assert namespace["keras_model"].count_params() == archdsl.analyze(namespace["model"]).params


@pytest.mark.parametrize("spec", ["specs/best.arch", "examples/resnet8.arch", "examples/mnist_lenet.arch"])
@pytest.mark.parametrize("fmt, cli_fmt", [("text", "table"), ("table", "table"), ("json", "json"), ("csv", "csv"),
                                          ("markdown", "markdown")])
def test_table_is_what_archdsl_rf_prints(spec, fmt, cli_fmt):
    model = archdsl.load(spec)
    printed = _cli("rf", spec, "--format", cli_fmt)
    assert archdsl.table(archdsl.analyze(model), fmt) + "\n" == printed
    assert archdsl.table(model, fmt) + "\n" == printed  # a model is analysed first


def test_table_shows_the_asserts_unless_told_not_to():
    analysis = archdsl.analyze(archdsl.load("specs/best.arch"))
    with_asserts, without = archdsl.table(analysis), archdsl.table(analysis, results=[])
    assert "ok   assert params <= 80k" in with_asserts and "assert" not in without
    assert json.loads(archdsl.table(analysis, "json", results=[]))["asserts"] == []
    failing = archdsl.loads("input 8x8x1\nconv 3x3 4 same\nassert params <= 10\n")
    assert "FAIL assert params <= 10   (line 3: 36)" in archdsl.table(failing)  # 3x3x1x4 weights, no bias


def test_the_tables_module_no_longer_drops_the_asserts():
    """Issue 28: `text_table(t)` raised TypeError; `render(t)` left the asserts out."""
    from archdsl.render import tables
    analysis = archdsl.analyze(archdsl.load("specs/best.arch"))
    line = "ok   assert params <= 80k   (line 27: 76,995)"
    assert line in tables.text_table(analysis) and line in tables.render(analysis)
    assert line.removeprefix("ok   ") in tables.markdown_table(analysis)
    assert len(json.loads(tables.to_json(analysis))["asserts"]) == 2
    assert tables.render(analysis, "table", []) == tables.text_table(analysis, [])
    assert "assert" not in tables.text_table(analysis, [])


def test_check_gives_each_assert_its_result():
    model = archdsl.loads("input 8x8x1\nconv 3x3 4 same\nassert params <= 10\nassert ops in [conv]\n", "t.arch")
    first, second = archdsl.check(archdsl.analyze(model))
    assert (first.ok, first.actual, first.assertion.text, first.assertion.where.line) == \
        (False, 36, "assert params <= 10", 3)
    assert (second.ok, second.actual) == (True, ["conv"])
    assert archdsl.check(model) == [first, second]  # a model is analysed first


def test_load_and_loads_agree_and_errors_are_arch_errors(tmp_path):
    text = (ROOT / "specs/best.arch").read_text()
    assert archdsl.load("specs/best.arch") == archdsl.loads(text, "specs/best.arch")
    assert archdsl.load(Path("specs/best.arch")) == archdsl.load("specs/best.arch")
    with pytest.raises(archdsl.ArchError) as exc:
        archdsl.load(tmp_path / "missing.arch")
    assert "Traceback" not in exc.value.render()
    with pytest.raises(archdsl.ArchError):
        archdsl.loads("input 32x32x3\nconv 3x3\n")


def test_draw_ascii_is_archdsl_draw(tmp_path):
    _cli("draw", "specs/base.arch", "-o", str(tmp_path / "base.txt"))
    assert archdsl.draw(archdsl.load("specs/base.arch")) + "\n" == (tmp_path / "base.txt").read_text("utf-8")


def test_draw_dot_and_svg():
    pytest.importorskip("graphviz")
    model = archdsl.load("specs/best.arch")
    dot = archdsl.draw(model, "dot")
    assert isinstance(dot, str) and dot.startswith("digraph best {")
    if shutil.which("dot") is None:
        with pytest.raises(archdsl.ArchError):
            archdsl.draw(model, "svg")
        return
    svg = archdsl.draw(model, "svg")
    assert isinstance(svg, str) and "<svg" in svg and "sep 3x3 16 same drop 0.05 bn relu" in svg
    assert archdsl.draw(model, "png").startswith(b"\x89PNG")


def test_export_is_archdsl_export(tmp_path):
    model = archdsl.load("specs/best.arch")
    for target in ("keras", "pytorch"):
        out = tmp_path / f"{target}.py"
        _cli("export", "specs/best.arch", "--to", target, "-o", str(out))
        assert archdsl.export(model, target) == out.read_text()


@pytest.mark.parametrize("call", [
    lambda m: archdsl.table(archdsl.analyze(m), "html"),
    lambda m: archdsl.draw(m, "jpg"),
    lambda m: archdsl.export(m, "torch"),
])
def test_an_unknown_format_is_a_value_error_naming_the_choices(call):
    with pytest.raises(ValueError, match="one of"):
        call(archdsl.load("specs/best.arch"))


def test_all_is_the_public_surface():
    assert set(archdsl.__all__) == {"load", "loads", "load_space", "loads_space", "analyze", "check", "table", "to_keras", "draw", "export",
                                    "ArchError", "SpecWarning", "Model", "Analysis", "TABLE_FORMATS", "DRAW_FORMATS",
                                    "EXPORT_TARGETS"}
    for name in archdsl.__all__:
        assert getattr(archdsl, name) is not None and name in dir(archdsl)
    assert isinstance(archdsl.load("specs/best.arch"), archdsl.Model)
    assert isinstance(archdsl.analyze(archdsl.load("specs/best.arch")), archdsl.Analysis)
    with pytest.raises(AttributeError):
        archdsl.no_such_name  # noqa: B018
    assert "Python API" in archdsl.__doc__ and "private" in archdsl.__doc__


def test_import_archdsl_is_light_and_only_to_keras_imports_tensorflow():
    code = ("import sys\n"
            "import archdsl\n"
            "assert sorted(m for m in sys.modules if m.startswith('archdsl')) == ['archdsl', 'archdsl.version']\n"
            "assert 'pydantic' not in sys.modules and 'lark' not in sys.modules\n"
            "model = archdsl.load('specs/best.arch')\n"
            "analysis = archdsl.analyze(model)\n"
            "for fmt in archdsl.TABLE_FORMATS:\n"
            "    archdsl.table(analysis, fmt)\n"
            "archdsl.check(analysis)\n"
            "archdsl.draw(model)\n"
            "archdsl.export(model, 'keras')\n"
            "archdsl.export(model, 'pytorch')\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'torch', 'graphviz'))\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_load_space_is_archdsl_space(tmp_path):
    """The API's space is the command's: the same counts and rows; a variant's model and text are the spec
    `space --write` writes (their tables equal)."""
    import json
    path = "examples/spaces/record_widths.arch"
    space = archdsl.load_space(path)
    shown = json.loads(_cli("space", path, "--format", "json"))
    assert (len(space.variants), len(space.feasible)) == (shown["combinations"], shown["feasible"])
    assert [(v.index, v.values(), v.metrics["params"]) for v in space.feasible] == \
        [(v["index"], v["choices"], v["params"]) for v in shown["variants"]]
    variant = space.feasible[-1]
    written = tmp_path / "variant.arch"
    written.write_text(space.text(variant), encoding="utf-8")
    assert archdsl.table(archdsl.load(written)) == archdsl.table(space.model(variant)).replace(path, str(written))
    assert archdsl.loads_space(open(path).read(), path).ruled_out() == space.ruled_out()
