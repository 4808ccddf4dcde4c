"""The examples in the docs are real: they resolve, and their asserts hold."""
import re
from pathlib import Path

import archdsl
from archdsl.analysis import check_assertions

ROOT = Path(__file__).resolve().parent.parent


def test_language_doc_first_example_resolves_and_holds():
    text = (ROOT / "docs/language.md").read_text()
    first = re.findall(r"```\n(.*?)```", text, re.S)[0]
    analysis = archdsl.analyze(archdsl.loads(first))
    assert all(r.ok for r in check_assertions(analysis))


def test_language_doc_block_example_resolves():
    text = (ROOT / "docs/language.md").read_text()
    block = next(b for b in re.findall(r"```\n(.*?)```", text, re.S) if b.startswith("block dwpw"))
    model = archdsl.loads("input 32x32x3\n" + block)
    assert [l.op for l in model.layers] == ["dw", "conv"] * 4


def test_language_doc_graph_example_resolves():
    text = (ROOT / "docs/language.md").read_text()
    block = next(b for b in re.findall(r"```\n(.*?)```", text, re.S) if b.startswith("residual {"))
    model = archdsl.loads("input 32x32x3\n" + block)
    assert [l.op for l in model.layers if l.op in ("add", "concat")] == ["add", "concat"]
    assert model.layers[-1].output_shape == (16, 16, 128)
