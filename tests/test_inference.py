import json

import arviz as az
import numpy as np
import pandas as pd
import pytest

from nsm_sim.errors import BundleError
from nsm_sim.models import inference
from nsm_sim.spec import MetricTree


def _fake(rng, shift=0.0, diverging=0, chains=4, draws=500):
    post = {"a": rng.normal(size=(chains, draws)), "b": rng.normal(size=(chains, draws, 2))}
    post["b"][0, :, 1] += shift  # one chain off: R-hat of b[1] is bad
    div = np.zeros((chains, draws), dtype=bool)
    div.flat[:diverging] = True
    return az.from_dict(
        posterior=post,
        sample_stats={"diverging": div, "maxdepth_reached": np.zeros((chains, draws), bool)},
        coords={"k": ["x", "y"]},
        dims={"b": ["k"]},
    )


def test_diagnose_grades_against_the_thresholds_and_names_the_worst_parameter():
    rng = np.random.default_rng(0)
    good = inference.diagnose(_fake(rng)).set_index("check")
    assert set(good["status"]) == {"PASS"}
    bad = inference.diagnose(_fake(rng, shift=3.0, diverging=30)).set_index("check")
    assert bad.loc["r_hat", "status"] == "FAIL"
    assert bad.loc["r_hat", "parameter"] == "b[y]"
    assert bad.loc["divergences", "value"] == 30
    assert bad.loc["divergences", "status"] == "FAIL"  # 30 of 2000 is 1.5 %
    review = inference.diagnose(_fake(rng, diverging=5)).set_index("check")
    assert review.loc["divergences", "status"] == "REVIEW"
    assert "1.01" in bad.loc["r_hat", "threshold"]
    summary = inference.diagnostics_summary(bad.reset_index())
    assert summary["status"] == "FAIL" and summary["divergences"] == 30
    assert any("r_hat" in w for w in summary["warnings"])


def test_a_parameter_whose_draws_do_not_move_fails_its_gate_by_name():
    rng = np.random.default_rng(1)
    idata = _fake(rng)
    assert inference.diagnose(idata).set_index("check").loc["degenerate_intervals", "status"] == (
        "PASS"
    )
    stuck = idata.posterior["b"].values.copy()
    stuck[..., 0] = 0.25  # b[x] never moves: its interval is [0.25, 0.25]
    idata.posterior["b"] = idata.posterior["b"].copy(data=stuck)
    gate = inference.diagnose(idata).set_index("check").loc["degenerate_intervals"]
    assert gate["status"] == "FAIL"
    assert gate["value"] == 1 and gate["parameter"] == "b[x]"
    assert "width zero" in gate["detail"]


def test_sample_refuses_an_unknown_sampler():
    with pytest.raises(ValueError, match="sampler"):
        inference.sample(None, sampler="gibbs")


def test_fit_card_and_diagnostics(fitted, panel):
    card = fitted.card
    for key in (
        "tree",
        "tree_fingerprint",
        "data_fingerprint",
        "rows",
        "accounts",
        "segments",
        "versions",
        "seed",
        "sampler",
        "draws",
        "tune",
        "chains",
        "estimation",
        "diagnostics",
        "seconds",
    ):
        assert key in card, key
    assert card["estimation"] == "elasticities are estimated within accounts with period effects"
    assert card["data_fingerprint"] == panel.fingerprint
    assert card["rows"] == len(panel.frame)
    assert set(card["versions"]) >= {"nsm_sim", "pymc", "nutpie", "arviz", "numpy"}
    json.dumps(card)  # serialisable as it is
    checks = fitted.diagnostics
    assert {
        "r_hat",
        "ess_bulk",
        "ess_tail",
        "divergences",
        "tree_depth",
        "ppc_churn_per_period",
        "ppc_north_star_per_segment",
    } <= set(checks["check"])
    assert set(checks["status"]) <= {"PASS", "REVIEW", "FAIL"}
    # the sampler's own health and the predictive checks; R-hat and ESS of this small world's
    # hinge are graded (and may be flagged: its jump is weakly identified) but not asserted
    gates = checks.set_index("check")["status"]
    for name in ("divergences", "tree_depth", "ppc_churn_per_period", "ppc_north_star_per_segment"):
        assert gates[name] != "FAIL", checks.to_string()
    assert card["diagnostics"]["status"] == max(
        gates, key={"PASS": 0, "REVIEW": 1, "FAIL": 2}.__getitem__
    )
    post = fitted.idata.posterior
    assert post["elasticity"].dims == ("chain", "draw", "edge", "segment")
    assert list(post["edge"].values) == [f"{p}<-{c}" for p, c in panel.tree.edges]
    for name in (
        "elasticity_mu",
        "elasticity_tau",
        "driver_sigma",
        "churn_intercept",
        "churn_slope",
        "churn_slope_mu",
        "churn_slope_sigma",
        "tenure_slope",
        "hinge_jump",
        "hinge_tau",
    ):
        assert name in post, name


