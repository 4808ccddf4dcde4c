"""User text made safe for a report page: SVG from graphviz, and text in Markdown; and for a terminal.

User text (layer names, comments, file paths, a run's metrics) reaches reports in many
places. The HTML template autoescapes, so what needs care is what it takes as `Markup`
(graphviz' SVG: `sanitize_svg`) and the Markdown template, which has no escaping of its own
(`md_text`, `md_code`, `md_fence`, registered as its filters). A name printed on a terminal
(a path, a class folder) goes through `terminal_text`.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from markupsafe import Markup

from .display import terminal_text  # noqa: F401  (callers print through it from here)
from .errors import RunError

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
_SVG_ELEMENTS = {"svg", "g", "title", "desc", "path", "polygon", "polyline", "ellipse", "circle", "rect", "line",
                 "text", "tspan", "a"}
_SVG_ATTRIBUTES = {"width", "height", "viewBox", "id", "class", "transform", "fill", "stroke", "stroke-width",
                   "stroke-dasharray", "stroke-opacity", "fill-opacity", "points", "d", "x", "y", "x1", "y1", "x2",
                   "y2", "cx", "cy", "r", "rx", "ry", "text-anchor", "font-family", "font-size", "font-weight",
                   "font-style", "text-decoration", "opacity", "xlink:title", "target", "preserveAspectRatio"}


def sanitize_svg(svg: str, css_class: str | None = None) -> Markup:
    """SVG text re-serialised from its parse tree, keeping only drawing elements and attributes.

    Whatever text graphviz put in (user text it was given), the result has no script, no
    event handler, no link and no foreign content: only the allowed elements and
    attributes survive, and the serialiser escapes every text and attribute value.
    """
    root = ET.fromstring(svg.encode("utf-8"))

    def clean(element: ET.Element) -> ET.Element | None:
        tag = _local(element.tag)
        if tag not in _SVG_ELEMENTS:
            return None
        out = ET.Element(tag)
        for name, value in element.attrib.items():
            name = "xlink:" + _local(name) if name.startswith("{" + XLINK_NS + "}") else _local(name)
            if name in _SVG_ATTRIBUTES and "javascript:" not in value.lower().replace(" ", ""):
                out.set(name, value)
        out.text = element.text
        for child in element:
            kept = clean(child)
            if kept is not None:
                kept.tail = child.tail
                out.append(kept)
        return out

    cleaned = clean(root)
    if cleaned is None or cleaned.tag != "svg":
        raise RunError("the diagram is not an SVG picture", code="E543")
    cleaned.set("xmlns", SVG_NS)
    cleaned.set("xmlns:xlink", XLINK_NS)
    if css_class:
        cleaned.set("class", css_class)
    return Markup(ET.tostring(cleaned, encoding="unicode"))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
# what makes a line a heading, quote, list item or rule (`---`, `===` under a line); `*` is escaped anyway
_MD_BLOCK_START = re.compile(r"^(?:[#>+=-]|\d{1,9}(?=[.)]))")


def md_text(value, at_line_start: bool = True) -> str:
    """Text shown as is in Markdown (GitHub), inline: the punctuation of emphasis, code, links, tables
    and strike-through is backslash-escaped, `&` and `<` become entities (so no raw HTML), line breaks
    become spaces, and a leading `#`, `>`, `-`, `+`, `=` or `1.` is escaped, so the text stays inline
    where a template puts it at a line's start (or after `> `, `- `). In a table cell or after other
    text on its line nothing can start a block: `at_line_start=False` leaves `0.5` as it is."""
    text = " ".join(str(value).replace("&", "&amp;").replace("<", "&lt;").split())
    text = _MD_SPECIAL.sub(lambda m: "\\" + m.group(1), text)
    if not at_line_start:
        return text
    # escaping the marker (or, after digits, the `.`/`)`) renders the same character
    return _MD_BLOCK_START.sub(lambda m: m.group(0) + "\\" if m.group(0)[0].isdigit() else "\\" + m.group(0),
                               text, count=1)


def md_code(value, in_table: bool = True) -> str:
    """Inline code in Markdown: a fence longer than any backtick run inside. In a table cell `|` is
    escaped (GitHub splits table cells before it reads code spans); elsewhere a backslash in a code
    span shows as itself, so `in_table=False` leaves `|` alone."""
    text = " ".join(str(value).split())
    if in_table:
        text = text.replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_fence(value) -> str:
    """A fenced code block around `value`, its fence longer than any backtick run inside."""
    text = str(value).rstrip("\n")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


