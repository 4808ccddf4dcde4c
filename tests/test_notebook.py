"""archdsl in Jupyter: a model's HTML and Markdown display, the `%%arch` cell magic, and examples/notebook.ipynb.

The expected numbers are the README's `archdsl rf specs/best.arch` table (test_readme.py checks it against the
command) and hand counts; a bad cell's message is what `archdsl check` prints for the same text in a file. The
magic runs in an in-process IPython shell; the example notebook runs headless in a real kernel (nbclient).
"""
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

import archdsl
from archdsl.cli import main

IPython = pytest.importorskip("IPython")
from IPython.core.interactiveshell import InteractiveShell

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples/notebook.ipynb"
# row 6 of the README's `archdsl rf specs/best.arch` table: #, line, layer, output, rf, jump, start, params, MACs
BEST_ROW_6 = ["6", "17", "sep 3x3 128 s2 same drop 0.1 bn relu", "16x16x128", "13", "2", "1", "9,280", "2,244,608"]
# conv 3x3 from 3 to 8 channels, no bias: 3*3*3*8 weights; gap and softmax have none
TINY = "input 32x32x3\nconv 3x3 8 same relu\ngap\nsoftmax\n"
TINY_PARAMS = 3 * 3 * 3 * 8


class _Tables(HTMLParser):
    """The text of each table cell, row by row; and every tag seen."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parsed(html: str) -> _Tables:
    tables = _Tables()
    tables.feed(html)
    return tables


@pytest.fixture
def shell():
    """An in-process IPython shell with archdsl's extension loaded (HTML display on, as in a notebook)."""
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "archdsl")
    yield ip
    for name in ("tiny", "typo", "deep"):
        ip.user_ns.pop(name, None)


# --- the display of a model -----------------------------------------------------------------

def test_model_displays_as_html_with_cards_table_and_diagram(shell):
    model = archdsl.load("specs/best.arch")
    data, _ = shell.display_formatter.format(model)
    html = data["text/html"]
    page = parsed(html)
    assert BEST_ROW_6 in page.rows
    assert len([row for row in page.rows if row and row[0].isdigit()]) == 14  # the README's 14 layers
    assert "76,995" in html and ">33<" in html  # the params card, the final rf card (README: 76,995; rf 33)
    assert "2 / 2 ok" in html                   # both asserts of specs/best.arch hold
    assert "svg" in page.tags and "script" not in page.tags
    # an Analysis shows the same
    assert shell.display_formatter.format(archdsl.analyze(model))[0]["text/html"] == html


def test_model_displays_as_markdown_table_and_ascii_drawing(shell):
    markdown = shell.display_formatter.format(archdsl.load("specs/best.arch"))[0]["text/markdown"]
    assert "| " + " | ".join(BEST_ROW_6[:2] + [f"`{BEST_ROW_6[2]}`"] + BEST_ROW_6[3:]) + " |" in markdown
    assert markdown.startswith("**model `best`** · input 32x32x3 · 76,995 params")
    assert "\n```text\n" in markdown and "sep 3x3 128 s2 same drop 0.1 bn relu" in markdown.split("```text")[1]


def test_user_text_is_escaped_in_html_and_markdown(shell):
    hostile = "<script>alert(1)</script>"
    model = archdsl.load("specs/best.arch").model_copy(update={"name": hostile})
    data, _ = shell.display_formatter.format(model)
    assert "<script" not in data["text/html"].lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in data["text/html"]  # shown as text
    assert "script" not in parsed(data["text/html"]).tags
    assert f"`{hostile}`" in data["text/markdown"]  # a code span: Markdown shows it as written, not as HTML


