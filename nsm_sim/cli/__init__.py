"""The ``nsm-sim`` command line: a thin shell that parses, calls the Python API and renders.

Exit codes: 0 ok; 2 bad input (a message naming the file, the option, the field or column
and what was expected; no traceback), which includes an output that cannot be written and a
size beyond its limits, both found before any work; 3 failed diagnostics under ``--strict``;
130 interrupted (outputs left as they were); 1 a bug.

Every command checks its output path, then the sizes it was given against their limits
(:mod:`nsm_sim.limits`), before it reads a panel or samples; its outputs are then written
whole or not at all (:mod:`nsm_sim.files`). A fit's warnings (failed trust gates, doubts about
its panel) are printed on stderr by every command that uses it and carried in its JSON.
"""

# the commands are listed in the order they are registered: the evidence first
from nsm_sim.cli import evidence  # isort: split

from nsm_sim.cli import decisions, serve, track
from nsm_sim.cli.app import app

__all__ = ["app", "decisions", "evidence", "main", "serve", "track"]


def main() -> None:  # pragma: no cover - console entry point
    """Run the ``nsm-sim`` application."""
    app()
