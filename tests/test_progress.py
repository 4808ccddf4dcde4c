"""archdsl.training.progress: a terminal's redrawn line, a log's few lines, and the stages of a first load."""
from __future__ import annotations

import io
import re

import pytest

from test_data import make_folder, make_targz

from archdsl.training import progress
from archdsl.training.data import load_dataset
from archdsl.training.progress import Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def stage(stream: io.StringIO, clock: FakeClock, terminal: bool, *args, **kwargs) -> Progress:
    return Progress(*args, stream=stream, clock=clock, terminal=terminal, **kwargs)


# --- a log (not a terminal) -----------------------------------------------------------------

def test_a_log_gets_a_line_every_five_seconds_and_a_final_one():
    out, clock = io.StringIO(), FakeClock()
    with stage(out, clock, False, "decoding images", 1_000_000) as bar:
        for _ in range(1_000_000):  # 1 ms each: 1000 s in all
            clock.now += 0.001
            bar.advance()
    lines = out.getvalue().splitlines()
    # a line is due 5 s after the last one: at most 1000 / 5 of them, then the final line
    assert 150 <= len(lines) <= 201
    assert "\r" not in out.getvalue()
    assert lines[-1] == "decoding images: 100%, 1,000,000/1,000,000 images, 1,000/s, 1000.0 s, done"
    assert lines[0] == "decoding images: 0%, 5,000/1,000,000 images, 1,000/s, 5.0 s"


