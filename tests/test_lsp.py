"""`archdsl lsp` end to end: a real client (pytest-lsp) talks LSP over stdio to `python -m archdsl lsp`.

The truths are independent of the server: the golden bad specs' .expected files (what `archdsl check`
prints, read by eye when they were written) for diagnostics, `archdsl rf specs/best.arch` (the README's
table) for hover and inlay hints, `archdsl fmt`'s output for formatting, and the front end itself for
whether a completed option is accepted.
"""
from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from archdsl.display import terminal_text

ROOT = Path(__file__).resolve().parent.parent
BAD = ROOT / "tests" / "bad"
# not text an editor holds: no file, a folder, bytes that are not UTF-8 (the editor decodes them its own way)
NOT_BUFFERS = {"missing", "directory", "invalid_utf8"}

lsp = pytest.mark.asyncio(loop_scope="module")  # one server (and event loop) for the module


async def _start(lsp_client: LanguageClient):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("neovim@v0.11.0"), root_uri=ROOT.as_uri()))
    yield
    await lsp_client.shutdown_session()


client = pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-m", "archdsl", "lsp"]), scope="module", name="client")(_start)

# a server whose hover handler is broken, as a bug would break it: it must log the error and keep serving
FAULTY = ("import archdsl.lsp.features as features\n"
          "def broken(*args): raise ZeroDivisionError('injected by tests/test_lsp.py')\n"
          "features.hover = broken\n"
          "from archdsl.lsp.server import main\n"
          "main()\n")
faulty_client = pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[sys.executable, "-c", FAULTY]), scope="module", name="faulty_client")(_start)


def uri_of(name: str) -> str:
    return (ROOT / name).as_uri()


async def open_and_wait(client: LanguageClient, uri: str, text: str, timeout: float = 60) -> list:
    client.diagnostics.pop(uri, None)
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="arch", version=1, text=text)))
    deadline = time.monotonic() + timeout
    while uri not in client.diagnostics:
        assert time.monotonic() < deadline, f"no diagnostics for {uri} within {timeout} s"
        await asyncio.sleep(0.02)
    return list(client.diagnostics[uri])


def close(client: LanguageClient, uri: str) -> None:
    client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri=uri)))


def code_points(line: str, utf16: int) -> int:
    """The code-point index of a UTF-16 offset (the test's own count)."""
    units = 0
    for i, char in enumerate(line):
        if units == utf16:
            return i
        units += len(char.encode("utf-16-le")) // 2
    return len(line) + (utf16 - units)


# --- the golden bad specs: the CLI's messages, codes and carets -------------------------------------------

HEADER = re.compile(r"^(?:(?P<file>\S+):(?P<line>\d+):(?P<col>\d+): )?error\[(?P<code>E\d{3})\]: (?P<message>.*)$")
CARET = re.compile(r"^  +\| (?P<pad> *)(?P<carets>\^+)$")


def expected_errors(name: str) -> list[tuple]:
    """(code, line, column, caret width, message, hint) of each error in NAME.expected; line, column and
    width None for a whole-file error."""
    found = []
    for text in (BAD / f"{name}.expected").read_text(encoding="utf-8").splitlines()[1:]:
        if m := HEADER.match(text):
            where = (int(m["line"]), int(m["col"])) if m["line"] else (None, None)
            found.append([m["code"], *where, None, m["message"], None])
        elif (m := CARET.match(text)) and found:
            found[-1][3] = len(m["carets"])
        elif text.startswith("  hint: ") and found:
            found[-1][5] = text[len("  hint: "):]
    return [tuple(f) for f in found]


def cases() -> list[str]:
    return sorted(p.stem for p in BAD.glob("*.expected") if p.stem not in NOT_BUFFERS)


def test_the_golden_corpus_is_there():
    assert len(cases()) >= 100
    assert NOT_BUFFERS <= {p.stem for p in BAD.glob("*.expected")}


