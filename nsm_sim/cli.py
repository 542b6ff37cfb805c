"""The ``nsm-sim`` command line: a thin shell that parses, calls the Python API and renders.

Exit codes: 0 ok; 2 bad input (a message, no traceback); 3 failed diagnostics under
``--strict``; 1 a bug.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from nsm_sim import report
from nsm_sim.errors import DiagnosticsError, InputError

app = typer.Typer(
    name="nsm-sim",
    help=(
        "North Star Metric engine: is the North Star leading, what drives it, and which "
        "initiatives to fund. Start with `nsm-sim demo`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Seed = Annotated[int, typer.Option(help="Random seed; the same seed gives the same numbers.")]
Json = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
OutDir = Annotated[
    Path | None, typer.Option("--out", help="Folder for CSV, JSON, PNG and HTML outputs.")
]


def _guard(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn domain errors into exit codes at the boundary, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        err = report.console(stderr=True)
        try:
            return command(*args, **kwargs)
        except InputError as exc:
            err.print(f"[bold red]error:[/] {exc.message}", markup=True, soft_wrap=True)
            raise typer.Exit(2) from None
        except DiagnosticsError as exc:
            err.print(f"[bold red]diagnostics failed:[/] {exc}", soft_wrap=True)
            raise typer.Exit(3) from None

    return wrapper


def _emit_json(payload: Any) -> None:
    sys.stdout.write(report.dumps(payload) + "\n")


# --------------------------------------------------------------------------- generate


@app.command()
@_guard
def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the world into.")],
    accounts: Annotated[int, typer.Option(min=50, help="Accounts in the world.")] = 5000,
    periods: Annotated[int, typer.Option(min=8, help="Weekly periods.")] = 52,
    seed: Seed = 0,
    fmt: Annotated[
        str, typer.Option("--format", help="Panel file format: csv or parquet.")
    ] = "csv",
    json: Json = False,
) -> None:
    """Generate the built-in synthetic world: panel, tree.yaml and truth.json."""
    from nsm_sim import synth

    if fmt not in {"csv", "parquet"}:
        raise InputError("--format", [f"expected csv or parquet, got {fmt!r}"])
    world = synth.generate_world(accounts=accounts, periods=periods, seed=seed)
    paths = list(synth.write_world(world, out, fmt=fmt).values())
    rows, churned = len(world.panel), int(world.panel["churned"].sum())
    if json:
        _emit_json({"out": str(out), "files": [str(p) for p in paths], "rows": rows})
        return
    report.console().print(
        f"Wrote {rows:,} account-periods of {accounts:,} accounts x {periods} weeks "
        f"({churned:,} churned) to {out}/: " + ", ".join(Path(p).name for p in paths)
    )


# --------------------------------------------------------------------------- check


@app.command()
@_guard
def check(
    spec: Annotated[Path, typer.Argument(help="A metric-tree file or a scenario file (YAML).")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Panel (CSV or Parquet) to check against the tree."),
    ] = None,
    json: Json = False,
) -> None:
    """Validate a metric tree (and a panel against it) or a scenario; change nothing."""
    import yaml

    from nsm_sim import data as data_mod
    from nsm_sim import spec as spec_mod

    try:
        is_scenario = "initiatives" in (yaml.safe_load(spec.read_text()) or {})
    except (OSError, yaml.YAMLError, TypeError, AttributeError):
        is_scenario = False
    out = report.console()
    if is_scenario:
        if data is not None:
            raise InputError("--data", ["--data goes with a metric-tree file, not a scenario"])
        scenario = spec_mod.load_scenario(spec)
        summary = {
            "scenario": scenario.name,
            "tree": scenario.tree.name,
            "initiatives": len(scenario.initiatives),
            "total_effort": sum(i.effort for i in scenario.initiatives),
            "capacity": scenario.capacity,
            "horizon": scenario.horizon,
        }
        if json:
            _emit_json(summary)
            return
        out.print(
            f"[green]OK[/] scenario {scenario.name!r} on tree {scenario.tree.name!r}: "
            f"{summary['initiatives']} initiatives, total effort {summary['total_effort']:g} "
            f"for capacity {scenario.capacity:g}, horizon {scenario.horizon} periods"
        )
        return
    tree = spec_mod.load_tree(spec)
    summary: dict[str, Any] = {
        "tree": tree.name,
        "north_star": tree.north_star,
        "nodes": list(tree.nodes),
        "candidates": list(tree.candidates),
    }
    if data is None:
        if json:
            _emit_json(summary)
            return
        out.print(
            f"[green]OK[/] tree {tree.name!r}: North Star {tree.north_star!r}, "
            f"{len(tree.nodes) - 1} inputs, candidates: {', '.join(tree.candidates) or 'none'}"
        )
        return
    panel = data_mod.load_panel(data, tree)
    summary["data"] = data_mod.describe(panel)
    if json:
        _emit_json(summary)
        return
    d = summary["data"]
    out.print(f"[green]OK[/] {data} against tree {tree.name!r}")
    out.print(report.table(_describe_frame(d), "Panel"))
    if "metrics" in d:
        out.print(report.table(_metric_frame(d["metrics"]), "Metric ranges"))


def _describe_frame(d: dict[str, Any]):
    import pandas as pd

    rows = [(k, v) for k, v in d.items() if not isinstance(v, dict | list)]
    for k, v in d.items():
        if isinstance(v, dict) and k != "metrics":
            rows += [(f"{k}: {kk}", vv) for kk, vv in v.items()]
    return pd.DataFrame(rows, columns=["what", "value"]).astype({"value": "object"})


def _metric_frame(metrics: dict[str, Any]):
    import pandas as pd

    return pd.DataFrame([{"metric": m, **v} for m, v in metrics.items()])


def main() -> None:  # pragma: no cover - console entry point
    """Run the ``nsm-sim`` application."""
    app()
