"""The forecast with new accounts, and targets: recovery, invariants, JSON and errors.

No test here samples with NUTS: the posterior is a fixed one (:func:`fixed_posterior`) or a
small fake one written into a bundle, the history is a small synthetic world's.
"""

import dataclasses
import datetime as dt
import json
import re

import arviz as az
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nsm_sim.cli import app
from nsm_sim.data import check_frame, starting_population
from nsm_sim.errors import SpecError
from nsm_sim.forecast import (
    fit_acquisition,
    fit_forecast_model,
    forecast,
    needed_arrivals,
    needed_lift,
    panel_history,
    target_report,
)
from nsm_sim.models.bundle import Fit, save_bundle
from nsm_sim.simulate import fixed_posterior
from nsm_sim.spec import AtLeast, Initiative, Scenario, Target
from nsm_sim.synth import generate_world

runner = CliRunner()
SIMULATIONS = 400


@pytest.fixture(scope="module")
def small():
    """A small world's panel, history, population, a fixed posterior and its forecast model."""
    world = generate_world(accounts=800, periods=30, seed=4)
    panel = check_frame(world.panel, world.tree, source="small world")
    history = panel_history(panel)
    posterior = fixed_posterior(
        world.tree,
        panel.segments,
        elasticity=0.5,
        churn_intercept=-4.0,
        churn_slope=-0.3,
        tenure_slope=-0.1,
    )
    model = fit_forecast_model(history, posterior.segments)
    return {
        "world": world,
        "panel": panel,
        "history": history,
        "population": starting_population(panel),
        "posterior": posterior,
        "model": model,
    }


def _scenario(tree, *, target=None, aggregate="sum", initiatives=None, horizon=6):
    tree = tree.model_copy(update={"north_star_aggregate": aggregate})
    return Scenario(
        name="t",
        model="tree.yaml",
        horizon=horizon,
        capacity=10.0,
        tree=tree,
        target=target,
        initiatives=initiatives
        or [
            Initiative(name="seats", target="active_seats", lift={"low": 0.02, "high": 0.1}),
            Initiative(name="boards", target="boards_shared", lift=0.05, effort=3.0),
        ],
    )


def _forecast(small, scenario, model=None, **kwargs):
    kwargs.setdefault("simulations", SIMULATIONS)
    return forecast(
        scenario,
        small["posterior"],
        small["population"],
        model or small["model"],
        small["history"].frame,
        **kwargs,
    )


# --------------------------------------------------------------------------- arrivals


def test_acquisition_recovers_a_known_rate_and_trend():
    rng = np.random.default_rng(0)
    n = 80
    t = np.arange(n)
    slope = 0.6  # over the whole history, on the log scale
    mu = 40.0 * np.exp(slope * (t - (n - 1) / 2) / n)
    counts = pd.DataFrame({"a": rng.poisson(mu), "b": rng.poisson(5.0, n)})
    model = fit_acquisition(counts, "week")
    assert not model.seasonal  # fewer than two years of weeks
    se = np.sqrt(np.diagonal(model.cov, axis1=1, axis2=2))
    truth = np.array([[np.log(40.0), slope], [np.log(5.0), 0.0]])
    z = (model.beta - truth) / se
    assert np.all(np.abs(z) < 3.5), z
    # the draws hold the count noise: their variance is at least the Poisson's
    draws = model.draw(4, 4000, np.random.default_rng(1))
    assert draws[:, 0, 0].var() >= 0.9 * draws[:, 0, 0].mean()


def test_acquisition_sees_the_season_with_two_years():
    rng = np.random.default_rng(2)
    t = np.arange(120)
    mu = 30.0 * np.exp(0.3 * np.sin(2 * np.pi * t / 52))
    model = fit_acquisition(pd.DataFrame({"a": rng.poisson(mu)}), "week")
    assert model.seasonal
    sin1 = model.beta[0, 2]
    assert abs(sin1 - 0.3) < 4 * np.sqrt(model.cov[0, 2, 2])