@lsp
async def test_diagnostics_of_every_golden_bad_spec_equal_the_cli(client: LanguageClient):
    """Every case at once (the server reads one buffer after the other): the same errors, in the same order,
    at the same line and column with the same caret width, with the same message and hint."""
    texts = {name: (BAD / f"{name}.arch").read_text(encoding="utf-8") for name in cases()}
    for name in texts:
        client.diagnostics.pop(uri_of(f"tests/bad/{name}.arch"), None)
    got = await asyncio.gather(*(open_and_wait(client, uri_of(f"tests/bad/{name}.arch"), text, timeout=120)
                                 for name, text in texts.items()))
    mismatches = []
    for (name, text), diagnostics in zip(texts.items(), got):
        close(client, uri_of(f"tests/bad/{name}.arch"))
        lines = text.split("\n")
        actual = []
        for d in diagnostics:
            assert d.severity == types.DiagnosticSeverity.Error and d.source == "archdsl"
            message, _, hint = d.message.partition("\nhint: ")
            r = d.range
            assert r.start.line == r.end.line
            if (r.start.line, r.start.character, r.end.character) == (0, 0, 0) and code_is_whole_file(name, d.code):
                actual.append((d.code, None, None, None, terminal_text(message), terminal_text(hint) or None))
                continue
            line_text = lines[r.start.line].removesuffix("\r")
            start, end = code_points(line_text, r.start.character), code_points(line_text, r.end.character)
            actual.append((d.code, r.start.line + 1, start + 1, end - start, terminal_text(message),
                           terminal_text(hint) or None))
        expected = expected_errors(name)
        if text.startswith("\ufeff"):  # the buffer holds the byte order mark; the CLI's columns do not count it
            expected = [(e[0], e[1], e[2] + 1, *e[3:]) if e[1] == 1 else e for e in expected]
        if actual != expected:
            mismatches.append((name, actual, expected))
    assert not mismatches, "\n".join(f"{n}:\n  lsp {a}\n  cli {e}" for n, a, e in mismatches[:5])


def code_is_whole_file(name: str, code: str) -> bool:
    return any(e[0] == code and e[1] is None for e in expected_errors(name))


@lsp
async def test_a_warning_is_a_warning_with_its_range(client: LanguageClient):
    # the README's example: layers 4-5 of 3x3 convs on a 4x4 input see all of it already (W301 on line 5)
    text = "input 4x4x1\n" + "conv 3x3 4 same\n" * 5
    [d] = await open_and_wait(client, uri_of("deep.arch"), text)
    close(client, uri_of("deep.arch"))
    assert (d.code, d.severity) == ("W301", types.DiagnosticSeverity.Warning)
    assert (d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character) == (4, 0, 4, 4)
    assert d.message.startswith("layers 4-5 (conv 3x3 4 same): every unit of each one's input")
    assert "\nhint: downsample earlier" in d.message


@lsp
async def test_ranges_count_utf16_units(client: LanguageClient):
    # 😀 is one code point, two UTF-16 units: the CLI's caret is under column 11 (code points), one wide
    text = "input 32x32x3\n# café ☕\nsep 3x3 8 😀😀 relu\n"
    [d] = await open_and_wait(client, uri_of("emoji.arch"), text)
    close(client, uri_of("emoji.arch"))
    assert d.code == "E103" and d.message.startswith("unexpected character '😀'")
    assert (d.range.start.line, d.range.start.character, d.range.end.character) == (2, 10, 12)


@lsp
async def test_failed_asserts_on_their_line(client: LanguageClient):
    text = (ROOT / "specs/best.arch").read_text(encoding="utf-8").replace("params <= 80k", "params <= 70k")
    diagnostics = await open_and_wait(client, uri_of("specs/tight.arch"), text)
    close(client, uri_of("specs/tight.arch"))
    line = text.split("\n").index("assert params <= 70k")
    assert [(d.code, d.range.start.line, d.range.start.character, d.range.end.character) for d in diagnostics] \
        == [("E301", line, 0, 6)]
    assert diagnostics[0].message.startswith("assert params <= 70k does not hold: params is 76,995")


class Recording(dict):
    """The client's diagnostics, keeping every publication in order."""

    def __init__(self, *args):
        super().__init__(*args)
        self.published = []

    def __setitem__(self, uri, diagnostics):
        self.published.append((uri, diagnostics))
        super().__setitem__(uri, diagnostics)


