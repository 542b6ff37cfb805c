"""Plan against actual: ``nsm-sim track SCENARIO --fit DIR --data PANEL``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nsm_sim.cli.app import (
    FitDir,
    Json,
    OutDir,
    ScenarioFile,
    Seed,
    Simulations,
    Verbose,
    check_choice,
    check_out,
    command,
    emit_json,
    guard,
)
from nsm_sim.files import write_files
from nsm_sim.output import terminal

#: The forecast's series a plan can be tracked against.
SERIES = ("portfolio", "baseline")


@command()
@guard
def track(
    scenario_file: ScenarioFile,
    fit_dir: FitDir,
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="The panel as it stands now (CSV or Parquet): the fitted periods and the "
            "newer ones.",
        ),
    ],
    series: Annotated[
        str,
        typer.Option(
            help="Track the forecast with the scenario's initiatives (portfolio) or with "
            "none (baseline)."
        ),
    ] = "portfolio",
    simulations: Simulations = 4000,
    seed: Seed = 0,
    out: OutDir = None,
    json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Compare the periods that arrived since the fit with the forecast: which input moved first."""
    from nsm_sim.data import load_panel
    from nsm_sim.forecast import forecast_fit
    from nsm_sim.models import inference
    from nsm_sim.output.tracking import render_tracking, tracking_files
    from nsm_sim.spec import load_scenario
    from nsm_sim.track import track as run

    check_choice("--series", series, SERIES)
    check_out(out)
    scenario = load_scenario(scenario_file)
    fitted = inference.load_bundle(fit_dir, tree=scenario.tree)
    panel = load_panel(data, scenario.tree)
    err = terminal.console(stderr=True)
    terminal.render_warnings(err, fitted.warnings)
    with terminal.Stages(err, quiet=json) as stages:
        stages.start(f"forecasting {scenario.name} from the fit: {simulations:,} simulations")
        fc = forecast_fit(
            scenario,
            fitted,
            each=False,
            simulations=simulations,
            seed=seed,
            progress=stages.advance,
        )
        stages.start("comparing the newer periods with the forecast")
        tracking = run(fc, panel, series=series)
    if out is not None:
        write_files(out, tracking_files(tracking))
    if json:
        emit_json(tracking.to_dict())
        return
    render_tracking(terminal.console(), tracking, scenario.tree.north_star)
