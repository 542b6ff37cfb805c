"""Work in a second process while this one goes on, its warnings brought back.

Two stages that each keep about one core busy (the demo's fit and its validation; a
validation's metric fits and its threshold fits) take about as long as the longer of the two
on two cores. :func:`alongside` starts a picklable callable in a second process (``spawn``:
the same on every platform, nothing inherited but the arguments), lets the caller go on, and
hands back the result and the warnings the work raised, so they reach the caller's notes as if
raised here. The numbers are those of the same call in this process: each fit in nsm_sim has a
seed of its own.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


def _import(modules: tuple[str, ...]) -> None:
    for name in modules:
        importlib.import_module(name)


class SecondProcess:
    """A second process started ahead of its work, importing what the work needs meanwhile.

    A command that will hand work to :func:`alongside` can start it first thing, so that its
    imports (seconds, for PyMC and ArviZ) run beside the command's own instead of after them.
    Use it as a context manager: on leaving the block the process ends at once (its work,
    handed over by :func:`alongside`, is done by then, or no longer wanted).

    Parameters
    ----------
    modules : sequence of str
        Modules the second process imports while it waits for its work.
    """

    def __init__(self, modules: Sequence[str] = ()):
        context = multiprocessing.get_context("spawn")
        self.pool = context.Pool(1, initializer=_import, initargs=(tuple(modules),))

    def __enter__(self) -> SecondProcess:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.pool.terminate()  # not waiting for imports that no work came to use
        self.pool.join()


def _recording(work: Callable[[], T], verbose: bool) -> tuple[T, list[tuple[type, str]]]:
    from nsm_sim.output.notes import LIBRARY_LOGGERS

    if not verbose:
        for name in LIBRARY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = work()
    return value, [(m.category, str(m.message)) for m in caught]


@contextmanager
def alongside(
    work: Callable[[], T], *, second_process: bool | SecondProcess = True, verbose: bool = False
) -> Iterator[Callable[[], T]]:
    """Run ``work()`` in a second process while the block runs.

    Parameters
    ----------
    work : callable
        Takes no argument and can be pickled (a module-level function, or a
        :func:`functools.partial` of one).
    second_process : bool or SecondProcess, default True
        False runs ``work()`` in this process, when the result is asked for; a
        :class:`SecondProcess` runs it there (and stays open for its owner to close).
    verbose : bool, default False
        Leave the libraries' loggers of the second process as they are (by default only their
        errors get through).

    Yields
    ------
    callable
        ``result()`` waits for the work and returns its value; the warnings it raised in the
        second process are raised again here.
    """
    if not second_process:
        yield work
        return
    owned = not isinstance(second_process, SecondProcess)
    pool = multiprocessing.get_context("spawn").Pool(1) if owned else second_process.pool
    pending = pool.apply_async(_recording, (work, verbose))

    def result() -> Any:
        value, caught = pending.get()
        for category, message in caught:
            warnings.warn(message, category, stacklevel=2)
        return value

    try:
        yield result
    except BaseException:
        pool.terminate()  # the caller failed: its second process is not waited for
        pool.join()
        raise
    if owned:
        pool.close()
        pool.join()