@lsp
async def test_the_newest_text_wins(client: LanguageClient):
    uri = uri_of("typing.arch")
    await open_and_wait(client, uri, "input 32x32x3\nsepp 3x3 8\n")
    client.diagnostics = Recording(client.diagnostics)  # the client stores each publication there
    client.diagnostics.pop(uri)
    for version, text in enumerate(["input 32x32x3\nsep 3x3 8 smae\n", "input 32x32x3\nsep 3x3 8 same\nmaxpol\n",
                                    "input 32x32x3\nsep 3x3 8 same\n"], start=2):
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))
    while uri not in client.diagnostics:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)  # anything published later would be of an older text
    published = [list(d) for u, d in client.diagnostics.published if u == uri]
    close(client, uri)
    assert published == [[]]  # three edits within the pause: one publication, of the newest text


# --- hover, inlay hints: specs/best.arch against `archdsl rf specs/best.arch` ------------------------------

BEST = ROOT / "specs/best.arch"


async def open_best(client: LanguageClient) -> str:
    await open_and_wait(client, BEST.as_uri(), BEST.read_text(encoding="utf-8"))
    return BEST.as_uri()


@lsp
async def test_hover_on_a_layer_line_shows_its_row(client: LanguageClient):
    uri = await open_best(client)
    # line 13 (0-based 12): the table's row 2; the op word also gets the registry's line
    hover = await client.text_document_hover_async(types.HoverParams(
        types.TextDocumentIdentifier(uri=uri), types.Position(line=12, character=1)))
    text = hover.contents.value
    assert text.startswith("**sep**: a separable convolution (depthwise, then 1x1)")
    assert "| 2 | `sep 3x3 16 same drop 0.05 bn relu` | 32x32x16 | 5 | 1 | 0 | 464 | 409,600 |" in text
    # line 17, on an option: the strided layer's row only
    hover = await client.text_document_hover_async(types.HoverParams(
        types.TextDocumentIdentifier(uri=uri), types.Position(line=16, character=12)))
    text = hover.contents.value
    assert "**sep**" not in text
    assert text.startswith("**s2** (an option of sep): stride 2")
    assert "| 6 | `sep 3x3 128 s2 same drop 0.1 bn relu` | 16x16x128 | 13 | 2 | 1 | 9,280 | 2,244,608 |" in text
    # gap: global, no rf of its own
    hover = await client.text_document_hover_async(types.HoverParams(
        types.TextDocumentIdentifier(uri=uri), types.Position(line=22, character=5)))
    assert "| 12 | `gap` | 10 | global |  |  | 0 | 0 |" in hover.contents.value
    # a comment line has nothing to say
    assert await client.text_document_hover_async(types.HoverParams(
        types.TextDocumentIdentifier(uri=uri), types.Position(line=0, character=3))) is None


@lsp
async def test_inlay_hints_at_the_end_of_each_layer_line(client: LanguageClient):
    uri = await open_best(client)
    lines = BEST.read_text(encoding="utf-8").split("\n")
    hints = await client.text_document_inlay_hint_async(types.InlayHintParams(
        types.TextDocumentIdentifier(uri=uri), types.Range(types.Position(0, 0), types.Position(len(lines), 0))))
    by_line = {h.position.line + 1: h.label for h in hints}
    assert sorted(by_line) == list(range(12, 26))  # the 14 layer lines, none elsewhere
    assert by_line[12] == "32x32x16 · rf 3 · 139 params"
    assert by_line[13] == "32x32x16 · rf 5 · 464 params"
    assert by_line[17] == "16x16x128 · rf 13 · 9,280 params"
    assert by_line[22] == "10x10x10 · rf 33 · 3,688 params"
    assert by_line[23] == "10 · global · 0 params"
    assert all(h.position.character == len(lines[h.position.line]) for h in hints)
    # a range asks for its lines only
    some = await client.text_document_inlay_hint_async(types.InlayHintParams(
        types.TextDocumentIdentifier(uri=uri), types.Range(types.Position(15, 0), types.Position(16, 0))))
    assert [h.position.line for h in some] == [15, 16]


