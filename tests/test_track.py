"""Plan against actual: a fit made on the first periods, tracked on the ones after."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from fixtures_world import WORLD_PERIODS
from typer.testing import CliRunner

from nsm_sim.cli import app
from nsm_sim.data import check_frame, starting_population
from nsm_sim.forecast import forecast_fit, panel_history
from nsm_sim.models import inference
from nsm_sim.spec import load_scenario
from nsm_sim.track import Z90, observed_aggregate, track

runner = CliRunner()
SCENARIO = "scenarios/demo.yaml"
#: The fit ends here; the periods after it are tracked.
FITTED_PERIODS = WORLD_PERIODS - 8
#: boards_shared falls by 30 % from this tracked period on (0 = the first after the fit).
DROP_AT = 3


def _until(world, last):
    rows = world.panel[world.panel["period"] <= last]
    return check_frame(rows, world.tree, source="earlier")


@pytest.fixture(scope="module")
def early_fit(fitted, world, panel):
    """The session's fit with its accounts and history as they were 8 periods earlier."""
    earlier = _until(world, panel.periods[FITTED_PERIODS - 1])
    return dataclasses.replace(
        fitted,
        population=starting_population(earlier),
        history=panel_history(earlier).frame,
    )


@pytest.fixture(scope="module")
def dropped(world, panel):
    """The panel with boards_shared 30 % lower from a tracked period on, all else the same."""
    frame = world.panel.copy()
    when = frame["period"] >= panel.periods[FITTED_PERIODS + DROP_AT]
    frame.loc[when, "boards_shared"] = (frame.loc[when, "boards_shared"] * 0.7).round()
    return check_frame(frame, panel.tree, source="dropped")


@pytest.fixture(scope="module")
def scenario(panel):
    spec = load_scenario(SCENARIO)
    return spec.model_copy(update={"tree": panel.tree, "target": None})


@pytest.fixture(scope="module")
def forecast(scenario, early_fit):
    return forecast_fit(scenario, early_fit, each=False, simulations=400, seed=3)


def test_observed_aggregate_is_the_rows_sum_mean_and_count():
    frame = pd.DataFrame({"period": [1, 1, 1, 2], "n": [0.0, 2.0, 5.0, 3.0]})
    assert observed_aggregate(frame, "n", "sum").tolist() == [7.0, 3.0]
    assert observed_aggregate(frame, "n", "mean").tolist() == pytest.approx([7 / 3, 3.0])
    from nsm_sim.spec import AtLeast

    assert observed_aggregate(frame, "n", AtLeast(at_least=2)).tolist() == [2.0, 1.0]


@pytest.mark.slow
def test_the_tracked_periods_are_the_ones_after_the_fit_within_their_bands(forecast, panel):
    result = track(forecast, panel, series="baseline")
    agg = result.aggregate
    assert list(agg["period"]) == list(panel.periods[FITTED_PERIODS:])
    assert result.origin == panel.periods[FITTED_PERIODS - 1]
    truth = panel.frame.groupby("period")[panel.tree.north_star].sum()
    assert np.allclose(agg["actual"], truth.loc[agg["period"]].to_numpy())
    path = forecast.paths["baseline"][:, : len(agg)]
    assert np.allclose(agg["position"], (path < agg["actual"].to_numpy()).mean(axis=0))
    inside = (agg["p5"] <= agg["actual"]) & (agg["actual"] <= agg["p95"])
    assert (agg["status"] == np.where(inside, "inside", agg["status"])).all()
    # the world goes on as it was fitted: most periods inside the forecast's 90 % band
    assert inside.mean() >= 0.75, agg
    segments = set(result.segments["segment"])
    assert segments == set(panel.segments)
    json.dumps(result.to_dict())