def test_acquisition_counts_new_accounts_of_the_history(small):
    world, history = small["world"], small["history"]
    first = world.panel.groupby("account_id")["period"].min()
    truth = first[first > first.min()].value_counts().sort_index()
    counted = history.arrivals().sum(axis=1)
    assert counted[counted > 0].to_dict() == truth.to_dict()


# --------------------------------------------------------------------------- invariants


def test_first_period_is_the_last_observed_total_carried_one_step(small):
    """Without arrivals and without common shocks, period 0 is the last period's accounts
    that did not churn, each at its last North Star: the projection's first step changes
    nothing else."""
    model = small["model"]
    acq = model.acquisition
    silent = dataclasses.replace(
        acq, beta=np.full_like(acq.beta, 0.0) - 60.0, cov=np.zeros_like(acq.cov)
    )
    calm = dataclasses.replace(model, acquisition=silent, growth=np.zeros(10))
    fc = _forecast(small, _scenario(small["world"].tree), calm)
    panel = small["panel"].frame
    last = panel[(panel["period"] == panel["period"].max()) & (panel["churned"] == 0)]
    expected = last[small["world"].tree.north_star].sum()
    np.testing.assert_allclose(fc.paths["baseline"][:, 0], expected, rtol=1e-9)
    # and the observed history ends with the last period's total (churned accounts included)
    total = panel[panel["period"] == panel["period"].max()][small["world"].tree.north_star].sum()
    assert fc.observed.iloc[-1] == pytest.approx(total)


def test_new_accounts_raise_the_baseline(small):
    """The baseline is no longer bound to fall: arrivals add to it in every simulation."""
    model = small["model"]
    silent = dataclasses.replace(
        model.acquisition,
        beta=np.full_like(model.acquisition.beta, -60.0),
        cov=np.zeros_like(model.acquisition.cov),
    )
    scenario = _scenario(small["world"].tree)
    with_new = _forecast(small, scenario)
    without = _forecast(small, scenario, dataclasses.replace(model, acquisition=silent))
    gain = with_new.paths["baseline"][:, -1] - without.paths["baseline"][:, -1]
    assert np.all(gain >= 0) and gain.mean() > 0


def test_dates_follow_the_calendar(small):
    fc = _forecast(small, _scenario(small["world"].tree))
    last = small["panel"].frame["period"].max()
    assert fc.dates[0] == last + pd.Timedelta(days=7)
    assert all(np.diff(fc.dates.values).astype("timedelta64[D]").astype(int) == 7)


# --------------------------------------------------------------------------- targets


def _target(small, value, weeks=6):
    last = small["panel"].frame["period"].max()
    return Target(value=value, by=(last + pd.Timedelta(days=7 * weeks)).date())


def test_p_target_is_monotone_in_the_target_and_one_when_certain(small):
    fc = _forecast(small, _scenario(small["world"].tree, target=_target(small, 1.0)))
    path = fc.at_target("baseline")
    values = np.quantile(path, np.linspace(0.0, 1.0, 21))
    p = [fc.p_target("baseline", v) for v in values]
    assert all(a >= b for a, b in zip(p, p[1:], strict=False))
    assert fc.p_target("baseline", 0.0) == 1.0
    assert fc.p_target() == 1.0  # the target of 1 is met in every simulation
    assert fc.p_target("baseline", 10 * path.max()) == 0.0


def test_target_period_is_the_last_starting_by_its_date(small):
    last = small["panel"].frame["period"].max()
    by = (last + pd.Timedelta(days=7 * 8 + 3)).date()  # a Thursday in the 8th week
    fc = _forecast(small, _scenario(small["world"].tree, target=Target(value=1, by=by)))
    assert fc.target_index == 7
    assert len(fc.dates) == 8  # the horizon grows to reach the target


