"""`archdsl draw`: graphviz diagrams (dot source, svg/png/pdf files) and the terminal drawing.

The ascii golden file is checked by eye; regenerate it after an intended change with
`ARCHDSL_UPDATE_GOLDEN=1 pytest tests/test_draw.py` and read the diff before committing it.
"""
from __future__ import annotations

import html
import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import archdsl
from archdsl.render import ascii as ascii_backend
from archdsl.render import graphviz as gv
from archdsl.cli import main
from archdsl.render.draw import block_caption, choose_format
from archdsl.errors import UsageError
from archdsl.render.tables import _pair, _shape
from spec_files import spec_paths

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
SPECS = [Path(p) for p in spec_paths()]
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` is not installed "
                               "(apt-get install graphviz); CI installs it")


def _load(path):
    model = archdsl.load(str(path))
    return model, archdsl.analyze(model)


def _dot_source(path, rankdir="TB") -> str:
    model, analysis = _load(path)
    return gv.to_digraph(model, analysis, rankdir).source


# --- the dot source: parsed back into nodes, edges and clusters -----------------------------------

NODE = re.compile(r"^\s*(n\d+) \[label=<(.*)>(?: |\])", re.M)
EDGE = re.compile(r"^\s*(n\d+) -> (n\d+)", re.M)


def _nodes(source: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in NODE.finditer(source)}


def _edges(source: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in EDGE.finditer(source)]


def _clusters(source: str) -> dict[str, tuple[str, set[str], str | None]]:
    """cluster name -> (its label text, the nodes declared directly or nested inside it, its parent)."""
    clusters: dict[str, list] = {}
    stack: list[str | None] = []
    for line in source.splitlines():
        line = line.strip()
        if line.startswith("subgraph cluster_"):
            name = line.split()[1]
            clusters[name] = ["", set(), next((s for s in reversed(stack) if s), None)]
            stack.append(name)
        elif line.endswith("{") and not line.startswith("digraph"):  # a subgraph that is no cluster
            stack.append(None)
        elif line == "}":
            if stack:
                stack.pop()
        elif stack and stack[-1] and (m := re.search(r"\blabel=<(.*)> labeljust=", line)):
            clusters[stack[-1]][0] = _text(m.group(1)).strip()
        elif stack and (m := NODE.match(line)):
            for name in stack:
                if name:
                    clusters[name][1].add(m.group(1))
    return {k: tuple(v) for k, v in clusters.items()}


def _text(label: str) -> str:
    """What a label shows: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", label))


@pytest.mark.parametrize("spec", ["specs/best.arch", "examples/mobilenet_tiny.arch"])
def test_dot_has_one_node_a_layer_with_its_text_shape_rf_and_params(spec):
    model, analysis = _load(spec)
    nodes = _nodes(_dot_source(spec))
    assert set(nodes) == {f"n{i}" for i in range(len(model.layers) + 1)}
    assert "input" in _text(nodes["n0"]) and _shape(model.input_shape) in _text(nodes["n0"])
    for layer, row in zip(model.layers, analysis.rows):
        shown = _text(nodes[f"n{layer.index}"])
        assert layer.text in shown
        if layer.spatial:
            assert f"{_shape(layer.output_shape)} · rf {_pair(row.rf)} · jump {_pair(row.jump)}" in shown
        else:
            assert f"{_shape(layer.output_shape)} · rf global" in shown
        assert (f"{row.params:,} params" in shown) == (row.params > 0)
    assert "model output" in _text(nodes[f"n{model.output.index}"])
    assert sum("model output" in _text(label) for label in nodes.values()) == 1


def test_best_node_labels_read_as_the_rf_table():
    nodes = _nodes(_dot_source("specs/best.arch"))
    assert "sep 3x3 128 s2 same drop 0.1 bn relu" in _text(nodes["n6"])
    assert "16x16x128 · rf 13 · jump 2" in _text(nodes["n6"])
    assert "9,280 params" in _text(nodes["n6"])
    assert "10 · rf global" in _text(nodes["n12"])  # gap


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_edges_are_the_layers_inputs(spec):
    model, _ = _load(spec)
    expected = sorted((f"n{i}", f"n{layer.index}") for layer in model.layers for i in layer.inputs)
    assert sorted(_edges(_dot_source(spec))) == expected


def test_each_block_use_is_a_cluster_with_its_label_and_layers():
    model, _ = _load("examples/mobilenet_tiny.arch")
    clusters = _clusters(_dot_source("examples/mobilenet_tiny.arch"))
    uses = {}
    for layer in model.layers:
        if layer.block:
            uses.setdefault(layer.block, set()).add(f"n{layer.index}")
    assert len(uses) == 7
    assert {label: nodes for label, nodes, _ in clusters.values()} == uses
    assert all(parent is None for _, _, parent in clusters.values())
    assert "dwpw(160,1)#5" in uses and "dwpw(160,1)#6" in uses  # `2 * dwpw(160)`: one cluster a use


def test_nested_blocks_and_repeats_are_nested_clusters(tmp_path):
    spec = tmp_path / "nested.arch"
    spec.write_text("model nested\ninput 16x16x3\nclasses 10\n"
                    "block inner(c) {\n  conv 3x3 c same bn relu\n}\n"
                    "block outer(c) {\n  inner(c)\n  2 * inner(c)\n  maxpool\n}\n"
                    "outer(8)\nouter(16)\n3 * conv 3x3 10 same\ngap\nsoftmax\n")
    model, _ = _load(spec)
    clusters = _clusters(_dot_source(spec))
    by_label = {label: (nodes, parent) for label, nodes, parent in clusters.values()}
    outer_nodes, outer_parent = by_label["outer(8)#1"]
    assert outer_parent is None and outer_nodes == {"n1", "n2", "n3", "n4"}
    inner_nodes, inner_parent = by_label["inner(8)#2"]
    assert clusters[inner_parent][0] == "outer(8)#1" and inner_nodes == {"n2"}
    # the repeat `3 * conv 3x3 10 same` (resolve's label `3*conv#1`) is headed by what it is
    assert by_label["3 × conv (repeat 1 of conv)"][0] == {"n9", "n10", "n11"}
    assert len(clusters) == 2 + 6 + 1