@pytest.mark.slow
def test_an_input_that_falls_is_named_as_the_first_off_plan(forecast, panel, dropped):
    steady = track(forecast, panel).inputs.set_index(["period", "node"])
    moved = track(forecast, dropped)
    when = panel.periods[FITTED_PERIODS + DROP_AT]
    first = moved.first_off_plan
    assert first is not None and first["node"] == "boards_shared", moved.inputs
    assert first["period"] == when and first["z"] < -Z90
    after = moved.inputs.set_index(["period", "node"])
    # the fall is the deviation's change: 30 % on log1p is about log(0.7) at these levels
    change = (
        after.loc[(when, "boards_shared"), "change"] - steady.loc[(when, "boards_shared"), "change"]
    )
    assert -0.45 < change < -0.2
    # attribution: the input's contribution is its elasticity times its deviation, and the
    # North Star (not moved) keeps the rest as unexplained
    row = after.loc[(when, "boards_shared")]
    ns = after.loc[(when, panel.tree.north_star)]
    post = forecast.posterior
    at_origin = panel.frame[panel.frame["period"] == moved.origin]
    weights = np.array([(at_origin["segment"] == s).sum() for s in post.segments], float)
    edge = post.edges.index((panel.tree.north_star, "boards_shared"))
    b = post.elasticity.mean(axis=0)[edge] @ (weights / weights.sum())
    assert row["contribution"] == pytest.approx(b * row["deviation"], rel=1e-9)
    assert 0.15 < b < 0.45  # the world's elasticity is 0.3
    direct = after.loc[when].loc[["active_seats", "boards_shared", "integrations_connected"]]
    assert ns["contribution"] == pytest.approx(ns["deviation"] - direct["contribution"].sum())


@pytest.mark.slow
def test_track_on_the_command_line(early_fit, world, panel, dropped, tmp_path):
    bundle = tmp_path / "fit"
    inference.save_bundle(early_fit, bundle)
    data = tmp_path / "now.csv"
    dropped.frame.rename(columns={"segment": "plan"}).drop(columns=["t", "tenure"]).to_csv(
        data, index=False
    )
    tree = tmp_path / "tree.yaml"
    tree.write_text(json.dumps(panel.tree.model_dump(mode="json")))
    scenario = tmp_path / "plan.yaml"
    spec = load_scenario(SCENARIO)
    plan = json.loads(spec.model_dump_json(exclude={"tree", "target"}))
    scenario.write_text(json.dumps({**plan, "model": "tree.yaml"}))
    args = ["track", str(scenario), "--fit", str(bundle), "--data", str(data)]
    ok = runner.invoke(app, [*args, "--simulations", "300", "--json"])
    assert ok.exit_code == 0, ok.output
    payload = json.loads(ok.stdout)
    assert payload["first_off_plan"]["node"] == "boards_shared"
    assert payload["aggregate"][0]["period"] == f"{panel.periods[FITTED_PERIODS]:%Y-%m-%d}"
    shown = runner.invoke(app, [*args, "--simulations", "300"])
    assert shown.exit_code == 0 and "First off plan: boards_shared" in shown.stdout
    # nothing after the fit's last period: a clear error, exit 2
    old = tmp_path / "old.csv"
    world.panel[world.panel["period"] <= panel.periods[FITTED_PERIODS - 1]].to_csv(old, index=False)
    none = runner.invoke(app, [*args[:-1], str(old)])
    assert none.exit_code == 2 and "nothing to track" in none.output
    bad = runner.invoke(app, [*args, "--series", "everything"])
    assert bad.exit_code == 2 and "--series" in bad.output


def test_a_monthly_history_counts_every_one_period_step():
    from nsm_sim.track import _history_steps

    periods = pd.date_range("2025-01-01", periods=6, freq="MS")  # months of 28 to 31 days
    rows = [
        {"account_id": a, "period": p, "t": t, "segment": "s", "m": float(np.expm1(0.1 * t + a))}
        for a in range(3)
        for t, p in enumerate(periods)
    ]
    steps = _history_steps(pd.DataFrame(rows), "m")
    assert list(steps.index) == list(periods[1:])
    np.testing.assert_allclose(steps["all"], 0.1)
    np.testing.assert_allclose(steps["s"], 0.1)
