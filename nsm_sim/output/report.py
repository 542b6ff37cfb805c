"""The report's files: ``report.html`` and the CSV, JSON and PNG files behind it.

Each ``*_files`` function returns a mapping of file name to content, ready for
:func:`nsm_sim.files.write_files`; nothing here writes, and nothing computes a statistic
the pipeline has not computed. The figures (and matplotlib) are imported only when a
function here draws one, so the command line starts without them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from nsm_sim.output import html, tables
from nsm_sim.output.format import fmt
from nsm_sim.output.tree_diagram import current_levels, tree_svg
from nsm_sim.serialise import drawn

ASSUMPTIONS = """\
Elasticities are observational: they are estimated within accounts, with period effects, so \
account size and shocks common to all accounts do not bias them, but a change that moves an \
input and the North Star together for another reason would. Their intervals are calibrated to \
the cluster-robust (by account) covariance, so they hold when an account's residuals are \
correlated over time or differ in scale between accounts; the population row is the segments' \
elasticities averaged by their account-periods. They are causal effects only where \
experiments calibrate them ({calibration}): treat initiative sizing as a plan, and test the \
initiatives with the largest value of information first.

The churn model is a discrete-time logistic hazard on log1p of the North Star, a term in \
log1p of each account-period's own tenure and segment intercepts, with a threshold step where \
one is supported. Its priors are scaled to the data, as Bambi and rstanarm scale theirs: each \
slope is Normal(0, 2.5 / sd), 2.5 logits per standard deviation of its covariate (log1p of the \
North Star, log1p of tenure); the spread of the North Star's slope across segments is \
HalfNormal(0.1 / sd); the threshold's jump is Normal(0, 2.5). Retention over h periods is the \
product of (1 - hazard). In the validation the same model judges each metric in the North Star's \
place with one slope common to the segments (each keeps its intercept), as a per-row logit with \
segment effects would.

The projection starts from the accounts active in the last observed period (grouped by segment \
and North Star level), holds their North Star at its last level apart from the initiatives' \
lifts, and carries each lift up the tree by the elasticities, exactly as the model is written: \
a relative lift on a node changes its log1p by the amount its level in each cell allows (a \
small count moves less than a large one), and the threshold of the hazard is averaged over \
each cell's range of the North Star. An initiative alone is projected on the accounts it \
reaches. New accounts are not projected. A projection's intervals hold the posterior's \
uncertainty and the initiatives' own, not which accounts a partial reach happens to hit nor \
the shocks of the projected periods, so they are narrower than the world's outcomes.