def test_without_dot_the_html_has_the_ascii_drawing(shell, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    html = shell.display_formatter.format(archdsl.loads(TINY))[0]["text/html"]
    assert "svg" not in parsed(html).tags
    assert "`dot` is not installed" in html and "conv 3x3 8 same relu" in html.split("<pre>")[1]


def test_import_in_a_running_ipython_registers_the_display():
    """No %load_ext needed to see a model: `import archdsl` inside IPython registers it (and imports no
    more of archdsl than the light registration); outside IPython it registers nothing (test_api checks)."""
    code = ("import sys\n"
            "from IPython.core.interactiveshell import InteractiveShell\n"
            "ip = InteractiveShell.instance()\n"
            "import archdsl\n"
            "assert 'pydantic' not in sys.modules and 'archdsl.analysis' not in sys.modules\n"
            "data, _ = ip.display_formatter.format(archdsl.load('specs/best.arch'))\n"
            "print(sorted(data))\n"
            "print('magic' if 'arch' in ip.magics_manager.magics['cell'] else 'no magic')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "['text/html', 'text/markdown', 'text/plain']\nno magic\n"


# --- the %%arch magic -------------------------------------------------------------------------

def test_arch_magic_shows_the_model_and_binds_it(shell, capsys):
    result = shell.run_cell(f"%%arch tiny\n{TINY}")
    assert result.success
    model = shell.user_ns["tiny"]
    assert isinstance(model, archdsl.Model)
    assert archdsl.analyze(model).params == TINY_PARAMS
    shown = capsys.readouterr().out  # the shell's text form of what it displayed: the table
    assert re.search(r"^1 +2 +conv 3x3 8 same relu +32x32x8 +3 +1 +0 +216 ", shown, re.MULTILINE)


def test_arch_magic_saves_the_cell_after_it_parses(shell, tmp_path):
    target = tmp_path / "tiny.arch"
    assert shell.run_cell(f"%%arch tiny --save {target}\n{TINY}").success
    assert target.read_text() == TINY
    assert shell.user_ns["tiny"].file == str(target)  # messages and tables name the file


def test_arch_magic_rewrites_its_own_file_but_never_a_users(shell, tmp_path, capsys):
    target = tmp_path / "tiny.arch"
    assert shell.run_cell(f"%%arch tiny --save {target}\n{TINY}").success
    edited = TINY.replace("classes 10", "classes 10  # ten")
    assert shell.run_cell(f"%%arch tiny --save {target}\n{edited}").success  # the cell run again: rewritten
    assert target.read_text() == edited
    mine = tmp_path / "mine.arch"
    mine.write_text("# the user's own spec\n" + TINY)
    capsys.readouterr()
    result = shell.run_cell(f"%%arch tiny --save {mine}\n{TINY}")
    shown = capsys.readouterr()
    assert not result.success and "error[E603]" in shown.out + shown.err
    assert mine.read_text() == "# the user's own spec\n" + TINY  # unchanged
    target.write_text(TINY + "# edited by hand\n")  # the file this kernel wrote, changed since: the user's now
    assert not shell.run_cell(f"%%arch tiny --save {target}\n{TINY}").success
    assert target.read_text().endswith("# edited by hand\n")


def test_bad_cell_shows_the_check_message_not_a_traceback(shell, capsys, monkeypatch, tmp_path):
    text = "input 32x32x3\nsepp 3x3 64 same drop .05 bn rleu\n"
    (tmp_path / "typo.arch").write_text(text)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "typo.arch"]) == 2
    expected = capsys.readouterr().err
    (tmp_path / "typo.arch").unlink()
    result = shell.run_cell(f"%%arch typo --save typo.arch\n{text}")
    shown = capsys.readouterr()
    assert not result.success
    assert shown.out + shown.err == expected  # both errors, with carets and hints, as `archdsl check` prints them
    assert "Traceback" not in expected and "typo" not in shell.user_ns
    assert not (tmp_path / "typo.arch").exists()  # nothing saved


def test_warnings_are_said_as_rf_says_them(shell, capsys, monkeypatch, tmp_path):
    deep = "input 4x4x1\n" + "conv 3x3 4 same\n" * 5  # layers 4-5 see the whole input already: W301
    (tmp_path / "deep.arch").write_text(deep)
    monkeypatch.chdir(tmp_path)
    main(["rf", "deep.arch"])
    expected = capsys.readouterr().err
    assert shell.run_cell(f"%%arch deep --save deep.arch\n{deep}").success
    assert "warning[W301]" in expected and capsys.readouterr().err == expected
    assert "deep" in shell.user_ns  # a warning does not stop the cell


@pytest.mark.parametrize("line, message", [
    ("1x", "'1x' cannot name a Python variable"),
    ("tiny --draw", "unknown option '--draw'"),
    ("tiny --save", "--save needs a file name"),
    ("tiny --save tiny.txt", "a spec file ends in .arch"),
    ("tiny other", "one name only"),
])
def test_bad_magic_line_is_a_usage_error(shell, capsys, line, message):
    result = shell.run_cell(f"%%arch {line}\n{TINY}")
    shown = capsys.readouterr().out
    assert not result.success and "tiny" not in shell.user_ns
    assert "error[E601]" in shown and message in shown and "hint:" in shown and "Traceback" not in shown


