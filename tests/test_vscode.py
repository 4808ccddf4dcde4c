"""editors/vscode: the VS Code extension's manifest agrees with its files and with archdsl, and its TextMate
grammar gives the repository's specs the scopes they must have (VS Code's own tokenizer, run by Node:
editors/vscode/test/grammar.test.js, after `npm ci` in editors/vscode, which .ci/run does)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from archdsl.ir import ACTIVATIONS
from archdsl.language.options import OPTION_WORDS, written_ops

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = ROOT / "editors" / "vscode"
GRAMMAR = json.loads((EXTENSION / "syntaxes" / "arch.tmLanguage.json").read_text(encoding="utf-8"))
MANIFEST = json.loads((EXTENSION / "package.json").read_text(encoding="utf-8"))


def alternation(pattern: str, after: str) -> set[str]:
    """The words of the `(a|b|c)` group that follows `after` in a grammar pattern."""
    group = re.search(re.escape(after) + r"\(([a-z0-9|]+)\)", pattern)
    assert group, f"no ({after}...) group in {pattern!r}"
    return set(group.group(1).split("|"))


def test_the_grammar_knows_every_op_and_option_of_the_registry():
    repo = GRAMMAR["repository"]
    assert alternation(repo["layer"]["begin"], "*)\\s*)?") == set(written_ops())
    arguments = [p["match"] for p in repo["arguments"]["patterns"] if "match" in p]
    activations = alternation(arguments[0], "\\b")
    options = alternation(arguments[1], "\\b")
    assert activations == set(ACTIVATIONS)
    assert options | activations == set(OPTION_WORDS)


def test_the_manifest_names_its_files_and_starts_archdsl_lsp():
    contributes = MANIFEST["contributes"]
    [language] = contributes["languages"]
    [grammar] = contributes["grammars"]
    assert language["id"] == grammar["language"] == "arch" and language["extensions"] == [".arch"]
    assert grammar["scopeName"] == GRAMMAR["scopeName"] == "source.arch"
    for file in (grammar["path"], language["configuration"], MANIFEST["main"]):
        assert (EXTENSION / file).is_file(), file
    assert MANIFEST["activationEvents"] == ["onLanguage:arch"]
    assert contributes["configuration"]["properties"]["archdsl.server.command"]["default"] == ["archdsl", "lsp"]
    configuration = json.loads((EXTENSION / language["configuration"]).read_text(encoding="utf-8"))
    assert configuration["comments"]["lineComment"] == "#"


def test_the_grammar_scopes_the_specs():
    node = shutil.which("node")
    if node is None or not (EXTENSION / "node_modules" / "vscode-textmate").is_dir():
        if os.environ.get("CI"):
            pytest.fail("CI must run the grammar test: node and `npm ci` in editors/vscode (.ci/run does it)")
        pytest.skip("node, or the extension's npm packages (npm ci in editors/vscode), are not installed")
    done = subprocess.run([node, "test/grammar.test.js"], cwd=EXTENSION, capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("grammar ok: ")