def test_needed_lift_at_half_gives_half_when_simulated_back(small):
    tree = small["world"].tree
    base = _forecast(small, _scenario(tree, target=_target(small, 1.0)))
    value = float(np.quantile(base.at_target("baseline"), 0.8))
    fc = _forecast(small, _scenario(tree, target=_target(small, value)))
    lift = needed_lift(fc, "active_seats", 0.5)
    assert lift is not None and lift > 0
    back = _forecast(
        small,
        _scenario(
            tree,
            target=_target(small, value),
            initiatives=[Initiative(name="needed", target="active_seats", lift=lift)],
        ),
    )
    assert back.p_target("portfolio") == pytest.approx(0.5, abs=0.04)
    extra = needed_arrivals(fc, 0.5)
    assert extra is not None and extra > 0
    p = np.mean(fc.projection.assemble(fc.projection.existing["baseline"], extra)[:, -1] >= value)
    assert p == pytest.approx(0.5, abs=0.04)


@pytest.mark.parametrize("aggregate", ["mean", AtLeast(at_least=7.5)])
def test_other_aggregates_start_where_the_history_ends(small, aggregate):
    fc = _forecast(small, _scenario(small["world"].tree, aggregate=aggregate))
    last = fc.observed.iloc[-1]
    first = fc.paths["baseline"][:, 0].mean()
    assert first == pytest.approx(last, rel=0.15)


# --------------------------------------------------------------------------- errors, JSON


def test_a_target_before_the_data_is_a_clear_error(small):
    last = small["panel"].frame["period"].max()
    early = Target(value=1.0, by=(last - pd.Timedelta(days=30)).date())
    with pytest.raises(SpecError, match=r"target\.by: .* is before the first projected period"):
        _forecast(small, _scenario(small["world"].tree, target=early))


