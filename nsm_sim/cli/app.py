"""The application, its shared options, and the boundary that turns errors into exit codes."""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from nsm_sim.errors import DiagnosticsError, InputError
from nsm_sim.files import check_output, dumps
from nsm_sim.output import notes, terminal

warnings.filterwarnings("ignore", message=".*BLAS.*", category=UserWarning)


def _hide_flag_types(params: list[Any]) -> None:
    """Show boolean flags as plain flags: no ``<bool>`` type beside them in the help."""
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""


class _Group(typer.core.TyperGroup):
    """The application, whose help shows its flags without a ``<bool>`` type."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _hide_flag_types(self.get_params(ctx))
        super().format_help(ctx, formatter)


class _Command(typer.core.TyperCommand):
    """A command whose help shows its flags without a ``<bool>`` type."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _hide_flag_types(self.get_params(ctx))
        super().format_help(ctx, formatter)


app = typer.Typer(
    name="nsm-sim",
    cls=_Group,
    help=(
        "North Star Metric engine: is the North Star leading, what drives it, and which "
        "initiatives to fund. Start with `nsm-sim demo`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Largest seed (seeds are unsigned 32-bit integers).
MAX_SEED = 2**32 - 1


command = functools.partial(app.command, cls=_Command)

Seed = Annotated[
    int,
    typer.Option(
        min=0, max=MAX_SEED, help="Random seed, 0 to 4294967295; the same seed, the same numbers."
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
OutDir = Annotated[
    Path | None, typer.Option("--out", help="Folder for CSV, JSON, PNG and HTML outputs.")
]
FitDir = Annotated[Path, typer.Option("--fit", help="Fit bundle folder written by `nsm-sim fit`.")]
Simulations = Annotated[
    int, typer.Option("--simulations", min=100, help="Monte Carlo simulations.")
]
Sampler = Annotated[str, typer.Option(help="NUTS back-end: nutpie (default, faster) or pymc.")]
TreeFile = Annotated[
    Path, typer.Argument(help="Metric-tree file (models/NAME.yaml), with or without events.")
]
ScenarioFile = Annotated[Path, typer.Argument(help="Scenario file (scenarios/NAME.yaml).")]
PanelFile = Annotated[
    Path | None,
    typer.Option(
        "--data", help="Panel, CSV or Parquet (not needed when the tree builds it from events)."
    ),
]
Engine = Annotated[
    str,
    typer.Option(
        "--engine",
        help="Query engine that builds the panel from the tree's events: duckdb (embedded) or "
        "spark (the extra).",
    ),
]
Verbose = Annotated[
    bool,
    typer.Option("--verbose", help="Also show library warnings and logs, and the lag convention."),
]


def guard(run: Callable[..., Any]) -> Callable[..., Any]:
    """Turn domain errors into exit codes at the boundary, never a traceback.

    Library warnings raised meanwhile become notes on stderr (all of them with ``--verbose``).
    """

    @functools.wraps(run)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        err = terminal.console(stderr=True)
        verbose = bool(kwargs.get("verbose", False))
        try:
            with notes.listening(verbose) as caught:
                try:
                    return run(*args, **kwargs)
                finally:
                    notes.render_notes(err, caught, verbose)
        except InputError as exc:
            err.print(Text.assemble(("error:", "bold red"), " ", exc.message), soft_wrap=True)
            raise typer.Exit(2) from None
        except DiagnosticsError as exc:
            err.print(Text.assemble(("diagnostics failed:", "bold red"), f" {exc}"), soft_wrap=True)
            raise typer.Exit(3) from None
        except KeyboardInterrupt:
            err.print("interrupted: the outputs are left as they were")
            raise typer.Exit(130) from None

    return wrapper


def emit_json(payload: Any) -> None:
    """Print ``payload`` as JSON on stdout (see :func:`nsm_sim.files.dumps`)."""
    sys.stdout.write(dumps(payload) + "\n")


def check_choice(flag: str, value: str, choices: tuple[str, ...]) -> None:
    """Refuse an option value that is not one of ``choices`` (exit code 2)."""
    if value not in choices:
        expected = ", ".join(choices[:-1]) + f" or {choices[-1]}"
        raise InputError(flag, [f"expected {expected}, got {value!r}"])


def check_out(out: Path | None, *, folder: bool = True) -> None:
    """Refuse an ``--out`` that cannot be written, before any work (exit code 2)."""
    if out is not None:
        check_output(out, folder=folder)


def enforce(checks: Any, strict: bool) -> None:
    """Raise DiagnosticsError (exit code 3) under ``--strict`` when a trust gate failed."""
    failed = checks[checks["status"] == "FAIL"]
    if strict and len(failed):
        where = [c for c in ("metric", "fit") if c in failed]
        names = [" ".join(str(row[c]) for c in [*where, "check"]) for _, row in failed.iterrows()]
        raise DiagnosticsError(", ".join(names))


def now() -> str:
    """Return the time stamp of a report's footer (UTC, to the minute)."""
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def announce_first_compile(err: Any, quiet: bool) -> None:
    """Say once that the models are compiled, when PyTensor's compile cache is empty."""
    import pytensor

    terminal.announce_first_compile(err, Path(pytensor.config.compiledir), quiet)