def test_summarise_tables(fitted):
    tables = inference.summarise(fitted)
    drivers, retention = tables["drivers"], tables["retention"]
    columns = ["parent", "child", "segment", "mean", "low", "high", "calibrated_by"]
    assert list(drivers.columns) == columns
    assert (drivers["calibrated_by"] == "").all()  # the tree lists no experiment
    assert (drivers["low"] <= drivers["mean"]).all() and (drivers["mean"] <= drivers["high"]).all()
    ns = fitted.tree.north_star
    terms = set(retention["term"])
    assert {"intercept", ns, f"{ns} odds ratio per e-fold", "tenure", "hinge_tau"} <= terms
    h = fitted.tree.retention_horizon
    ret = retention[retention["term"].str.startswith(f"retention over {h} periods")]
    assert len(ret) == 3 * len(fitted.card["segments"])
    assert ret["mean"].between(0, 1).all()


def test_bundle_round_trip(fitted, tmp_path):
    out = tmp_path / "fit"
    inference.save_bundle(fitted, out)
    from nsm_sim.models.bundle import HISTORY_FILE, MANIFEST

    # a fit from a panel carries the forecast's history table
    expected = [*inference.BUNDLE_FILES, MANIFEST, HISTORY_FILE]
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    loaded = inference.load_bundle(out, tree=fitted.tree)
    pd.testing.assert_frame_equal(
        loaded.history.reset_index(drop=True),
        fitted.history.reset_index(drop=True),
        check_dtype=False,
    )
    assert loaded.card == fitted.card
    assert loaded.tree == fitted.tree
    for name in fitted.idata.posterior.data_vars:
        np.testing.assert_array_equal(
            loaded.idata.posterior[name].values, fitted.idata.posterior[name].values
        )
    pd.testing.assert_frame_equal(
        loaded.population.frame, fitted.population.frame, check_dtype=False
    )
    pd.testing.assert_frame_equal(
        inference.summarise(loaded)["drivers"], inference.summarise(fitted)["drivers"]
    )
    # diagnose runs again on the loaded bundle (its predictive checks' data travel along)
    again = inference.diagnose(loaded.idata, seed=fitted.card["seed"])
    assert list(again["status"]) == list(fitted.diagnostics["status"])
    # saving again over it replaces the files and leaves other files alone
    (out / "notes.txt").write_text("keep me")
    inference.save_bundle(fitted, out)
    assert (out / "notes.txt").read_text() == "keep me"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".fit.")]


def test_load_refuses_a_different_tree(fitted, tmp_path):
    out = inference.save_bundle(fitted, tmp_path / "fit")
    spec = fitted.tree.model_dump()
    spec["inputs"] = {"active_seats": ["invites_sent"], "boards_shared": [], "onboarding_done": []}
    other = MetricTree.model_validate(spec)
    with pytest.raises(BundleError) as err:
        inference.load_bundle(out, tree=other)
    message = str(err.value)
    assert "seats_activated" in message and "onboarding_done" in message
    assert "integrations_connected" in message


def test_load_reports_missing_and_damaged_files(fitted, tmp_path):
    out = inference.save_bundle(fitted, tmp_path / "fit")
    (out / "card.json").write_text("{not json")
    with pytest.raises(BundleError, match="card.json"):
        inference.load_bundle(out)
    out = inference.save_bundle(fitted, tmp_path / "fit2")
    (out / "posterior.nc").write_bytes(b"garbage")
    with pytest.raises(BundleError, match="posterior.nc"):
        inference.load_bundle(out)
    (out / "population.csv").unlink()
    with pytest.raises(BundleError, match="population.csv: missing"):
        inference.load_bundle(out)
    with pytest.raises(BundleError, match="not a folder"):
        inference.load_bundle(tmp_path / "nowhere")


def test_a_failed_save_leaves_nothing_behind(fitted, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(OSError, match="disk full"):
        inference.save_bundle(fitted, tmp_path / "fit")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_fit_with_pymc_nuts():
    """The other sampler by flag: same variables, same checks."""
    from nsm_sim.data import check_frame
    from nsm_sim.synth import generate_world

    world = generate_world(accounts=200, periods=10, seed=2)
    panel = check_frame(world.panel, world.tree, source="tiny")
    fit = inference.fit(panel, sampler="pymc", hinge="on", draws=60, tune=60, chains=2, seed=4)
    assert fit.card["sampler"] == "pymc"
    for name in ("elasticity", "elasticity_mu", "churn_slope", "hinge_tau"):
        assert name in fit.idata.posterior, name
    assert fit.idata.posterior.sizes["draw"] == 60
    assert "ppc_churn_per_period" in set(fit.diagnostics["check"])


def test_settings_name_the_low_rank_adaptation_only_where_it_runs():
    from nsm_sim.models.sampling import Sampler

    assert Sampler("nutpie", low_rank=True).settings()["low_rank"] is True
    assert "low_rank" not in Sampler("nutpie").settings()
    assert "low_rank" not in Sampler("pymc", low_rank=True).settings()  # PyMC's NUTS has none