# The first layer of each branch of examples/inception_cifar.arch, read off the spec by hand (not
# asked of the code under test): layers are numbered in the order written, a parallel's merge right
# after its branches. conv 1; mixed(16,24,8,8): branches 2 | 3-4 | 5-7 | 8-9, merge 10; reduce(40):
# 11 | 12, merge 13; the next mixed and reduce start at 14 and 23, the last mixed at 26.
INCEPTION_BRANCH_HEADS = [[2, 3, 5, 8], [11, 12], [14, 15, 17, 20], [23, 24], [26, 27, 29, 32]]
RANK_SAME = re.compile(r"\{\s*rank=same\s+((?:n\d+\s+)+)\}")


def test_parallel_branches_start_side_by_side_in_written_order():
    model, analysis = _load("examples/inception_cifar.arch")
    assert gv._branch_heads(model) == INCEPTION_BRANCH_HEADS
    source = gv.to_digraph(model, analysis).source
    groups = [[int(node[1:]) for node in m.group(1).split()] for m in RANK_SAME.finditer(source)]
    assert groups == INCEPTION_BRANCH_HEADS  # each parallel once, its heads in written order, nothing else


@needs_dot
def test_parallel_branches_are_drawn_left_to_right():
    import subprocess
    model, analysis = _load("examples/inception_cifar.arch")
    plain = subprocess.run(["dot", "-Tplain"], input=gv.to_digraph(model, analysis).source.encode(),
                           capture_output=True, check=True).stdout.decode()
    x = {p[1]: float(p[2]) for p in (line.split() for line in plain.splitlines()) if p[0] == "node"}
    for heads in INCEPTION_BRANCH_HEADS:
        assert [x[f"n{i}"] for i in heads] == sorted(x[f"n{i}"] for i in heads)  # left to right
        assert len({x[f"n{i}"] for i in heads}) == len(heads)  # side by side, not on top of each other