@lsp
async def test_a_block_use_line_shows_its_expansion(client: LanguageClient):
    # examples/resnet8.arch, as `archdsl rf` tables it: `stack(32, 2)` (line 25) is layers 6-10, params
    # 4,768 + 9,376 + 544 + 0 + 0, ending in relu at 16x16x32, rf 13; `stack(64, 2)` layers 11-15, ending 8x8x64, rf 25
    path = ROOT / "examples/resnet8.arch"
    lines = path.read_text(encoding="utf-8").split("\n")
    await open_and_wait(client, path.as_uri(), "\n".join(lines))
    hints = await client.text_document_inlay_hint_async(types.InlayHintParams(
        types.TextDocumentIdentifier(uri=path.as_uri()), types.Range(types.Position(24, 0), types.Position(25, 0))))
    assert [(h.position.line, h.label) for h in hints] == [
        (24, "5 layers · 16x16x32 · rf 13 · 14,688 params"), (25, "5 layers · 8x8x64 · rf 25 · 58,048 params")]
    hover = await client.text_document_hover_async(types.HoverParams(
        types.TextDocumentIdentifier(uri=path.as_uri()), types.Position(line=24, character=2)))
    close(client, path.as_uri())
    text = hover.contents.value
    assert text.startswith("**block stack**(c, s): defined on line 9; here 5 layers (#6 to #10), 14,688 params")
    assert "| 8 | `conv 1x1 32 stride 2 same bias` | 16x16x32 | 7 | 2 | 0 | 544 | 131,072 |" in text


# --- completion --------------------------------------------------------------------------------------------

async def completions(client: LanguageClient, uri: str, text: str, line: int, character: int) -> list[str]:
    await open_and_wait(client, uri, text)
    result = await client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(uri=uri), types.Position(line, character)))
    close(client, uri)
    items = result.items if isinstance(result, types.CompletionList) else result
    return [item.label for item in items]


@lsp
async def test_completion_offers_the_options_the_op_accepts(client: LanguageClient):
    text = "input 32x32x8\nsep 3x3 64 \n"
    labels = await completions(client, uri_of("c1.arch"), text, 1, len("sep 3x3 64 "))
    assert {"same", "valid", "dm", "s2", "d2", "drop", "bn", "relu", "swish"} <= set(labels)
    assert "groups" not in labels and "whiten" not in labels  # conv's, not sep's
    labels = await completions(client, uri_of("c2.arch"), "input 32x32x8\nconv 3x3 64 sa\n", 1, len("conv 3x3 64 sa"))
    assert {"same", "groups", "whiten"} <= set(labels) and "dm" not in labels
    labels = await completions(client, uri_of("c3.arch"), "input 32x32x8\nmaxpool \n", 1, len("maxpool "))
    assert {"same", "valid", "s2"} <= set(labels) and not {"d2", "dm", "groups"} & set(labels)


@lsp
async def test_completion_at_a_line_start_offers_ops_and_blocks(client: LanguageClient):
    text = "input 32x32x8\nblock stage(c) {\n  conv 3x3 c same\n}\n\n"
    labels = await completions(client, uri_of("c4.arch"), text, 4, 0)
    assert {"sep", "conv", "maxpool", "gap", "drop", "relu", "stage", "residual", "assert"} <= set(labels)
    labels = await completions(client, uri_of("c5.arch"), text.replace("\n\n", "\n3 * \n"), 4, len("3 * "))
    assert {"sep", "stage"} <= set(labels)


@lsp
async def test_completion_in_a_block_use_offers_its_parameters(client: LanguageClient):
    text = "input 32x32x8\nblock stage(c, rate=.05) {\n  conv 3x3 c same drop rate\n}\nstage(\n"
    assert await completions(client, uri_of("c7.arch"), text, 4, len("stage(")) == ["c=", "rate="]
    typed = text.replace("stage(\n", "2 * stage(c=4, \n")
    assert await completions(client, uri_of("c8.arch"), typed, 4, len("2 * stage(c=4, ")) == ["rate="]


@lsp
async def test_completion_inside_train_offers_its_settings(client: LanguageClient):
    text = "input 32x32x3\nsep 3x3 8 same\ngap\ntrain {\n  lr 0.1\n  \n}\n"
    labels = await completions(client, uri_of("c6.arch"), text, 5, 2)
    assert {"lr", "epochs", "batch", "optimizer", "augment", "schedule"} <= set(labels)
    assert "sep" not in labels


