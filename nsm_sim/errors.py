"""Errors that carry a message meant for the user.

Every error a user can fix by changing a file derives from :class:`InputError`; the CLI
turns it into exit code 2 and a message, never a traceback.
"""

from __future__ import annotations


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