def test_a_stage_shorter_than_the_interval_prints_only_its_final_line():
    out, clock = io.StringIO(), FakeClock()
    with stage(out, clock, False, "unpacking pets.tar.gz", 3 * 2**20, unit="bytes", items="members") as bar:
        for members in range(1, 28):
            clock.now += 0.01
            bar.update(members * 2**20 // 9, members)
    # 27 members, 3 MiB in 0.27 s: 11.1 MiB/s
    assert out.getvalue() == "unpacking pets.tar.gz: 100%, 3.0/3.0 MiB, 27 members, 11.1 MiB/s, 0.3 s, done\n"


def test_a_failed_stage_leaves_no_final_line_in_a_log():
    out, clock = io.StringIO(), FakeClock()
    with pytest.raises(ValueError), stage(out, clock, False, "decoding images", 10) as bar:
        bar.advance(3)
        raise ValueError("a bad image")
    assert out.getvalue() == ""


# --- a terminal -----------------------------------------------------------------------------

def test_a_terminal_line_is_redrawn_in_place_at_most_ten_times_a_second(monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    out, clock = io.StringIO(), FakeClock()
    with stage(out, clock, True, "decoding images", 1000) as bar:
        for _ in range(1000):  # 1 ms each: 1 s in all
            clock.now += 0.001
            bar.advance()
    text = out.getvalue()
    assert text.startswith("\r") and text.endswith("\n") and text.count("\n") == 1
    draws = text[1:-1].split("\r")
    assert 5 <= len(draws) <= 12  # the first at once, then one each 0.1 s, then the final one
    assert draws[0] == "decoding images [--------------------] 0% 0/1,000 images, 0.0 s"
    assert draws[-1] == "decoding images [####################] 100% 1,000/1,000 images, 1,000/s, 1.0 s, done"
    assert draws[len(draws) // 2].startswith("decoding images [##########")  # the bar fills as it goes


def test_a_narrow_terminal_gets_lines_that_fit(monkeypatch):
    monkeypatch.setenv("COLUMNS", "50")
    out, clock = io.StringIO(), FakeClock()
    with stage(out, clock, True, "unpacking a-very-long-archive-name.tar.gz", 10 * 2**20, unit="bytes",
               items="members") as bar:
        for members in range(1, 101):
            clock.now += 0.1
            bar.update(members * 2**20 // 10, members)
    draws = out.getvalue().rstrip("\n").split("\r")[1:]
    assert all(len(d) <= 49 for d in draws), draws  # a wrapped line would not be redrawn in place
    # the bar goes, the name is shortened, then the members and rate go too
    assert draws[0] == "unpacking...: 0%, 0.0/10.0 MiB, 0.0 s"
    assert draws[1] == "unpacking...: 1%, 0.1/10.0 MiB, 0.1 s"
    assert draws[-1] == "unpacking...: 100%, 10.0/10.0 MiB, 10.0 s, done"


def test_a_terminal_too_narrow_for_the_bar_keeps_the_whole_name(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    out, clock = io.StringIO(), FakeClock()
    with stage(out, clock, True, "unpacking cifar10-jpg.tar.gz", 18 * 2**20, unit="bytes", items="members") as bar:
        for members in range(1, 60_024):
            clock.now += 0.0001
            bar.update(members * 18 * 2**20 // 60_023, members)
    draws = out.getvalue().rstrip("\n").split("\r")[1:]
    assert all(len(d) <= 99 for d in draws)
    assert draws[0].startswith("unpacking cifar10-jpg.tar.gz [---")  # until the members and rate come
    assert all(d.startswith("unpacking cifar10-jpg.tar.gz: ") for d in draws[1:])
    assert draws[-1] == "unpacking cifar10-jpg.tar.gz: 100%, 18.0/18.0 MiB, 60,023 members, 3.0 MiB/s, 6.0 s, done"
    assert draws[-1].endswith(", done")


def test_a_shorter_line_is_padded_over_what_the_longer_one_left(monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    out, clock = io.StringIO(), FakeClock()
    bar = stage(out, clock, True, "decoding images", 10_000)
    clock.now += 1
    bar.update(1000)  # ... 1,000/s, 1.0 s
    clock.now += 199
    bar.update(1001)  # ... 5/s, 200.0 s: two characters shorter
    assert out.getvalue().split("\r")[1:] == [
        "decoding images [##------------------] 10% 1,000/10,000 images, 1,000/s, 1.0 s",
        "decoding images [##------------------] 10% 1,001/10,000 images, 5/s, 200.0 s  "]


def test_a_failed_stage_ends_the_terminal_line_without_done():
    out, clock = io.StringIO(), FakeClock()
    with pytest.raises(ValueError), stage(out, clock, True, "decoding images", 10) as bar:
        bar.advance(3)
        raise ValueError("a bad image")
    assert out.getvalue().endswith("\n") and "done" not in out.getvalue()


# --- both -----------------------------------------------------------------------------------

def test_show_off_prints_nothing(monkeypatch):
    monkeypatch.setattr(progress, "SHOW", False)
    out, clock = io.StringIO(), FakeClock()
    for terminal in (True, False):
        with stage(out, clock, terminal, "decoding images", 10) as bar:
            clock.now += 60
            bar.advance(10)
    progress.note("cached", stream=out)
    assert out.getvalue() == ""


def test_control_characters_in_a_stage_or_note_are_escaped():
    out, clock = io.StringIO(), FakeClock()
    with stage(out, clock, False, "unpacking x\x1b[2J\n.tar.gz", 1):
        pass
    progress.note("cached as /tmp/\x1b]0;title\x07.npz", stream=out)
    assert out.getvalue().splitlines() == ["unpacking x\\x1b[2J\\n.tar.gz: 0%, 0/1 images, 0.0 s, done",
                                           "cached as /tmp/\\x1b]0;title\\x07.npz"]


def test_an_unknown_total_shows_the_count_only():
    out, clock = io.StringIO(), FakeClock()
    with stage(out, clock, False, "reading", None, unit="files") as bar:
        clock.now += 2
        bar.advance(50)
    assert out.getvalue() == "reading: 50 files, 25/s, 2.0 s, done\n"


# --- a first load and a cached one ----------------------------------------------------------

def stages(text: str) -> list[str]:
    """Each line's stage: what comes before its first ':' or ' ' + digit."""
    return [re.split(r":| \d", line, maxsplit=1)[0] for line in text.splitlines()]


def test_a_folder_shows_its_stages_on_first_load_and_nothing_once_cached(tmp_path, capsys):
    root = make_folder(tmp_path / "pets")  # 3 classes: 4 train and 2 test images each
    load_dataset(root, tmp_path / "cache")
    first = capsys.readouterr()
    assert first.out == ""
    assert stages(first.err) == ["decoding images", "cached"]
    assert first.err.splitlines()[0].startswith("decoding images: 100%, 18/18 images, ")
    npz = next((tmp_path / "cache" / "decoded").iterdir())
    assert re.fullmatch(rf"cached 18 decoded images as {re.escape(str(npz))} \(0\.0 MiB, \d+\.\d s\)",
                        first.err.splitlines()[1])
    load_dataset(root, tmp_path / "cache")
    assert capsys.readouterr().err == ""


def test_an_archive_shows_hashing_unpacking_and_the_headers_a_limit_reads(tmp_path, capsys):
    archive = make_targz(tmp_path / "pets.tar.gz", make_folder(tmp_path / "pets"), "pets")
    load_dataset(archive, tmp_path / "cache", limit=3, test_limit=3)
    err = capsys.readouterr().err
    assert stages(err) == ["hashing pets.tar.gz", "unpacking pets.tar.gz", "reading image headers",
                           "decoding images", "cached"]
    lines = err.splitlines()
    size = archive.stat().st_size / 2**20
    assert lines[0].startswith(f"hashing pets.tar.gz: 100%, {size:.1f}/{size:.1f} MiB, ")
    # pets/, train/ and test/, 3 class folders in each, 18 images: 27 members
    assert lines[1].startswith(f"unpacking pets.tar.gz: 100%, {size:.1f}/{size:.1f} MiB, 27 members, ")
    assert lines[2].startswith("reading image headers: 100%, 18/18 images, ")
    assert lines[3].startswith("decoding images: 100%, 6/6 images, ")
    assert lines[4].startswith("cached 6 decoded images as ")
    load_dataset(archive, tmp_path / "cache", limit=3, test_limit=3)
    assert capsys.readouterr().err == ""


@pytest.mark.tf
def test_train_verbose_0_loads_without_progress_and_only_for_that_command(tmp_path, capsys):
    from archdsl.cli import main
    root = make_folder(tmp_path / "pets", shape=(8, 8, 3))  # 3 classes of 8x8 images
    spec = tmp_path / "t.arch"
    spec.write_text("input 8x8x3\nclasses 3\nconv 3x3 4 same relu\ngap\ndense classes softmax\n"
                    "train {\n  epochs 1\n  batch 4\n}\n")
    common = ["train", str(spec), "--data", str(root), "--out", str(tmp_path / "runs")]
    assert main([*common, "--data-dir", str(tmp_path / "quiet"), "--verbose", "0"]) == 0
    assert "decoding images" not in capsys.readouterr().err
    assert progress.VERBOSE  # back as it was, for what the process does next
    assert main([*common, "--data-dir", str(tmp_path / "loud"), "--verbose", "2"]) == 0
    assert stages(capsys.readouterr().err)[:2] == ["decoding images", "cached"]