@lsp
async def test_completion_offers_a_spaces_choices_where_values_go(client: LanguageClient):
    text = ("choose w in [16, 32]\nchoose rate in [0.1, 0.2]\ninput 32x32x3\nblock b(c) {\n  sep 3x3 c same\n}\n"
            "sep 3x3 \nb(\ngap\ntrain {\n  lr \n}\n")
    after_op = await completions(client, uri_of("c9.arch"), text, 6, len("sep 3x3 "))
    assert {"w", "rate", "same"} <= set(after_op)
    assert {"w", "rate"} <= set(await completions(client, uri_of("c10.arch"), text, 7, len("b(")))
    assert set(await completions(client, uri_of("c11.arch"), text, 10, len("  lr "))) == {"w", "rate"}
    # each offered name, written there, makes a space the front end accepts
    from archdsl.analysis.space import explore
    from archdsl.language.parser import parse
    filled = text.replace("sep 3x3 \n", "sep 3x3 w\n").replace("b(\n", "b(w)\n").replace("  lr \n", "  lr rate\n")
    assert len(explore(parse(filled, "c.arch")).feasible) == 4


@lsp
async def test_hover_on_a_choice_says_its_values_and_the_variant_shown(client: LanguageClient):
    # w=8 breaks no assert, w=4 is listed first but ruled out: the variant shown is w=8's
    text = "choose w in [4, 8]\ninput 8x8x3\nconv 3x3 w same\nassert params >= 150\n"  # w=4: 108 params
    uri = uri_of("h9.arch")
    await open_and_wait(client, uri, text)
    for line, character in ((0, 7), (2, 9)):   # the declaration, and a use
        result = await client.text_document_hover_async(types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line, character)))
        assert "**choice w**: 4, 8 (line 1); shown: w = 8" in result.contents.value
    # the row shown on the use's line is the w=8 variant's: 3*3*3*8 = 216 params (no bias by default), by hand
    result = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(2, 1)))
    assert "| 216 |" in result.contents.value and "8x8x8" in result.contents.value
    close(client, uri)


def test_every_offered_option_is_accepted_by_the_front_end():
    """Each option completion offers, written after its op's example line (with a value where it takes
    one), is a spec the front end accepts: completion never suggests a word the language refuses."""
    import archdsl
    from archdsl.lsp.features import option_completions
    from archdsl.ops import OPS
    values = {"drop": ".1", "stride": "2", "dilation": "2", "dm": "2", "groups": "2", "pad": "1"}
    refused = []
    for op in OPS.values():
        if not op.example:
            continue
        for item in option_completions(op.signature):
            word = item.label
            base = " ".join(w for w in op.example.split() if w == op.example.split()[0] or w[0] in "0123456789.")
            line = f"{base} {'bn ' if word in ('noscale', 'nocenter') and op.name != 'bn' else ''}{word}"
            line += f" {values[word]}" if word in values else ""
            head = "input 8x8x8\n" + ("gap\n" if op.name == "dense" else "")
            try:
                archdsl.loads(head + line + "\n")
            except archdsl.ArchError as error:
                refused.append(f"{line}: {error.message}")
    assert not refused, refused


# --- formatting, symbols, blocks ---------------------------------------------------------------------------

@lsp
async def test_formatting_gives_fmt_output_and_nothing_for_a_bad_spec(client: LanguageClient):
    uri = uri_of("fmt.arch")
    await open_and_wait(client, uri, "model  m\ninput   32x32x3\n\nsep   3x3 8  same  bn relu   # c\ngap\n")
    edits = await client.text_document_formatting_async(types.DocumentFormattingParams(
        types.TextDocumentIdentifier(uri=uri), types.FormattingOptions(tab_size=2, insert_spaces=True)))
    close(client, uri)
    [edit] = edits
    assert edit.new_text == "model m\ninput 32x32x3\n\nsep 3x3 8 same bn relu  # c\ngap\n"  # `archdsl fmt`'s
    assert (edit.range.start.line, edit.range.start.character) == (0, 0)
    uri = uri_of("fmt_bad.arch")
    await open_and_wait(client, uri, "input   32x32x3\nsepp   3x3 8\n")
    edits = await client.text_document_formatting_async(types.DocumentFormattingParams(
        types.TextDocumentIdentifier(uri=uri), types.FormattingOptions(tab_size=2, insert_spaces=True)))
    close(client, uri)
    assert not edits


