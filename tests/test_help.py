"""`archdsl --help` and `archdsl COMMAND --help`: every command and option is described, the positional
arguments are named alike across commands (FILE, RUN_DIR, MODEL), `draw` says what it does without `-o`."""
from __future__ import annotations

import re

import pytest

from archdsl.cli import HANDLERS, main

# what a positional argument may be called: one name per kind
POSITIONAL_NAMES = {"FILE", "RUN_DIR", "RUN_DIR|MODEL"}


def help_of(capsys, monkeypatch, *command: str) -> str:
    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps to the terminal's width
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def entries(text: str) -> list[tuple[str, str]]:
    """(what, description) of each entry of the `positional arguments:` and `options:` sections; a description
    is on the entry's line after two spaces or more, or on the lines under it, indented further."""
    found: list[tuple[str, str]] = []
    section = None
    for line in text.splitlines():
        if line and not line.startswith(" "):
            section = line
        elif section in ("positional arguments:", "options:") and line.strip():
            if re.match(r"^  \S", line):
                what, _, description = line.strip().partition("  ")
                found.append((what, description.strip()))
            elif found:
                what, description = found[-1]
                found[-1] = (what, f"{description} {line.strip()}".strip())
    return found


def test_every_command_has_a_description(capsys, monkeypatch):
    text = help_of(capsys, monkeypatch)
    for command in HANDLERS:
        assert re.search(rf"^    {command} +\S", text, re.M), f"`{command}` is not described in archdsl --help"
    assert all(description for _, description in entries(text)), entries(text)


@pytest.mark.parametrize("command", list(HANDLERS))
def test_every_option_and_argument_of_a_command_is_described(capsys, monkeypatch, command):
    text = help_of(capsys, monkeypatch, command)
    usage, description = text.split("\n\n")[:2]
    assert usage.startswith(f"usage: archdsl {command} ")
    assert not description.startswith(("positional arguments:", "options:")), f"{command} has no description"
    found = entries(text)
    assert found
    for what, said in found:
        assert said, f"`archdsl {command} --help`: {what!r} has no description"
        if not what.startswith("-"):
            assert what in POSITIONAL_NAMES, f"`archdsl {command}`: positional {what!r}, not one of {POSITIONAL_NAMES}"


def test_draw_help_says_where_the_drawing_goes_and_which_extensions(capsys, monkeypatch):
    text = " ".join(help_of(capsys, monkeypatch, "draw").split())
    assert "without -o" in text
    for extension in (".svg", ".png", ".pdf", ".dot", ".txt"):
        assert extension in text


def test_rf_help_names_check_as_the_gate(capsys, monkeypatch):
    text = " ".join(help_of(capsys, monkeypatch, "rf").split())
    assert "`archdsl check FILE...` is the gate" in text


def test_fmt_takes_several_files_like_check(capsys, monkeypatch):
    assert "FILE [FILE ...]" in help_of(capsys, monkeypatch, "fmt")
    assert "FILE [FILE ...]" in help_of(capsys, monkeypatch, "check")
