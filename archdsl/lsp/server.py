"""The language server: pygls glue between the editor and document.py / features.py.

Every open buffer is read by the front end at most once a version, in a worker thread (the server keeps
answering while a long spec is read), and a reading is shared by every request about that text.
Diagnostics wait until typing pauses (DEBOUNCE) and are published only for the buffer's newest text.
A handler that fails logs the error to the editor (window/logMessage) and answers nothing: the server
keeps serving.
"""
from __future__ import annotations

import asyncio
import functools
import os
import traceback
from concurrent.futures import ThreadPoolExecutor

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from ..errors import ArchError, Span
from ..fileio import shown_path
from ..language.formatter import format_spec
from ..language.choices import resolve_first
from ..version import __version__
from . import features
from .document import Problem, Reading, code_point_index, read, span_range, utf16_column

DEBOUNCE = 0.2  # seconds without an edit before a buffer's diagnostics are computed
SEVERITY = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning}
COMPLETION_KIND = {"op": types.CompletionItemKind.Function, "block": types.CompletionItemKind.Class,
                   "keyword": types.CompletionItemKind.Keyword, "option": types.CompletionItemKind.Property,
                   "activation": types.CompletionItemKind.EnumMember, "setting": types.CompletionItemKind.Field,
                   "parameter": types.CompletionItemKind.Variable, "choice": types.CompletionItemKind.Variable}
SYMBOL_KIND = {"block": types.SymbolKind.Class, "layer": types.SymbolKind.Function,
               "residual": types.SymbolKind.Namespace, "parallel": types.SymbolKind.Namespace,
               "train": types.SymbolKind.Object}


class ArchServer(LanguageServer):
    def __init__(self):
        super().__init__("archdsl", __version__)
        self._readings: dict[str, tuple[str, asyncio.Future]] = {}   # uri -> (text, its reading)
        self._pending: dict[str, asyncio.Task] = {}                  # uri -> diagnostics waiting for a pause
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archdsl-read")

    def file_name(self, uri: str) -> str:
        """The buffer's name in messages: its path from the workspace root (as `archdsl check` run there names
        it), else its whole path, else the URI."""
        path = self.workspace.get_text_document(uri).path or uri
        root = self.workspace.root_path
        if root and os.path.isabs(path) and os.path.commonpath([os.path.abspath(root), path]) == os.path.abspath(root):
            path = os.path.relpath(path, root)
        return shown_path(path)

    async def reading(self, uri: str) -> Reading:
        """The reading of the buffer's current text: the one made already, or one made now in the worker."""
        while True:
            text = self.workspace.get_text_document(uri).source
            cached = self._readings.get(uri)
            if cached is None or cached[0] != text:
                if cached is not None:
                    cached[1].cancel()  # an older text's reading not yet started is not started (typing fast)
                future = asyncio.get_running_loop().run_in_executor(self._reader, read, text, self.file_name(uri))
                cached = self._readings[uri] = (text, future)
            try:
                return await asyncio.shield(cached[1])  # a cancelled request leaves the reading to the others
            except asyncio.CancelledError:
                if not cached[1].cancelled():
                    raise  # the request itself was cancelled
                # its reading was dropped for a newer text: answer from that one

    def schedule_diagnostics(self, uri: str) -> None:
        if task := self._pending.pop(uri, None):
            task.cancel()
        self._pending[uri] = asyncio.ensure_future(self._publish_after_pause(uri))

    async def _publish_after_pause(self, uri: str) -> None:
        await asyncio.sleep(DEBOUNCE)
        try:
            reading = await self.reading(uri)
        except Exception as exc:  # noqa: BLE001 - a bug of ours: said, and the server goes on
            self.log_error(f"reading {uri}", exc)
            return
        if uri not in self._readings or self.workspace.get_text_document(uri).source != reading.text:
            return  # edited (or closed) meanwhile: the newer text's own run publishes
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
            uri=uri, diagnostics=[diagnostic(p) for p in reading.problems]))

    def forget(self, uri: str) -> None:
        if task := self._pending.pop(uri, None):
            task.cancel()
        self._readings.pop(uri, None)
        self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    def report_server_error(self, error: Exception, source) -> None:
        """pygls' own errors (a message it cannot read or send) are logged too, not shown as pop-ups."""
        self.log_error(f"pygls ({getattr(source, '__name__', source)})", error)

    def log_error(self, what: str, exc: BaseException) -> None:
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.window_log_message(types.LogMessageParams(
            type=types.MessageType.Error, message=f"archdsl lsp: {what} failed (a bug: please report it)\n{detail}"))


def diagnostic(p: Problem) -> types.Diagnostic:
    return types.Diagnostic(
        range=types.Range(types.Position(p.line, p.start), types.Position(p.line, p.end)),
        message=p.message + (f"\nhint: {p.hint}" if p.hint else ""),
        severity=SEVERITY[p.severity], code=p.code, source="archdsl")


server = ArchServer()