@lsp
async def test_symbols_definition_and_references_of_blocks(client: LanguageClient):
    path = ROOT / "examples/resnet8.arch"
    uri = path.as_uri()
    lines = path.read_text(encoding="utf-8").split("\n")
    await open_and_wait(client, uri, "\n".join(lines))
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(
        types.TextDocumentIdentifier(uri=uri)))
    names = [s.name for s in symbols]
    assert names[:4] == ["block stack", "conv 3x3 16 same bias bn relu", "residual", "relu"]
    assert [c.name for c in symbols[0].children] == ["residual", "relu"]
    use = lines.index("stack(32, 2)")
    found = await client.text_document_definition_async(types.DefinitionParams(
        types.TextDocumentIdentifier(uri=uri), types.Position(use, 2)))
    assert (found.range.start.line, found.range.start.character, found.range.end.character) == (8, 6, 11)
    refs = await client.text_document_references_async(types.ReferenceParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(use, 2),
        context=types.ReferenceContext(include_declaration=True)))
    close(client, uri)
    assert sorted(r.range.start.line for r in refs) == [8, use, use + 1]


# --- a long spec, a broken handler --------------------------------------------------------------------------

@lsp
async def test_a_10000_line_spec_gets_its_diagnostics(client: LanguageClient):
    text = "input 32x32x3\n" + "conv 3x3 8 same bn relu  # one of many\n" * 9997 + "sepp 3x3 8\ngap\n"
    began = time.monotonic()
    diagnostics = await open_and_wait(client, uri_of("long.arch"), text, timeout=120)
    print(f"\n10,000-line spec: diagnostics after {time.monotonic() - began:.1f} s")
    hover = await client.text_document_hover_async(types.HoverParams(
        types.TextDocumentIdentifier(uri=uri_of("long.arch")), types.Position(line=9998, character=1)))
    assert [(d.code, d.range.start.line) for d in diagnostics] == [("E206", 9998)]
    assert hover is None or "sep" in hover.contents.value
    # typing at the end, a hover request after each key: the requests are answered from the newest text
    # (readings of texts already replaced are not started), and the diagnostics are the last text's
    uri, began, requests = uri_of("long.arch"), time.monotonic(), []
    for version, word in enumerate(["s", "se", "sep", "sep ", "sep 3x3 8", "sep 3x3 8 smae"], start=2):
        typed = text.replace("sepp 3x3 8\n", word + "\n")
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=typed)]))
        requests.append(client.text_document_hover_async(types.HoverParams(
            types.TextDocumentIdentifier(uri=uri), types.Position(line=5000, character=1))))
        await asyncio.sleep(0.05)
    client.diagnostics.pop(uri, None)
    hovers = await asyncio.gather(*requests)
    while uri not in client.diagnostics:
        await asyncio.sleep(0.02)
    print(f"6 edits of it, a hover after each: answered, and its diagnostics, after {time.monotonic() - began:.1f} s")
    # every text typed has an error, so no table: the op's line alone
    assert all(h.contents.value.startswith("**conv**: a convolution") and "| 5000 |" not in h.contents.value
               for h in hovers)
    assert [(d.code, d.range.start.line, d.range.start.character) for d in client.diagnostics[uri]] \
        == [("E210", 9998, 10)]
    close(client, uri)


@lsp
async def test_a_failing_handler_is_logged_and_the_server_keeps_serving(faulty_client: LanguageClient):
    uri = BEST.as_uri()
    await open_and_wait(faulty_client, uri, BEST.read_text(encoding="utf-8"))
    hover = await faulty_client.text_document_hover_async(types.HoverParams(
        types.TextDocumentIdentifier(uri=uri), types.Position(line=12, character=1)))
    assert hover is None
    logged = [m.message for m in faulty_client.log_messages if m.type == types.MessageType.Error]
    assert any("hover failed" in m and "ZeroDivisionError: injected by tests/test_lsp.py" in m for m in logged)
    # still serving: diagnostics of another buffer, completion
    [d] = await open_and_wait(faulty_client, uri_of("after.arch"), "input 32x32x3\nsepp 3x3 8\n")
    assert d.code == "E206"
    result = await faulty_client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(uri=uri_of("after.arch")), types.Position(1, 0)))
    assert "sep" in [item.label for item in result]


def test_without_pygls_the_command_says_how_to_install_it():
    code = ("import sys\nsys.modules['pygls'] = None  # as if the lsp extra were not installed\n"
            "from archdsl.cli import main\nsys.exit(main(['lsp']))\n")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error[E601]: `archdsl lsp` needs pygls and lsprotocol")
    assert 'hint: pip install -e ".[lsp]"' in done.stderr and "Traceback" not in done.stderr