def test_colours_by_kind_of_op():
    model, _ = _load("specs/base.arch")
    kinds = {layer.op: gv.kind(layer) for layer in model.layers}
    assert kinds == {"sep": "conv", "maxpool": "pool", "gap": "head", "flatten": "head", "softmax": "head"}
    nodes = dict(re.findall(r"^\s*(n\d+) \[.*fillcolor=\"(#[0-9a-f]+)\"", _dot_source("specs/base.arch"), re.M))
    assert nodes["n1"] == gv.KIND_COLOURS["conv"][0] and nodes["n4"] == gv.KIND_COLOURS["pool"][0]
    assert nodes["n10"] == gv.KIND_COLOURS["head"][0]


def test_rankdir_reaches_the_graph():
    assert "rankdir=LR" in _dot_source("specs/best.arch", "LR")
    assert "rankdir=TB" in _dot_source("specs/best.arch")


# --- escaping of user text ------------------------------------------------------------------------

def test_escape_function():
    assert gv.escape('<&">') == "&lt;&amp;&quot;&gt;"
    assert gv.escape("it's") == "it&#39;s"
    assert html.unescape(gv.escape('a <b> & "c" \'d\'')) == 'a <b> & "c" \'d\''
    assert gv.escape("sep 3x3 16 same") == "sep 3x3 16 same"


def _model_with_text(text: str, block: str):
    model = archdsl.loads("model m\ninput 8x8x3\nconv 3x3 4 same\ngap\n")
    first = model.layers[0].model_copy(update={"text": text, "block": block})
    return model.model_copy(update={"layers": (first, *model.layers[1:])})


def test_user_text_is_escaped_in_the_dot_source():
    model = _model_with_text('conv <&"> 3x3', 'odd<&">#1')
    source = gv.to_digraph(model, archdsl.analyze(model)).source
    assert 'conv &lt;&amp;&quot;&gt; 3x3' in source and 'odd&lt;&amp;&quot;&gt;#1' in source
    assert '<&">' not in source


@needs_dot
def test_user_text_survives_into_the_svg():
    model = _model_with_text('conv <&"> 3x3', 'odd<&">#1')
    svg = gv.render_svg(model, archdsl.analyze(model))
    texts = ["".join(t.itertext()) for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]
    assert 'conv <&"> 3x3' in texts and 'odd<&">#1' in texts


@needs_dot
def test_block_names_with_underscores_draw(tmp_path):
    spec = tmp_path / "under.arch"
    spec.write_text("model under_score\ninput 8x8x3\nblock a_b(c_1) {\n  conv 3x3 c_1 same\n}\n"
                    "a_b(4)\na_b(c_1=8)\ngap\n")
    out = tmp_path / "under.svg"
    assert main(["draw", str(spec), "-o", str(out)]) == 0
    texts = ["".join(t.itertext()) for t in ET.parse(out).iter("{http://www.w3.org/2000/svg}text")]
    assert "a_b(4)#1" in texts and "a_b(8)#2" in texts and "under_score" in texts


# --- pictures -------------------------------------------------------------------------------------

