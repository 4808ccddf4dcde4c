"""Progress of the slow steps of a first load of data, on stderr: hashing and unpacking an archive,
reading the images' headers, decoding them, writing the cache.

    with Progress("unpacking pets.tar.gz", total=size, unit="bytes", items="members") as bar:
        for ...:
            bar.update(bytes_read, members)   # or bar.advance(n) to add n to a count
    note(f"cached ... as {shown_path(npz)}")

On a terminal (stderr is a tty) one line is redrawn in place with '\\r', at most every
REDRAW_SECONDS: the stage, a bar, the percent, done/total, the rate and the time so far; the
stage's end leaves it as a finished line. Anywhere else (a pipe, a nohup log) a line is written at
most every LOG_SECONDS, and one when the stage ends, so a long load adds a few lines to a log,
not one per file. An update costs a clock reading and a comparison; only a due line is formatted.

Every line goes through display.terminal_text: a stage names an archive, a note a path.
`SHOW = False` silences all of it (a program that embeds archdsl); `train --verbose 0` sets `VERBOSE = False`,
which silences it for that command.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO

from archdsl.display import terminal_text

SHOW = True  # False: no progress at all
VERBOSE = True  # the command's own choice (`train --verbose 0`): shown only when both are True
REDRAW_SECONDS = 0.1  # a terminal's line, redrawn in place
LOG_SECONDS = 5.0  # a log's lines: a 10-minute stage writes about 120
BAR_WIDTH = 20
MIB = 2**20
BAR, PLAIN, COMPACT = range(3)  # a line's forms: with a bar, without, without the members and rate too
SHORTEST_NAME = 12  # a stage name is shortened to no less (with its "...") before a form is dropped
SLACK = 12  # what a line may grow by as its numbers do (919 -> 60,023 members, 1% -> 100%, ", done")


class Progress:
    """One stage's progress: `total` things of `unit` ("bytes" is shown in MiB) to do, None if unknown;
    `items`, if given, names a second count shown beside it (the members of an archive read so far)."""

    def __init__(self, stage: str, total: int | None = None, unit: str = "images", items: str | None = None,
                 *, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
                 terminal: bool | None = None):
        self.stage, self.total, self.unit, self.items_name = terminal_text(stage), total, unit, items
        self.stream = sys.stderr if stream is None else stream  # looked up now: tests redirect sys.stderr
        self.terminal = _isatty(self.stream) if terminal is None else terminal
        self.show, self.clock = SHOW and VERBOSE, clock
        self.start = clock()
        self.every = REDRAW_SECONDS if self.terminal else LOG_SECONDS
        self.due = self.start if self.terminal else self.start + self.every  # a terminal shows 0% at once
        self.columns = _columns(self.stream) - 1 if self.terminal else 0  # the last column would wrap
        self.done, self.items, self.drawn, self.closed = 0, None, 0, False
        self.form, self.room = BAR, len(self.stage)  # on a terminal: what fits, see _fitted

    def update(self, done: int, items: int | None = None) -> None:
        """`done` of the total are done now (and `items` of the second count)."""
        self.done, self.items = done, items
        if self.show:
            now = self.clock()
            if now >= self.due:
                self._write(now, final=False)

    def advance(self, n: int = 1) -> None:
        self.update(self.done + n, self.items)

    def close(self, failed: bool = False) -> None:
        """End the stage: its final line, or on failure only the end of a terminal's line (the error
        that follows starts a line of its own)."""
        if self.closed or not self.show:
            return
        self.closed = True
        if not failed:
            self._write(self.clock(), final=True)
        elif self.terminal and self.drawn:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> Progress:
        if self.show and self.terminal:
            self._write(self.start, final=False)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(failed=exc_type is not None)

    def line(self, now: float, final: bool = False) -> str:
        """The stage's progress as of `now`: its name, a bar (on a terminal), the percent, the amount
        done, the rate and the time so far."""
        return self.stage + self._tail(now, final, BAR if self.terminal else PLAIN)

    def _tail(self, now: float, final: bool, form: int) -> str:
        elapsed = max(now - self.start, 0.0)
        parts = [self._amount()]
        if form != COMPACT and self.items_name is not None and self.items is not None:
            parts.append(f"{self.items:,} {self.items_name}")
        if form != COMPACT and elapsed > 0:
            rate = self.done / elapsed
            parts.append(f"{rate / MIB:.1f} MiB/s" if self.unit == "bytes" else f"{rate:,.0f}/s")
        parts.append(f"{elapsed:.1f} s" + (", done" if final else ""))
        if self.total is None:
            return ": " + ", ".join(parts)
        fraction = min(self.done / self.total, 1.0) if self.total else 1.0
        if form == BAR:
            filled = round(fraction * BAR_WIDTH)
            return f" [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {fraction:.0%} " + ", ".join(parts)
        return f": {fraction:.0%}, " + ", ".join(parts)

    def _amount(self) -> str:
        if self.unit == "bytes":
            total = f"/{self.total / MIB:.1f}" if self.total is not None else ""
            return f"{self.done / MIB:.1f}{total} MiB"
        total = f"/{self.total:,}" if self.total is not None else ""
        return f"{self.done:,}{total} {self.unit}"

    def _write(self, now: float, final: bool) -> None:
        if self.terminal:
            text = self._fitted(now, final)
            self.stream.write("\r" + text + " " * (self.drawn - len(text)) + ("\n" if final else ""))
            self.drawn = len(text)
        else:
            self.stream.write(self.line(now, final) + "\n")
        self.stream.flush()
        self.due = now + self.every

    def _fitted(self, now: float, final: bool) -> str:
        """The terminal's line within its width (a wrapped line is not redrawn in place): without the bar,
        then with the stage name shortened (once, leaving the numbers room to grow), then without the
        members and rate. What is dropped or shortened stays so: the line does not flicker."""
        tail = self._tail(now, final, self.form)
        while min(len(self.stage), self.room) + len(tail) > self.columns:
            if self.form == BAR:
                self.form = PLAIN
            else:
                room = self.columns - len(tail) - SLACK
                if room >= SHORTEST_NAME or self.form == COMPACT:
                    self.room = max(min(self.room, room), SHORTEST_NAME)
                    break
                self.form = COMPACT
            tail = self._tail(now, final, self.form)
        name = self.stage if len(self.stage) <= self.room else self.stage[:self.room - 3] + "..."
        return (name + tail)[:self.columns]


def note(text: str, stream: TextIO | None = None) -> None:
    """One line of progress (what a stage left behind), unless SHOW or VERBOSE is off."""
    if SHOW and VERBOSE:
        out = sys.stderr if stream is None else stream
        out.write(terminal_text(text) + "\n")
        out.flush()


def _columns(stream: TextIO) -> int:
    """The width of the terminal `stream` writes to: $COLUMNS, else its own (stdout may go to a file)."""
    text = os.environ.get("COLUMNS", "")
    if text.isdigit() and int(text) > 0:
        return int(text)
    try:
        return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):  # no file descriptor, or not a terminal after all
        return shutil.get_terminal_size().columns


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False
