"""Errors that carry a message meant for the user.

Every error a user can fix by changing a file derives from :class:`InputError`; the CLI
turns it into exit code 2 and a message, never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def hint(word: object, options: Iterable[object]) -> str:
    """Return a did-you-mean suffix for a message: the closest option to ``word``, or "".

    Parameters
    ----------
    word : object
        What the user wrote.
    options : iterable
        What would have been valid.

    Returns
    -------
    str
        ``" (did you mean 'x'?)"`` or ``""``.

    Examples
    --------
    >>> hint("north_stra", ["north_star", "inputs"])
    " (did you mean 'north_star'?)"
    """
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class InputError(Exception):
    """Bad input: a file, a field or a column that does not meet the contract.

    Parameters
    ----------
    source : str
        The file (or other source) at fault.
    problems : list of str
        One line per problem, each naming the field or column and what was expected.
    """

    def __init__(self, source: str, problems: list[str]):
        self.source = str(source)
        self.problems = list(problems)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The full message: the source, then one indented line per problem."""
        head = f"{self.source}: {len(self.problems)} problem(s)"
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])


class SpecError(InputError):
    """A metric-tree or scenario file that does not validate."""


class DataError(InputError):
    """A panel that breaks the data contract."""


class BundleError(InputError):
    """A fit bundle that is missing, damaged or does not match its scenario or tree."""


class DiagnosticsError(Exception):
    """Sampling diagnostics failed under ``--strict`` (exit code 3)."""