def guarded(what: str, default=None):
    """A handler whose failure is logged to the editor and answered with `default`."""
    def wrap(handler):
        @functools.wraps(handler)
        async def run(ls: ArchServer, params):
            try:
                return await handler(ls, params)
            except Exception as exc:  # noqa: BLE001 - never a dead server
                ls.log_error(what, exc)
                return default
        return run
    return wrap


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
@guarded("didOpen")
async def did_open(ls: ArchServer, params: types.DidOpenTextDocumentParams):
    ls.schedule_diagnostics(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
@guarded("didChange")
async def did_change(ls: ArchServer, params: types.DidChangeTextDocumentParams):
    ls.schedule_diagnostics(params.text_document.uri)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
@guarded("didClose")
async def did_close(ls: ArchServer, params: types.DidCloseTextDocumentParams):
    ls.forget(params.text_document.uri)


async def _at(ls: ArchServer, params) -> tuple[Reading, int, int]:
    """The reading, and the position as a 1-based line and a code-point index."""
    reading = await ls.reading(params.text_document.uri)
    line = params.position.line
    text = reading.lines[line] if line < len(reading.lines) else ""
    return reading, line + 1, code_point_index(text, params.position.character)


@server.feature(types.TEXT_DOCUMENT_HOVER)
@guarded("hover")
async def hover(ls: ArchServer, params: types.HoverParams):
    reading, line, index = await _at(ls, params)
    text = features.hover(reading, line, index)
    if text is None:
        return None
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text))


@server.feature(types.TEXT_DOCUMENT_INLAY_HINT)
@guarded("inlayHint", [])
async def inlay_hint(ls: ArchServer, params: types.InlayHintParams):
    reading = await ls.reading(params.text_document.uri)
    hints = []
    for line, label in features.inlay_hints(reading, params.range.start.line + 1, params.range.end.line + 1):
        end = utf16_column(reading.lines[line - 1], len(reading.lines[line - 1]))
        hints.append(types.InlayHint(position=types.Position(line - 1, end), label=label, padding_left=True))
    return hints


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[" "]))
@guarded("completion", [])
async def completion(ls: ArchServer, params: types.CompletionParams):
    reading, line, index = await _at(ls, params)
    return [types.CompletionItem(label=c.label, kind=COMPLETION_KIND[c.kind], detail=c.detail or None)
            for c in features.complete(reading, line, index)]


@server.feature(types.TEXT_DOCUMENT_FORMATTING)
@guarded("formatting", [])
async def formatting(ls: ArchServer, params: types.DocumentFormattingParams):
    """The whole buffer as `archdsl fmt` prints it; nothing for a spec that is not valid (fmt refuses it)."""
    reading = await ls.reading(params.text_document.uri)
    loop = asyncio.get_running_loop()
    formatted = await loop.run_in_executor(ls._reader, _formatted, reading)
    if formatted is None or formatted == reading.text:
        return []
    lines = reading.lines
    end = types.Position(len(lines) - 1, utf16_column(lines[-1], len(lines[-1])))
    return [types.TextEdit(range=types.Range(types.Position(0, 0), end), new_text=formatted)]


def _formatted(reading: Reading) -> str | None:
    if reading.spec is None:
        return None
    if reading.analysis is None:  # it did not resolve, or resolved and failed its analysis (a merge's jumps)
        try:
            resolve_first(reading.spec)  # only valid specs are formatted, as by `archdsl fmt`
        except ArchError:
            return None
    return format_spec(reading.spec)


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
@guarded("documentSymbol", [])
async def document_symbol(ls: ArchServer, params: types.DocumentSymbolParams):
    reading = await ls.reading(params.text_document.uri)
    return [_symbol(s, reading.lines) for s in features.symbols(reading)]


def _symbol(s: features.Symbol, lines: tuple[str, ...]) -> types.DocumentSymbol:
    last = lines[s.end_line - 1] if s.end_line <= len(lines) else ""
    whole = types.Range(types.Position(s.line - 1, 0), types.Position(s.end_line - 1, utf16_column(last, len(last))))
    first = lines[s.line - 1]
    name = types.Range(types.Position(s.line - 1, 0), types.Position(s.line - 1, utf16_column(first, len(first))))
    return types.DocumentSymbol(name=s.name, kind=SYMBOL_KIND[s.kind], range=whole, selection_range=name,
                                children=[_symbol(c, lines) for c in s.children] or None)


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
@guarded("definition")
async def definition(ls: ArchServer, params: types.DefinitionParams):
    reading, line, index = await _at(ls, params)
    name = features.block_at(reading, line, index)
    block = features.blocks_of(reading).get(name) if name else None
    return _location(params.text_document.uri, block.name.span, reading) if block else None


@server.feature(types.TEXT_DOCUMENT_REFERENCES)
@guarded("references", [])
async def references(ls: ArchServer, params: types.ReferenceParams):
    reading, line, index = await _at(ls, params)
    name = features.block_at(reading, line, index)
    if name is None:
        return []
    spans = features.block_spans(reading, name, params.context.include_declaration)
    return [_location(params.text_document.uri, span, reading) for span in spans]


def _location(uri: str, span: Span, reading: Reading) -> types.Location:
    line, start, end = span_range(span, reading.text)
    return types.Location(uri=uri, range=types.Range(types.Position(line, start), types.Position(line, end)))


def main() -> None:
    """Serve over stdin and stdout until the editor says exit."""
    server.start_io()
