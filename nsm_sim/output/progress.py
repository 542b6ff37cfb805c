"""Progress and messages on standard error: the stages of a command, warnings."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
)
from rich.text import Text


class _Seconds(ProgressColumn):
    """Seconds since the task started."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.elapsed or 0:.0f} s", style="progress.elapsed")


class _CountedBar(BarColumn):
    """A bar, only for a task that counts its steps."""

    def render(self, task: Task) -> Any:
        return super().render(task) if task.total else Text("")


class _Count(MofNCompleteColumn):
    """``done/total``, only for a task that counts its steps."""

    def render(self, task: Task) -> Text:
        return super().render(task) if task.total else Text("")


class Stages:
    """Progress of a command on stderr: a line per stage with the seconds it took.

    Use as a context manager; :meth:`start` begins a stage (and ends the one before it with
    a line saying how long it took), :meth:`advance` moves the running stage's bar. On a
    terminal the running stage is shown live with a spinner and its elapsed seconds.

    Parameters
    ----------
    err : rich.console.Console
        Standard error.
    quiet : bool
        Show nothing (``--json``).
    """

    def __init__(self, err: Console, quiet: bool = False):
        self._err = err
        self._quiet = quiet
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            _CountedBar(),
            _Count(),
            _Seconds(),
            console=err,
            transient=True,
            disable=quiet or not err.is_terminal,
        )
        self._task: Any = None
        self._label = ""
        self._started = 0.0

    def __enter__(self) -> Stages:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._end(done=kind is None)
        self._progress.stop()

    def _end(self, done: bool = True) -> None:
        if self._task is None:
            return
        self._progress.remove_task(self._task)
        self._task = None
        if done and not self._quiet:
            seconds = time.perf_counter() - self._started
            self._err.print(Text(f"{self._label} ({seconds:.0f} s)"))

    def start(self, label: str) -> None:
        """End the running stage, if any, and start ``label``."""
        self._end()
        self._label = label
        self._started = time.perf_counter()
        self._task = self._progress.add_task(escape(label), total=None)

    def advance(self, done: int, total: int) -> None:
        """Show that the running stage has done ``done`` of ``total`` steps."""
        if self._task is not None:
            self._progress.update(self._task, completed=done, total=total)


def announce_first_compile(err: Console, compiledir: Path, quiet: bool = False) -> None:
    """Say that the models are compiled once, if the compile cache holds no module yet.

    Parameters
    ----------
    err : rich.console.Console
        Standard error.
    compiledir : Path
        PyTensor's compile directory (``pytensor.config.compiledir``).
    quiet : bool
        Say nothing.
    """
    if quiet or any(compiledir.glob("tmp*/*.so")):
        return
    err.print(Text(f"compiling the models once; later runs reuse them from {compiledir}"))


def render_warnings(err: Console, warnings: Sequence[str]) -> None:
    """Print each warning on its own line, after ``warning:``.

    Parameters
    ----------
    err : rich.console.Console
        Standard error.
    warnings : sequence of str
        A fit's or a panel's warnings.
    """
    for text in warnings:
        err.print(Text.assemble(("warning:", "yellow"), f" {text}"), soft_wrap=True)