def test_the_hints_lead_to_accepted_lines(shell, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for line in ("1x", "tiny --save tiny.txt"):
        assert not shell.run_cell(f"%%arch {line}\n{TINY}").success
        hint = capsys.readouterr().out.split("hint: ", 1)[1]
        suggested = re.search(r"e\.g\. (%%arch \S+|--save \S+)", hint).group(1)
        fixed = suggested if suggested.startswith("%%arch") else f"%%arch tiny {suggested}"
        assert shell.run_cell(f"{fixed}\n{TINY}").success, fixed
    assert (tmp_path / "tiny.arch").read_text() == TINY


def test_readme_cells_run(shell, monkeypatch, tmp_path):
    """The README's notebook cells (its ```ipython blocks), less the one that builds in Keras (test_api builds)."""
    readme = (ROOT / "README.md").read_text()
    cells = re.findall(r"```ipython\n(.*?)```", readme, re.DOTALL)
    assert len(cells) == 3 and "to_keras(tiny)" in cells[2]
    monkeypatch.chdir(tmp_path)
    for cell in cells[:2]:
        assert shell.run_cell(cell).success, cell
    # conv 3x3 from 3 to 16 channels without bias, its batch norm (4 x 16), conv 3x3 from 16 to 10; gap, softmax: none
    assert archdsl.analyze(shell.user_ns["tiny"]).params == 3 * 3 * 3 * 16 + 4 * 16 + 3 * 3 * 16 * 10
    assert (tmp_path / "tiny.arch").read_text() == cells[1].split("\n", 1)[1]


def test_docs_show_the_real_messages(shell, capsys):
    """docs/jupyter.md's two messages are what the magic prints for the cells they come from."""
    doc = (ROOT / "docs/jupyter.md").read_text()
    blocks = [b for b in re.findall(r"```\n(.*?)```", doc, re.DOTALL) if "error[" in b]
    assert len(blocks) == 2
    cells = ["%%arch tiny\ninput 32x32x3\nconv 3x3 16 same bn rleu\nsepp 3x3 32\ngap\nsoftmax\n",
             "%%arch 2tiny\ninput 32x32x3\n"]
    for cell, block in zip(cells, blocks):
        assert not shell.run_cell(cell).success
        assert capsys.readouterr().out == block


def test_bad_cell_in_a_real_kernel_shows_the_message_as_its_traceback():
    """What Jupyter shows of a failed cell is its error's traceback lines: in a kernel (ipykernel), those are
    the caret message, not Python's frames; the notebook's run stops at that cell."""
    pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from nbformat.v4 import new_code_cell, new_notebook
    cell = "%%arch typo\ninput 32x32x3\nsepp 3x3 64 same drop .05 bn rleu\n"
    notebook = new_notebook(cells=[new_code_cell("%load_ext archdsl"), new_code_cell(cell)])
    with pytest.raises(nbclient.exceptions.CellExecutionError):
        nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    error = notebook.cells[1].outputs[-1]
    assert error["output_type"] == "error"
    # the README's `archdsl check typo.arch` message, for a cell not saved to a file
    readme = (ROOT / "README.md").read_text()
    shown = re.search(r"\$ archdsl check typo.arch\n(.*?)```", readme, re.DOTALL).group(1)
    assert "\n".join(error["traceback"]) + "\n" == shown.replace("typo.arch:", "<cell>:")


# --- examples/notebook.ipynb --------------------------------------------------------------------

def test_repo_notebook_has_no_outputs():
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)


@pytest.mark.tf
def test_notebook_runs_headless(cifar_archive, data_cache, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("ARCHDSL_CIFAR10_ARCHIVE", str(cifar_archive))
    monkeypatch.setenv("ARCHDSL_DATA", os.environ.get("ARCHDSL_DATA") or str(data_cache))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    text = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    arch = parsed(html[0])  # the %%arch cell's display
    # layer 1 of the tiny spec: conv 3x3 from 3 to 16 channels, no bias (432) and batch norm (4 x 16)
    assert ["1", "6", "conv 3x3 16 same bn relu", "32x32x16", "3", "1", "0", "496", "442,368"] in arch.rows
    assert "svg" in arch.tags
    assert any("<svg" in o.get("data", {}).get("image/svg+xml", "") for o in outputs)  # the draw cell
    assert "best val (test split) accuracy" in text and "run directory:" in text
    assert "srcdoc=" in html[-1] and "model tiny" in html[-1]  # the report, in its frame
    assert (tmp_path / "tiny.arch").is_file() and list((tmp_path / "runs/tiny").glob("*/report.html"))