@needs_dot
@pytest.mark.parametrize("spec", ["specs/best.arch", "examples/mobilenet_tiny.arch"])
@pytest.mark.parametrize("fmt", ["svg", "png", "pdf", "dot"])
def test_files_are_written_and_valid(spec, fmt, tmp_path, capsys):
    out = tmp_path / f"net.{fmt}"
    assert main(["draw", spec, "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    data = out.read_bytes()
    if fmt == "svg":
        root = ET.fromstring(data)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert root.get("viewBox", "").startswith("0.00 0.00 ")  # a margin would shift it and crop the picture
    elif fmt == "png":
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
    elif fmt == "pdf":
        assert data.startswith(b"%PDF")
    else:
        assert data.decode().startswith("digraph ")
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary file left behind


@needs_dot
def test_format_option_and_lr(tmp_path):
    out = tmp_path / "net"
    assert main(["draw", "specs/best.arch", "-o", str(out), "--format", "png", "--rankdir", "LR"]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")


@needs_dot
def test_svg_and_dot_go_to_stdout_without_output(capsys):
    assert main(["draw", "specs/best.arch", "--format", "svg"]) == 0
    assert ET.fromstring(capsys.readouterr().out.encode()).tag.endswith("svg")
    assert main(["draw", "specs/best.arch", "--format", "dot"]) == 0
    assert capsys.readouterr().out.startswith("digraph best {")


# --- missing dot, bad arguments, existing files ---------------------------------------------------

def test_missing_dot_gives_the_install_hint_and_writes_the_source(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "net.png"
    assert main(["draw", "specs/best.arch", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "`dot` is not installed" in err and "apt-get install graphviz" in err and "brew install graphviz" in err
    dot = tmp_path / "net.dot"
    assert f"written to {dot}" in err and f"dot -Tpng {dot} -o {out}" in err
    assert not out.exists()
    assert dot.read_text() == _dot_source("specs/best.arch")


def test_missing_dot_never_overwrites_an_existing_source(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    (tmp_path / "net.dot").write_text("mine")
    assert main(["draw", "specs/best.arch", "-o", str(tmp_path / "net.svg")]) == 2
    err = capsys.readouterr().err
    assert "could not be written either" in err and "already exists" in err and "dot -T" not in err
    assert (tmp_path / "net.dot").read_text() == "mine"


def test_missing_dot_without_output(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["draw", "specs/best.arch", "--format", "svg"]) == 2
    assert "--format dot" in capsys.readouterr().err


def test_dot_format_needs_no_dot(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["draw", "specs/best.arch", "-o", str(tmp_path / "net.dot")]) == 0
    assert (tmp_path / "net.dot").read_text().startswith("digraph best {")


def test_missing_dot_by_shutil_which(monkeypatch):
    monkeypatch.setattr(gv.shutil, "which", lambda name: None)
    model, analysis = _load("specs/best.arch")
    with pytest.raises(gv.DotNotFound) as exc:
        gv.render(gv.to_digraph(model, analysis), "svg")
    assert "apt-get install graphviz" in exc.value.hint


def test_unknown_extension_is_refused(tmp_path, capsys):
    out = tmp_path / "net.jpg"
    assert main(["draw", "specs/best.arch", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "extension '.jpg'" in err and all(ext in err for ext in (".svg", ".png", ".pdf", ".dot", ".txt"))
    assert not out.exists()


def test_no_extension_without_format_is_refused(tmp_path, capsys):
    assert main(["draw", "specs/best.arch", "-o", str(tmp_path / "net")]) == 2
    assert "no extension" in capsys.readouterr().err


def test_format_and_extension_must_agree(tmp_path, capsys):
    assert main(["draw", "specs/best.arch", "-o", str(tmp_path / "net.svg"), "--format", "png"]) == 2
    assert "does not match" in capsys.readouterr().err


def test_binary_formats_need_an_output(capsys):
    assert main(["draw", "specs/best.arch", "--format", "png"]) == 2
    assert "-o net.png" in capsys.readouterr().err


def test_choose_format():
    assert choose_format(None, None) == "ascii"
    assert choose_format("a/b.SVG", None) == "svg"
    assert choose_format("b.gv", None) == "dot"
    assert choose_format("b.txt", None) == "ascii"
    assert choose_format("b.out", "pdf") == "pdf"
    with pytest.raises(UsageError):
        choose_format("b.jpeg", None)


@pytest.mark.parametrize("name", ["net.svg", "net.png", "net.dot", "net.txt"])
def test_an_existing_output_is_refused_and_unchanged(tmp_path, capsys, name):
    out = tmp_path / name
    out.write_bytes(b"precious")
    assert main(["draw", "specs/best.arch", "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_bad_spec_is_reported_before_drawing(tmp_path, capsys):
    spec = tmp_path / "bad.arch"
    spec.write_text("model bad\ninput 8x8x3\nsepp 3x3 4\n")
    assert main(["draw", str(spec), "-o", str(tmp_path / "bad.svg")]) == 2
    assert "unknown op 'sepp'" in capsys.readouterr().err
    assert not (tmp_path / "bad.svg").exists()


# --- the terminal drawing -------------------------------------------------------------------------

def test_ascii_matches_golden(capsys):
    assert main(["draw", "specs/base.arch"]) == 0
    text = capsys.readouterr().out
    golden = GOLDEN / "draw_base.txt"
    if os.environ.get("ARCHDSL_UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}: run with ARCHDSL_UPDATE_GOLDEN=1 and check it by eye"
    assert text == golden.read_text(encoding="utf-8")


def test_ascii_repeats_are_headed_by_what_they_are(capsys):
    """examples/vgg_pool.arch has `2 * conv` twice and `3 * sep` once: each bracket says the count, the op and
    which repeat of that op it is (the table's block column keeps resolve's `2*conv#2`). Checked by eye."""
    assert main(["draw", "examples/vgg_pool.arch"]) == 0
    text = capsys.readouterr().out
    golden = GOLDEN / "draw_vgg_pool.txt"
    if os.environ.get("ARCHDSL_UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}: run with ARCHDSL_UPDATE_GOLDEN=1 and check it by eye"
    assert text == golden.read_text(encoding="utf-8")
    heads = [line.split("┌─ ")[1] for line in text.splitlines() if "┌─ " in line]
    assert heads == ["2 × conv (repeat 1 of conv)", "2 × conv (repeat 2 of conv)", "3 × sep (repeat 1 of sep)"]
    assert "3 x sep (repeat 1 of sep)" in ascii_backend.to_plain_ascii(text)


def test_block_caption_leaves_named_blocks_as_they_are():
    assert block_caption("2*conv#1") == "2 × conv (repeat 1 of conv)"
    assert block_caption("12*sep#3") == "12 × sep (repeat 3 of sep)"
    for label in ("dwpw(48,1)#1", "residual#2", "parallel#1", "stage(64)#1", "my_block(2*x)#1"):
        assert block_caption(label) == label


def test_ascii_to_a_file(tmp_path):
    out = tmp_path / "base.txt"
    assert main(["draw", "specs/base.arch", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == (GOLDEN / "draw_base.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_ascii_has_every_layer_and_short_lines(spec):
    model, analysis = _load(spec)
    lines = ascii_backend.draw(model, analysis).splitlines()
    assert max(len(line) for line in lines) <= 100
    for layer in model.layers:
        assert any(re.search(rf"\s{layer.index}  [│ ]*{re.escape(layer.text)}", line) for line in lines), layer.text


def test_ascii_blocks_are_bracketed():
    model, analysis = _load("examples/mobilenet_tiny.arch")
    lines = ascii_backend.draw(model, analysis).splitlines()
    assert any(line.endswith("┌─ dwpw(48,1)#1") for line in lines)
    assert any(line.endswith("├─ dwpw(96,2)#2") for line in lines)  # one use ends where the next begins
    assert any(line.rstrip().endswith("└─") for line in lines)
    assert any("│ dw 3x3 stride 1 same bn relu6" in line for line in lines)


def test_ascii_merge_of_two_inputs():
    """A residual: the skipped output forks to a lane of its own and joins the add that reads it."""
    model = archdsl.loads("model m\ninput 8x8x3\nconv 3x3 4 same\nresidual {\n  conv 3x3 4 same\n"
                          "  conv 3x3 4 same\n}\nrelu\ngap\n")
    assert model.layers[3].inputs == (3, 1)
    lines = ascii_backend.draw(model, archdsl.analyze(model)).splitlines()
    rails = [line[:4].rstrip() for line in lines[2:-2]]
    assert rails == ["●", "●", "│", "├─╮", "● │", "● │", "├─╯", "●", "│", "●", "●"]
    assert "│ residual add  (inputs 3, 1)" in lines[9]


def test_ascii_parallel_branches_join_the_concat():
    model, analysis = _load("examples/inception_cifar.arch")
    lines = ascii_backend.draw(model, analysis).splitlines()
    concat = next(i for i, line in enumerate(lines) if "parallel concat  (inputs 2, 4, 7, 9)" in line)
    assert lines[concat - 1].startswith("├─┴─┴─╯")
    assert lines[concat].startswith("●")


def test_ascii_fallback_for_plain_terminals():
    model, analysis = _load("examples/mobilenet_tiny.arch")
    plain = ascii_backend.to_plain_ascii(ascii_backend.draw(model, analysis))
    assert plain.isascii()
    assert "+- dwpw(48,1)#1" in plain and "*   2  | dw 3x3 stride 1" in plain
