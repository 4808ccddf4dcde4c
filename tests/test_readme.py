"""The README's examples are what the commands print today.

They drifted once (the spec gained a header comment and a train section, and the README's table
kept the old line numbers), so each shown output is compared with a real run of the command.
"""
import re
from pathlib import Path

from archdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def shown_output(command: str) -> str:
    """The text the README shows under `$ COMMAND`, up to the end of its code block."""
    match = re.search(re.escape(f"$ {command}\n") + r"(.*?)```", README, re.S)
    assert match, f"README shows no `$ {command}`"
    return match.group(1)


def run(capsys, monkeypatch, folder: Path, *argv: str) -> str:
    monkeypatch.chdir(folder)  # the commands name their files as given, relative to here
    main(list(argv))
    captured = capsys.readouterr()
    return captured.out + captured.err


def test_rf_table_is_the_real_one(capsys, monkeypatch):
    assert run(capsys, monkeypatch, ROOT, "rf", "specs/best.arch") == shown_output("archdsl rf specs/best.arch")


def test_listed_spec_is_specs_best_less_its_comments_and_train_section():
    listing = re.search(r"```\n# specs/best.arch[^\n]*\n(.*?)```", README, re.S).group(1)
    spec = (ROOT / "specs/best.arch").read_text()
    spec = spec[:spec.index("train {")]
    written = [line for line in spec.splitlines() if not line.startswith("#")]
    assert listing.strip() == "\n".join(written).strip()


def test_typo_example_is_the_real_message(capsys, monkeypatch, tmp_path):
    # The README shows line 2 of typo.arch; line 1 is an input line, as any spec starts.
    (tmp_path / "typo.arch").write_text("input 32x32x3\nsepp 3x3 64 same drop .05 bn rleu\n")
    assert run(capsys, monkeypatch, tmp_path, "check", "typo.arch") == shown_output("archdsl check typo.arch")


def test_ascii_drawing_starts_as_shown(capsys, monkeypatch):
    shown = re.search(r"`archdsl draw specs/base.arch --format ascii`[^`]*```\n(.*?)```", README, re.S).group(1)
    shown = shown.removesuffix("...\n")
    drawn = run(capsys, monkeypatch, ROOT, "draw", "specs/base.arch", "--format", "ascii")
    assert shown and shown in drawn


def test_export_snippet_is_in_the_export(capsys, monkeypatch, tmp_path):
    snippet = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    run(capsys, monkeypatch, ROOT, "export", "specs/best.arch", "--to", "keras", "-o", str(tmp_path / "best.py"))
    assert snippet in (tmp_path / "best.py").read_text()


def test_layout_names_every_module_of_the_tree():
    """The README's layout section is the tree: every package and module is named under its package, and every
    name it gives exists."""
    block = README.split("## Layout", 1)[1].split("```", 2)[1]
    named: dict[str, set[str]] = {}
    package = None
    for line in block.splitlines():
        words = line.split()
        if not words:
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:  # archdsl/ itself, or a folder beside it
            package = None if words[0] != "archdsl/" else ""
            continue
        if indent == 2:  # a package of archdsl, or modules of archdsl itself
            package = words[0].rstrip("/") if words[0].endswith("/") else ""
        if package is not None:  # its modules, on its line, its items' lines and their continuations
            named.setdefault(package, set()).update(re.findall(r"\b([a-z_]+\.(?:py|lark))\b", line))
    tree: dict[str, set[str]] = {}
    for path in (ROOT / "archdsl").rglob("*"):
        if path.suffix in (".py", ".lark") and path.parent.name != "templates":
            package = path.parent.relative_to(ROOT / "archdsl").as_posix()
            tree.setdefault("" if package == "." else package, set()).add(path.name)
    for package in tree:
        tree[package].discard("__init__.py")
        named.setdefault(package, set()).discard("__init__.py")
    assert named == tree
