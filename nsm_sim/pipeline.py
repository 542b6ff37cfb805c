"""The whole job in one call: fit, validate, simulate and prioritise, then the report's files.

``nsm-sim demo`` runs :func:`run_demo` on the built-in synthetic world; ``nsm-sim report`` runs
:func:`analyse` on a saved fit bundle with a user's scenario and panel. Everything the report
shows is computed here (or in the stages called from here); :mod:`nsm_sim.output` only lays
it out.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from nsm_sim.alongside import alongside
from nsm_sim.data import Panel
from nsm_sim.spec import Scenario

#: ``on_step(message)`` is told when each stage starts.
StepCallback = Callable[[str], None]

#: ``progress(done, total)`` is told how far the simulation has come.
ProgressCallback = Callable[[int, int], None]


@dataclass
class Analysis:
    """Everything the report shows.

    Attributes
    ----------
    fit : nsm_sim.models.inference.Fit
        The driver and retention fit.
    summaries : dict of pandas.DataFrame
        :func:`nsm_sim.models.inference.summarise` of the fit (``"drivers"``,
        ``"retention"``).
    retention_curve : pandas.DataFrame
        :func:`nsm_sim.models.retention.retention_curve` over the tree's retention horizon.
    validation : nsm_sim.leading.Validation or None
        Is the North Star leading (needs the panel).
    simulation : nsm_sim.simulate.SimulationResult or None
        The scenario's projection (needs a scenario).
    plan : nsm_sim.prioritise.Prioritisation or None
        Ranking, portfolio and value of information.
    forecast : nsm_sim.forecast.Forecast or None
        The North Star's aggregate with new accounts on calendar dates, without and with the
        chosen portfolio (needs a scenario and a fit with its history).
    target : dict or None
        :func:`nsm_sim.forecast.target_report` when a target is set: P(reaching it) without
        and with each initiative and the chosen portfolio, the gap, what it would take.
    files : list of Path
        The files written (by :func:`run_demo`; empty otherwise).
    """

    fit: Any
    summaries: dict[str, pd.DataFrame]
    retention_curve: pd.DataFrame
    validation: Any = None
    simulation: Any = None
    plan: Any = None
    forecast: Any = None
    target: Any = None
    files: list[Path] = field(default_factory=list)


def _quiet(_: str) -> None:
    return None


def simulate_scenario(
    scenario: Scenario,
    fit: Any,
    *,
    simulations: int = 4000,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> Any:
    """Project a scenario's initiatives through a fit's posterior.

    Parameters
    ----------
    scenario : Scenario
        The initiatives; its tree must be the fit's.
    fit : nsm_sim.models.inference.Fit
        A fit, fresh or loaded from a bundle.
    simulations : int, default 4000
        Monte Carlo simulations.
    seed : int, default 0
        Seed of the simulation.
    progress : callable, optional
        ``progress(done, total)`` as the simulation advances.

    Returns
    -------
    nsm_sim.simulate.SimulationResult
    """
    from nsm_sim import simulate

    posterior = simulate.posterior_draws(fit.idata, scenario.tree)
    return simulate.simulate(
        scenario, posterior, fit.population, simulations=simulations, seed=seed, progress=progress
    )


def analyse(
    fit: Any,
    *,
    panel: Panel | None = None,
    scenario: Scenario | None = None,
    simulations: int = 4000,
    seed: int = 0,
    sampler: str = "nutpie",
    validation: Any = None,
    on_step: StepCallback = _quiet,
    progress: ProgressCallback | None = None,
) -> Analysis:
    """Summarise a fit, validate the North Star, and simulate and prioritise a scenario.

    Parameters
    ----------
    fit : nsm_sim.models.inference.Fit
        A fit, fresh or loaded from a bundle.
    panel : Panel, optional
        The panel, for the validation; skipped when ``None``.
    scenario : Scenario, optional
        The initiatives, for simulation and prioritisation; skipped when ``None``.
    simulations : int, default 4000
        Monte Carlo simulations.
    seed : int, default 0
        Seed of the simulation and of the validation's fits.
    sampler : str
        NUTS back-end of the validation's fits.
    validation : nsm_sim.leading.Validation, optional
        The panel's validation, when it was computed already (``panel`` is then not
        validated again).
    on_step : callable
        Told the name of each stage as it starts.
    progress : callable, optional
        ``progress(done, total)`` during the simulation.

    Returns
    -------
    Analysis
    """
    from nsm_sim import leading, prioritise, simulate
    from nsm_sim.models import inference
    from nsm_sim.models.retention import retention_curve

    tree = fit.tree
    on_step("summarising the fit: elasticities and retention by North Star level")
    posterior = simulate.posterior_draws(fit.idata, tree)
    result = Analysis(
        fit=fit,
        summaries=inference.summarise(fit),
        retention_curve=retention_curve(posterior, fit.population, tree.retention_horizon),
    )
    if validation is not None:
        result.validation = validation
    elif panel is not None:
        on_step("validating the North Star against the candidates")
        result.validation = leading.validate(panel, seed=seed, sampler=sampler)
    if scenario is not None:
        on_step(f"simulating {len(scenario.initiatives)} initiatives x {simulations:,} simulations")
        result.simulation = simulate_scenario(
            scenario, fit, simulations=simulations, seed=seed, progress=progress
        )
        on_step("prioritising: ranking, portfolio, value of information")
        result.plan = prioritise.prioritise(result.simulation)
        if getattr(fit, "history", None) is not None:
            from nsm_sim import forecast

            on_step("forecasting the North Star with new accounts")
            result.forecast = forecast.forecast_fit(
                scenario,
                fit,
                portfolio=result.plan.portfolio.selected,
                simulations=simulations,
                seed=seed,
            )
            if result.forecast.target is not None:
                on_step("judging the target: P(reaching it), what it would take")
                result.target = forecast.target_report(result.forecast)
    return result


@contextmanager
def validating_alongside(
    panel: Panel, *, seed: int = 0, sampler: str = "nutpie", verbose: bool = False
) -> Iterator[Callable[[], Any]]:
    """Validate a panel in a second process while the caller goes on (the fit, say).

    The fit's sampler and the validation's each keep about one core busy, and each spends
    seconds importing and compiling that the other can use: on two cores the demo's fit and
    validation together take about as long as the longer of the two. With one core the
    validation runs when asked for, in this process. The numbers are the same either way (the
    same code and seed; :func:`nsm_sim.alongside.alongside`).

    Parameters
    ----------
    panel : Panel
    seed : int, default 0
    sampler : str, default "nutpie"
    verbose : bool, default False
        Leave the libraries' loggers of the second process as they are.

    Yields
    ------
    callable
        ``result()`` waits for the validation and returns it; the second process's warnings
        are raised again in this one, so they reach the caller's notes.
    """
    from nsm_sim import leading

    work = functools.partial(leading.validate, panel, seed=seed, sampler=sampler)
    two_cores = (os.cpu_count() or 1) >= 2
    with alongside(work, second_process=two_cores, verbose=verbose) as result:
        yield result


def demo_scenario_path() -> Path:
    """Return the path of the packaged demo scenario.

    Returns
    -------
    Path
    """
    from importlib.resources import files

    return Path(str(files("nsm_sim") / "examples" / "scenarios" / "demo.yaml"))


def run_demo(
    out: str | Path,
    *,
    accounts: int = 5000,
    periods: int = 52,
    seed: int = 0,
    simulations: int = 4000,
    fit_options: dict[str, Any] | None = None,
    generated: str | None = None,
    verbose: bool = False,
    on_step: StepCallback = _quiet,
    progress: ProgressCallback | None = None,
) -> Analysis:
    """Generate the synthetic world, fit, validate, simulate, prioritise, write the report.

    Everything is written into ``out`` at once, whole or not at all
    (:func:`nsm_sim.files.staged`): the world (panel, tree, truth) in ``out/world``, the fit
    bundle in ``out/fit`` and the report's files (:func:`nsm_sim.output.report.report_files`)
    in ``out``. A run that fails or is killed leaves ``out`` as it was.

    Parameters
    ----------
    out : str or Path
        Output folder.
    accounts, periods, seed : int
        Size and seed of the synthetic world (the seed also seeds the fits and simulation).
    simulations : int, default 4000
        Monte Carlo simulations.
    fit_options : dict, optional
        Extra keyword arguments of :func:`nsm_sim.models.inference.fit` (draws, tune, chains).
    generated : str, optional
        Time stamp printed in the report's footer.
    verbose : bool, default False
        Leave the libraries' loggers as they are (see :func:`validating_alongside`).
    on_step, progress : callable
        As in :func:`analyse`.

    Returns
    -------
    Analysis
        With every part filled, and the report's files in ``files``.
    """
    from nsm_sim import data, synth
    from nsm_sim.files import staged
    from nsm_sim.models import inference
    from nsm_sim.output import report
    from nsm_sim.spec import load_scenario

    out = Path(out)
    with staged(out) as stage:
        on_step(f"generating the synthetic world: {accounts:,} accounts x {periods} weeks")
        world = synth.generate_world(accounts=accounts, periods=periods, seed=seed)
        panel_file = synth.write_world(world, stage.path / "world")["panel"]
        panel = replace(
            data.load_panel(panel_file, world.tree), source=str(out / "world" / panel_file.name)
        )
        on_step("fitting the driver and retention models; validating alongside")
        with validating_alongside(panel, seed=seed, verbose=verbose) as validation:
            fit = inference.fit(panel, seed=seed, progress=False, **(fit_options or {}))
            inference.save_bundle(fit, stage.path / "fit")
            on_step("validating the North Star against the candidates")
            validated = validation()
        analysis = analyse(
            fit,
            validation=validated,
            scenario=load_scenario(demo_scenario_path()),
            simulations=simulations,
            seed=seed,
            on_step=on_step,
            progress=progress,
        )
        on_step(f"writing the report to {out}")
        analysis.files = stage.write(report.report_files(analysis, generated=generated))
    return analysis
