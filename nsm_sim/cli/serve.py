"""The planning page: ``nsm-sim serve SCENARIO [SCENARIO_B] --fit DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from nsm_sim.cli.app import FitDir, Seed, command, guard
from nsm_sim.output import terminal


def _check_port(host: str, port: int) -> None:
    """Refuse an address that cannot be listened on, before the bundle is read."""
    import socket

    from nsm_sim.errors import InputError

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise InputError(
            "--port", [f"cannot listen on {host}:{port}: {exc.strerror or exc}"]
        ) from None


@command()
@guard
def serve(
    scenarios: Annotated[
        list[Path],
        typer.Argument(help="Scenario file(s); a second one is compared side by side."),
    ],
    fit_dir: FitDir,
    host: Annotated[
        str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8765,
    simulations: Annotated[
        int,
        typer.Option(min=100, help="Monte Carlo simulations per edit (fewer, faster)."),
    ] = 500,  # nsm_sim.serve.PAGE_SIMULATIONS, not imported: the CLI starts light
    seed: Seed = 0,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Do not open the page in a browser.")
    ] = False,
) -> None:
    """Open the planning page: the tree, the initiatives editable, the results live."""
    from nsm_sim.errors import InputError
    from nsm_sim.serve import Planner
    from nsm_sim.serve import serve as run

    if len(scenarios) > 2:
        raise InputError("SCENARIOS", [f"expected one or two scenario files, got {len(scenarios)}"])
    _check_port(host, port)
    err = terminal.console(stderr=True)
    with terminal.Stages(err) as stages:
        stages.start(f"reading the fit bundle {fit_dir} and {len(scenarios)} scenario(s)")
        planner = Planner.open(scenarios, fit_dir, simulations=simulations, seed=seed)
        stages.start("simulating the scenario once")
        planner.results(0)
    warnings = list(planner.model.warnings)
    if host not in ("127.0.0.1", "localhost", "::1"):
        warnings.append(
            f"--host {host}: the page has no login; anyone who reaches this address can edit "
            "the scenarios and save them"
        )
    terminal.render_warnings(err, warnings)

    def ready(url: str) -> None:
        err.print(Text(f"Planning page on {url} (Ctrl+C to stop)"))

    try:
        run(planner, host, port, open_browser=not no_browser, on_ready=ready)
    except OSError as exc:
        raise InputError(
            "--port", [f"cannot listen on {host}:{port}: {exc.strerror or exc}"]
        ) from None
    except KeyboardInterrupt:
        err.print("stopped")