Every interval is a 90% interval unless marked otherwise; Monte Carlo results use common \
random numbers, so differences between initiatives are sharp."""


def assumptions(tree: Any) -> str:
    """Return the report's assumptions, naming the elasticities experiments calibrate.

    Parameters
    ----------
    tree : nsm_sim.spec.MetricTree

    Returns
    -------
    str
        Paragraphs separated by blank lines.
    """
    calibrated = {edge: exps for edge, exps in tree.calibration.items() if exps}
    if calibrated:
        listed = "; ".join(
            f"{parent} <- {child} by {', '.join(e.name for e in exps)}"
            for (parent, child), exps in calibrated.items()
        )
        calibration = f"calibrated here: {listed}; the others are not"
    else:
        calibration = "none in this fit is calibrated"
    return ASSUMPTIONS.format(calibration=calibration)


def validation_payload(validation: Any) -> dict[str, Any]:
    """Return a validation's JSON without its wall-clock timings (results only).

    The same panel and seed give the same payload byte for byte; how long each step took
    is not a result (``nsm-sim validate`` prints it on stderr).

    Parameters
    ----------
    validation : nsm_sim.leading.Validation

    Returns
    -------
    dict
    """
    return {k: v for k, v in validation.to_dict().items() if k != "timings"}


def validation_files(validation: Any) -> dict[str, Any]:
    """CSV, JSON and PNG files of a validation.

    Parameters
    ----------
    validation : nsm_sim.leading.Validation

    Returns
    -------
    dict
        File name to content.
    """
    from nsm_sim.output import evidence_plots

    convention = validation.settings.get("lag_convention", "")
    return {
        "validation.json": validation_payload(validation),
        "validation_metrics.csv": validation.metrics,
        "validation_timing.csv": validation.timing,
        "cross_correlations.csv": validation.cross_correlations,
        "within_between.csv": validation.within_between,
        "validation_checks.csv": validation.checks,
        "timing.png": evidence_plots.timing(
            validation.cross_correlations, validation.north_star, convention
        ),
    }


def with_warnings(payload: Any, warnings: Sequence[str]) -> dict[str, Any]:
    """Return a result's JSON with the warnings of the fit it came from (``warnings`` key).

    Parameters
    ----------
    payload : dict
        A result's ``to_dict()``.
    warnings : sequence of str
        :attr:`nsm_sim.models.bundle.Fit.warnings`.

    Returns
    -------
    dict
        ``payload`` with ``"warnings"`` (a list, empty when there is nothing to say).
    """
    return {**payload, "warnings": list(warnings)}


def simulation_files(
    result: Any, plan: Any = None, warnings: Sequence[str] = (), origin: Any = None
) -> dict[str, Any]:
    """CSV, JSON and PNG files of a simulation (the fan chart with ``plan``'s portfolio).

    Parameters
    ----------
    result : nsm_sim.simulate.SimulationResult
    plan : nsm_sim.prioritise.Prioritisation, optional
    warnings : sequence of str, default ()
        The fit's warnings, written into ``simulation.json``.
    origin : date-like, optional
        Start of the fit's last period (:func:`origin_of`): the fan chart on calendar dates.

    Returns
    -------
    dict
        File name to content.
    """
    from nsm_sim.output import decision_plots

    north_star = result.scenario.tree.north_star
    fan = tables.fan_frame(result, plan, origin)
    quantity = "value" if result.has_value else "retained_accounts"
    outcomes = dict(zip(result.names, result.initiatives.get(quantity), strict=True))
    return {
        "simulation.json": with_warnings(result.to_dict(), warnings),
        "simulation.csv": tables.simulation_summary(result),
        "trajectory.csv": fan,
        "north_star_fan.png": decision_plots.north_star_fan(fan, north_star),
        "value_distribution.png": decision_plots.value_distribution(outcomes, quantity),
    }


def prioritisation_files(
    result: Any, plan: Any, warnings: Sequence[str] = (), origin: Any = None
) -> dict[str, Any]:
    """CSV, JSON and PNG files of a prioritisation, with its simulation's.

    Parameters
    ----------
    result : nsm_sim.simulate.SimulationResult
    plan : nsm_sim.prioritise.Prioritisation
    warnings : sequence of str, default ()
        The fit's warnings, written into ``simulation.json`` and ``prioritise.json``.
    origin : date-like, optional
        Start of the fit's last period (:func:`origin_of`): the fan chart on calendar dates.

    Returns
    -------
    dict
        File name to content.
    """
    from nsm_sim.output import decision_plots

    return {
        **simulation_files(result, plan, warnings, origin),
        "prioritise.json": with_warnings(plan.to_dict(), warnings),
        "ranking.csv": plan.ranking,
        "evpi.csv": plan.evpi,
        "evpi.png": decision_plots.evpi_bars(plan.evpi, plan.quantity),
    }


def comparison_files(comparison: Any) -> dict[str, Any]:
    """Return the CSV file of a comparison of two scenarios.

    Parameters
    ----------
    comparison : nsm_sim.prioritise.Comparison

    Returns
    -------
    dict
        File name to content.
    """
    return {"comparison.csv": comparison.table}


def _leading_section(validation: Any, north_star: str, files: dict[str, Any]) -> html.Section:
    own = validation.metrics.set_index("metric").loc[north_star]
    threshold = validation.threshold or {}
    blocks: list[html.Block] = [
        html.Callout(f"{north_star}: {own['verdict']}. {own['why']}", own["verdict"]),
        html.TableBlock(
            tables.validation_table(validation),
            "Verdict per metric; effects on churn logit, 90% intervals",
        ),
    ]
    if threshold.get("sentence"):
        blocks.append(html.Callout(threshold["sentence"], "INFO"))
    gates = pd.DataFrame(validation.diagnostics()["fits"])
    blocks += [
        html.TableBlock(
            gates[["fit", "metric", "status", "max_rhat", "min_ess_bulk", "divergences"]],
            "Trust gates of the validation's fits (R-hat, bulk ESS, divergences)",
        ),
        html.FigureBlock(files["retention_by_level.png"], f"Retention by {north_star}"),
        html.FigureBlock(files["timing.png"], validation.settings.get("lag_convention", "")),
        html.Text(validation.summary),
    ]
    return html.Section(
        "Is the North Star leading?",
        "Does it predict churn ahead of time, within accounts, better than the candidates?",
        blocks,
    )


def _drivers_section(analysis: Any, files: dict[str, Any]) -> html.Section:
    north_star = analysis.fit.tree.north_star
    summaries = analysis.summaries
    return html.Section(
        f"What drives {north_star}?",
        "Elasticities: +1% in the input moves its parent by about this many per cent. "
        + str(analysis.fit.card.get("estimation", "")),
        [
            html.SvgBlock(
                tree_svg(
                    analysis.fit.tree,
                    summaries["drivers"],
                    levels=current_levels(analysis.fit.population, analysis.fit.tree),
                ),
                "The metric tree: each edge's elasticity and 90% interval (solid green: "
                "calibrated by experiments); the North Star's level in the last period",
            ),
            html.FigureBlock(files["elasticities.png"], "Elasticities, 90% intervals"),
            html.TableBlock(
                tables.drivers_view(summaries["drivers"], population=True),
                "Population-level elasticities",
            ),
            html.TableBlock(summaries["retention"], f"Churn model: how {north_star} drives churn"),
        ],
    )


def _funding_section(result: Any, plan: Any, files: dict[str, Any]) -> html.Section:
    north_star = result.scenario.tree.north_star
    portfolio = plan.portfolio
    joint = portfolio.joint or {}
    advice = (
        f"Fund {', '.join(portfolio.selected)} (effort {portfolio.effort:g} of "
        f"{portfolio.capacity:g}): expected {plan.quantity} "
        f"{fmt(joint.get('mean', portfolio.expected_value))}, 90% interval "
        f"{fmt(joint.get('p5'))} to {fmt(joint.get('p95'))}. Test {plan.evpi.iloc[0]['name']} "
        "first: its uncertainty is worth the most to the decision."
    )
    blocks: list[html.Block] = [
        html.Callout(advice, "INFO"),
        html.TableBlock(plan.ranking, f"Ranking by {plan.quantity} per effort"),
        html.FigureBlock(
            files["north_star_fan.png"],
            f"{north_star} with no initiative, with all the scenario's initiatives together "
            "and with the chosen portfolio",
        ),
        html.FigureBlock(files["value_distribution.png"], "Per initiative"),
        html.TableBlock(tables.simulation_table(result), "Each initiative alone"),
        html.TableBlock(
            tables.simulation_table(result, together=True),
            f"All {len(result.names)} initiatives together (effort "
            f"{float(result.effort.sum()):g} against a capacity of {portfolio.capacity:g}; "
            "not the chosen portfolio)",
        ),
        html.FigureBlock(files["evpi.png"], "Expected value of perfect information"),
    ]
    if plan.note:
        blocks.append(html.Text(plan.note))
    return html.Section(
        "What should we fund?",
        f"Scenario {result.scenario.name!r}: {len(result.names)} initiatives, capacity "
        f"{portfolio.capacity:g}, horizon {result.scenario.horizon} periods, "
        f"{result.simulations:,} simulations.",
        blocks,
    )


def origin_of(fit: Any) -> str | None:
    """Return the start of a fit's last period (``YYYY-MM-DD``), if its card says it.

    Parameters
    ----------
    fit : nsm_sim.models.inference.Fit

    Returns
    -------
    str or None
    """
    return ((getattr(fit, "panel", None) or {}).get("periods") or {}).get("last")


def forecast_files(forecast: Any, target: Any = None) -> dict[str, Any]:
    """Return the forecast's files: its table per period and series, its JSON, its fan chart.

    Parameters
    ----------
    forecast : nsm_sim.forecast.Forecast
    target : dict, optional
        :func:`nsm_sim.forecast.target_report`, which replaces the forecast's own target block.

    Returns
    -------
    dict
        ``forecast.csv``, ``forecast.json`` and ``forecast.png``.
    """
    from nsm_sim.output.forecast_plots import FAN_QUANTILES, forecast_figure

    payload = forecast.to_dict()
    if target is not None:
        payload["target"] = target
    return {
        "forecast.csv": forecast.summary(FAN_QUANTILES),
        "forecast.json": payload,
        "forecast.png": forecast_figure(forecast),
    }


def _forecast_section(forecast: Any, target: Any, files: dict[str, Any]) -> html.Section:
    from nsm_sim.output.forecast_text import forecast_rows, needed_text
    from nsm_sim.spec import aggregate_label

    tree = forecast.scenario.tree
    label = aggregate_label(forecast.aggregate)
    chosen = ", ".join(forecast.portfolio) or "no initiative"
    blocks: list[html.Block] = []
    if target is not None:
        blocks.append(
            html.Callout(
                f"Target {fmt(target['value'])} by {target['by']}: P(reaching it) "
                f"{100 * target['p_baseline']:.0f}% without the initiatives, "
                f"{100 * target['p_portfolio']:.0f}% with the chosen portfolio ({chosen}); "
                f"expected gap {fmt(target['gap_baseline']['mean'])} without, "
                f"{fmt(target['gap_portfolio']['mean'])} with.",
                "INFO",
            )
        )
    blocks.append(
        html.FigureBlock(
            files["forecast.png"],
            f"{tree.north_star} ({label}): observed, then forecast with new accounts, without "
            "and with the chosen portfolio (median, 50% and 90% bands)",
        )
    )
    needed = (target or {}).get("needed") or []
    if needed:
        frame = pd.DataFrame(
            {
                "P(reaching it)": [f"{100 * i['probability']:.0f}%" for i in needed],
                "lever": [i["lever"] for i in needed],
                "needed": [needed_text(i) for i in needed],
            }
        )
        blocks.append(
            html.TableBlock(
                frame, f"What it would take, one lever at a time, beyond the {needed[0]['beyond']}"
            )
        )
    blocks.append(html.TableBlock(forecast_rows(forecast), "The forecast per period"))
    return html.Section(
        "Where the North Star is heading",
        f"{tree.north_star} as the company reports it ({label}), per {tree.period} on calendar "
        f"dates: the accounts there now, new accounts from the arrivals the history shows, and "
        f"the uncertainty of every parameter; {forecast.simulations:,} simulations.",
        blocks,
    )


def _details_section(analysis: Any) -> html.Section:
    checks = analysis.fit.diagnostics
    worst = tables.worst_status(checks)
    blocks: list[html.Block] = [
        html.Callout(f"Trust gates: {worst}", worst),
        html.TableBlock(checks, "Sampling diagnostics and posterior predictive checks"),
        html.TableBlock(
            tables.drivers_view(analysis.summaries["drivers"]), "Elasticities per segment"
        ),
    ]
    if analysis.validation is not None:
        blocks.append(html.TableBlock(analysis.validation.timing, "Panel Granger tests"))
    return html.Section("Details and diagnostics", "", blocks)


def report_files(analysis: Any, *, generated: str | None = None) -> dict[str, Any]:
    """Every file of the report: ``report.html`` and the CSV, JSON and PNG behind it.

    Parameters
    ----------
    analysis : nsm_sim.pipeline.Analysis
        The fit, its summaries and retention curve and, where present, the validation,
        simulation and prioritisation.
    generated : str, optional
        Time stamp printed in the report's footer.

    Returns
    -------
    dict
        File name to content, ready for :func:`nsm_sim.files.write_files`.
    """
    from nsm_sim.output import evidence_plots

    fit = analysis.fit
    tree = fit.tree
    north_star = tree.north_star
    summaries = analysis.summaries
    validation = analysis.validation
    threshold = validation.threshold if validation is not None else None
    files: dict[str, Any] = {
        "drivers.csv": summaries["drivers"],
        "retention.csv": summaries["retention"],
        "diagnostics.csv": fit.diagnostics,
        "fit_card.json": fit.card,
        "retention_curve.csv": analysis.retention_curve,
        "elasticities.png": evidence_plots.elasticity_forest(summaries["drivers"], north_star),
        "retention_by_level.png": evidence_plots.retention_by_level(
            analysis.retention_curve,
            north_star,
            tree.retention_horizon,
            tables.threshold_for_plot(threshold),
        ),
    }
    files = drawn(files)
    sections = []
    if fit.warnings:
        sections.append(
            html.Section(
                "Read this first",
                "The fit behind this report has problems that its numbers do not show.",
                [html.Callout(text, "FAIL") for text in fit.warnings],
            )
        )
    forecast = getattr(analysis, "forecast", None)
    if forecast is not None:
        target = getattr(analysis, "target", None)
        files.update(drawn(forecast_files(forecast, target)))
        sections.append(_forecast_section(forecast, target, files))
    if validation is not None:
        files.update(drawn(validation_files(validation)))
        sections.append(_leading_section(validation, north_star, files))
    sections.append(_drivers_section(analysis, files))
    if analysis.plan is not None:
        plan_files = prioritisation_files(
            analysis.simulation, analysis.plan, fit.warnings, origin_of(fit)
        )
        files.update(drawn(plan_files))
        sections.append(_funding_section(analysis.simulation, analysis.plan, files))
    sections.append(_details_section(analysis))
    sections.append(html.Section("Assumptions", "", [html.Text(assumptions(tree))]))
    card = fit.card
    meta = {
        "tree": tree.name,
        "data": card.get("data_fingerprint"),
        "rows": card.get("rows"),
        "sampler": card.get("sampler"),
        "seed": card.get("seed"),
    }
    files["report.html"] = html.render_report(
        f"North Star report: {north_star}", f"Metric tree {tree.name!r}", sections, generated, meta
    )
    return files