def test_a_target_without_a_date_is_refused_by_the_cli(tmp_path):
    (tmp_path / "tree.yaml").write_text(
        "name: t\nnorth_star: n\ninputs: {a: []}\n", encoding="utf-8"
    )
    (tmp_path / "s.yaml").write_text(
        "name: s\nmodel: tree.yaml\nhorizon: 4\ncapacity: 1\ntarget: {value: 10}\n"
        "initiatives:\n  - {name: x, target: a, lift: 5%}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["simulate", str(tmp_path / "s.yaml"), "--fit", str(tmp_path)])
    assert result.exit_code == 2
    assert "target.by" in result.output and "Traceback" not in result.output


def _fake_bundle(small, folder):
    """A bundle of the small world with a posterior of two draws (no sampling)."""
    tree = small["world"].tree
    post = small["posterior"]
    d = 2
    data = {
        "elasticity": np.repeat(post.elasticity[None], d, axis=1),
        "churn_intercept": np.repeat(post.churn_intercept[None], d, axis=1),
        "churn_slope": np.repeat(post.churn_slope[None], d, axis=1),
        "tenure_slope": np.repeat(post.tenure_slope[None], d, axis=1),
    }
    edges = [f"{p}<-{c}" for p, c in tree.edges]
    idata = az.from_dict(
        posterior=data,
        coords={"edge": edges, "segment": list(post.segments)},
        dims={
            "elasticity": ["edge", "segment"],
            "churn_intercept": ["segment"],
            "churn_slope": ["segment"],
        },
    )
    card = {
        "tree": tree.model_dump(mode="json"),
        "tree_fingerprint": tree.fingerprint(),
        "segments": list(post.segments),
        "panel": {},
    }
    fit = Fit(
        idata=idata,
        tree=tree,
        panel={},
        card=card,
        population=small["population"],
        history=small["history"].frame,
    )
    save_bundle(fit, folder)
    return folder


def test_simulate_json_has_the_forecast_on_dates_and_the_target(small, tmp_path):
    bundle = _fake_bundle(small, tmp_path / "fit")
    tree_file = tmp_path / "tree.yaml"
    from nsm_sim.spec import dump_tree

    dump_tree(small["world"].tree, tree_file)
    last = small["panel"].frame["period"].max()
    by = (last + pd.Timedelta(days=7 * 4)).date()
    (tmp_path / "s.yaml").write_text(
        f"name: s\nmodel: tree.yaml\nhorizon: 4\ncapacity: 5\ntarget: {{value: 1, by: {by}}}\n"
        "initiatives:\n  - {name: x, target: active_seats, lift: 5%}\n",
        encoding="utf-8",
    )
    result = runner.invoke(
        app,
        ["simulate", str(tmp_path / "s.yaml"), "--fit", str(bundle), "--json"]
        + ["--simulations", "200"],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    rows = payload["forecast"]
    assert len(rows) == 4
    assert rows[0]["period"] == f"{last + pd.Timedelta(days=7):%Y-%m-%d}"
    for row in rows:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["period"])
        for series in ("baseline", "portfolio"):
            assert set(row["north_star"][series]) == {"mean", "p5", "p95"}
    target = payload["target"]
    assert {"value", "by", "p_baseline", "p_portfolio", "needed"} <= set(target)
    assert target["by"] == f"{by:%Y-%m-%d}" and target["p_baseline"] == 1.0
    late = (last - pd.Timedelta(days=14)).date()
    (tmp_path / "late.yaml").write_text(
        f"name: s\nmodel: tree.yaml\nhorizon: 4\ncapacity: 5\ntarget: {{value: 1, by: {late}}}\n"
        "initiatives:\n  - {name: x, target: active_seats, lift: 5%}\n",
        encoding="utf-8",
    )
    bad = runner.invoke(app, ["simulate", str(tmp_path / "late.yaml"), "--fit", str(bundle)])
    assert bad.exit_code == 2
    assert "before the first projected period" in bad.output


def test_target_report_names_every_lever(small):
    fc = _forecast(small, _scenario(small["world"].tree, target=_target(small, 1.0)))
    report = target_report(fc)
    levers = {item["lever"] for item in report["needed"]}
    assert levers == {"new accounts", "active_seats", "boards_shared", "integrations_connected"}
    # the target is met already: nothing is needed
    assert all(item["value"] == 0.0 for item in report["needed"])


def test_tree_target_is_standing_and_the_scenario_wins(small):
    tree = small["world"].tree.model_copy(
        update={"target": Target(value=5, by=dt.date(2030, 1, 1))}
    )
    scenario = _scenario(tree)
    assert scenario.goal == tree.target
    own = Target(value=7, by=dt.date(2030, 1, 1))
    assert _scenario(tree, target=own).goal == own
    assert tree.fingerprint() == small["world"].tree.fingerprint()


def test_a_bundle_without_history_loads_and_says_why_there_is_no_forecast(small, tmp_path):
    from nsm_sim.errors import BundleError
    from nsm_sim.forecast import history_of
    from nsm_sim.models.bundle import load_bundle

    folder = _fake_bundle(small, tmp_path / "with")
    assert load_bundle(folder).history is not None
    fit = load_bundle(folder)
    fit.history = None
    save_bundle(fit, tmp_path / "without")
    loaded = load_bundle(tmp_path / "without")
    assert loaded.history is None
    with pytest.raises(BundleError, match="history.csv: missing"):
        history_of(loaded)


def test_forecast_figure_draws_the_bands_and_the_target(small):
    from nsm_sim.output.forecast_plots import forecast_figure

    fc = _forecast(small, _scenario(small["world"].tree, target=_target(small, 1.0)))
    ax = forecast_figure(fc).axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert "observed" in labels and "target" in labels
    assert any("P(target) 100%" in label for label in labels)


def test_prioritise_for_the_target_picks_a_portfolio_within_capacity(small, tmp_path):
    from nsm_sim.spec import dump_tree

    bundle = _fake_bundle(small, tmp_path / "fit")
    dump_tree(small["world"].tree, tmp_path / "tree.yaml")
    last = small["panel"].frame["period"].max()
    by = (last + pd.Timedelta(days=7 * 4)).date()
    initiatives = (
        "initiatives:\n"
        "  - {name: a, target: active_seats, lift: 20%, effort: 2}\n"
        "  - {name: b, target: boards_shared, lift: 20%, effort: 2}\n"
        "  - {name: c, target: integrations_connected, lift: 1%, effort: 1}\n"
    )
    head = "name: s\nmodel: tree.yaml\nhorizon: 4\ncapacity: 3\n"
    base = _forecast(small, _scenario(small["world"].tree, target=_target(small, 1.0, weeks=4)))
    value = float(np.quantile(base.at_target("baseline"), 0.7))
    (tmp_path / "s.yaml").write_text(
        head + f"target: {{value: {value}, by: {by}}}\n" + initiatives, encoding="utf-8"
    )
    args = ["--fit", str(bundle), "--simulations", "300", "--objective", "target", "--json"]
    result = runner.invoke(app, ["prioritise", str(tmp_path / "s.yaml"), *args])
    assert result.exit_code == 0, result.output
    chosen = json.loads(result.stdout)["target_portfolio"]
    assert chosen["effort"] <= 3
    # two 20 % lifts cannot both be funded; one of them beats the 1 % one
    assert len(set(chosen["selected"]) & {"a", "b"}) == 1
    assert chosen["p_target"] > chosen["p_baseline"]
    (tmp_path / "none.yaml").write_text(head + initiatives, encoding="utf-8")
    refused = runner.invoke(app, ["prioritise", str(tmp_path / "none.yaml"), *args])
    assert refused.exit_code == 2 and "needs a target" in refused.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("north_star_aggregate: median", "north_star_aggregate"),
        ("north_star_aggregate: {at_least: -1}", "at_least"),
        ("target: {value: 10, by: not-a-date}", "target.by"),
        ("currency: ''", "currency"),
    ],
)
def test_bad_reporting_fields_of_the_tree_are_clear_errors(tmp_path, content, message):
    from nsm_sim.spec import load_tree

    path = tmp_path / "tree.yaml"
    path.write_text(f"name: t\nnorth_star: n\ninputs: {{a: []}}\n{content}\n", encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_tree(path)
    assert message in str(err.value)


def test_a_segment_without_arrivals_gets_none_and_rates_stay_bounded():
    rng = np.random.default_rng(3)
    counts = pd.DataFrame({"quiet": np.zeros(30), "rare": rng.poisson(0.2, 30)})
    model = fit_acquisition(counts, "week")
    draws = model.draw(52, 2000, np.random.default_rng(4))
    assert draws[:, 0].sum() == 0
    assert np.isfinite(draws).all() and draws[:, 1].mean() < 10 * (counts["rare"].max() + 1)


def test_a_monthly_tree_forecasts_calendar_months(small):
    world = small["world"]
    frame = world.panel.copy()
    weeks = sorted(frame["period"].unique())
    months = dict(
        zip(weeks, pd.date_range("2023-01-01", periods=len(weeks), freq="MS"), strict=True)
    )
    frame["period"] = frame["period"].map(months)
    tree = world.tree.model_copy(update={"period": "month"})
    panel = check_frame(frame, tree, source="monthly world")
    history = panel_history(panel)
    model = fit_forecast_model(history, small["posterior"].segments)
    last = max(months.values())
    target = Target(value=1.0, by=(last + pd.DateOffset(months=3, days=20)).date())
    scenario = _scenario(tree, target=target, horizon=2)
    fc = forecast(
        scenario,
        small["posterior"],
        starting_population(panel),
        model,
        history.frame,
        simulations=100,
    )
    assert [f"{d:%Y-%m-%d}" for d in fc.dates] == [
        f"{last + pd.DateOffset(months=k):%Y-%m-%d}" for k in (1, 2, 3)
    ]
    assert fc.target_index == 2
