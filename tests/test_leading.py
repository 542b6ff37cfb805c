"""Leading: timing, within/between, predictive power, threshold and the verdict rule."""

import io
import json

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from scipy import stats
from scipy.special import expit
from typer.testing import CliRunner

from nsm_sim import leading as L
from nsm_sim.cli import app
from nsm_sim.data import ChurnCells, check_frame
from nsm_sim.errors import DataError
from nsm_sim.leading import Effect, VerdictRule, verdict
from nsm_sim.leading.hinge import retention_split
from nsm_sim.output import report, terminal
from nsm_sim.synth import generate_world, write_world

# --------------------------------------------------------------------------- verdict rule

CLEAR = Effect(-0.8, 0.1)  # z = 8
NIL = Effect(0.02, 0.1)
RULE = VerdictRule()
Z99 = stats.norm.ppf(0.995)


def judge(within=CLEAR, between=CLEAR, skill=0.03, precedes=(), preceded_by=(), rule=RULE):
    v = verdict(
        within=within,
        between=between,
        skill=skill,
        precedes=precedes,
        preceded_by=preceded_by,
        rule=rule,
    )
    assert v.why  # every verdict explains itself
    return v.label


def test_every_verdict_is_reachable():
    assert judge() == "LEADING"
    assert judge(precedes=("revenue",)) == "LEADING"
    assert judge(within=NIL, between=NIL, skill=0.0) == "NO SIGNAL"
    assert judge(within=NIL) == "VANITY"
    assert judge(preceded_by=("projects_completed",)) == "LAGGING"
    # preceded by a predictive metric but also precedes another one: feedback
    assert judge(preceded_by=("a",), precedes=("b",)) == "COINCIDENT"
    # predictive out of sample, yet neither effect is clear
    assert judge(within=NIL, between=NIL, skill=0.02) == "COINCIDENT"


def test_clear_boundary_is_the_99_percent_interval():
    just_in = Effect(-(Z99 + 1e-6) * 0.1, 0.1)
    just_out = Effect(-(Z99 - 1e-6) * 0.1, 0.1)
    assert just_in.clear(0.99) and not just_out.clear(0.99)
    assert judge(within=just_out, between=NIL, skill=0.0) == "NO SIGNAL"
    assert judge(within=just_in, between=NIL, skill=0.03) == "LEADING"
    assert judge(within=NIL, between=just_in, skill=0.0) == "VANITY"
    # a looser rule makes the same numbers clear
    loose = VerdictRule(clear_prob=0.9)
    assert judge(within=Effect(-0.2, 0.1), between=NIL, skill=0.03, rule=loose) == "LEADING"


def test_leading_needs_out_of_sample_skill():
    """A clear within effect that does not forecast later churn is not LEADING."""
    assert judge(skill=RULE.min_skill) == "LEADING"
    assert judge(skill=RULE.min_skill - 1e-9) == "COINCIDENT"
    v = verdict(within=CLEAR, between=NIL, skill=-0.02)
    assert v.label == "COINCIDENT"
    assert "no better than segment and tenure" in v.why and "-2.0%" in v.why


def test_skill_boundary_of_no_signal():
    assert judge(within=NIL, between=NIL, skill=RULE.min_skill - 1e-9) == "NO SIGNAL"
    assert judge(within=NIL, between=NIL, skill=RULE.min_skill) == "COINCIDENT"


def test_vanity_ratio_and_sign():
    between = Effect(-0.8, 0.05)
    ratio = RULE.vanity_ratio * 0.8
    assert judge(within=Effect(-(ratio - 1e-3), 0.01), between=between) == "VANITY"
    assert judge(within=Effect(-(ratio + 1e-3), 0.01), between=between) == "LEADING"
    # a clear within effect of the opposite sign does not back the between effect up
    assert judge(within=Effect(+0.5, 0.1), between=between) == "VANITY"
    # without a clear between effect, a clear within effect of either sign leads
    assert judge(within=Effect(+0.5, 0.1), between=NIL) == "LEADING"


def test_lagging_comes_before_vanity_and_leading():
    # a lagging metric (revenue) is a size proxy too; timing decides
    assert judge(within=NIL, preceded_by=("projects_completed",)) == "LAGGING"
    # no signal at all wins over timing
    assert judge(within=NIL, between=NIL, skill=0.0, preceded_by=("x",)) == "NO SIGNAL"


def test_precedence_reads_significance_and_dominance():
    rows = [
        ("a", "b", 500.0, 1e-9),
        ("b", "a", 30.0, 1e-9),  # significant, but dominated 500 : 30
        ("a", "c", 5.0, 1e-4),
        ("c", "a", 3.0, 1e-3),  # 5 < 2 * 3: no dominance either way
        ("b", "c", 1.0, 0.4),
        ("c", "b", 1.0, 0.4),
    ]
    timing = pd.DataFrame(rows, columns=["cause", "effect", "F", "p_value"])
    prec = L.precedence(timing, predictive=["a", "b", "c"])
    assert prec["a"] == (("b",), ())
    assert prec["b"] == ((), ("a",))
    assert prec["c"] == ((), ())
    # only predictive metrics count as predecessors
    assert L.precedence(timing, predictive=["b"])["b"] == ((), ())


# --------------------------------------------------------------------------- timing


def lead_lag_frame(accounts=400, periods=30, lead=2, seed=0):
    """x is AR(1) within each account; y follows x by `lead` periods; period shocks on both."""
    rng = np.random.default_rng(seed)
    size = rng.normal(0, 1, (accounts, 1))
    shock = np.cumsum(rng.normal(0, 0.1, periods))
    e = rng.normal(0, 1, (accounts, periods + lead))
    x = np.zeros_like(e)
    for t in range(1, e.shape[1]):
        x[:, t] = 0.5 * x[:, t - 1] + e[:, t]
    y = 0.6 * x[:, :-lead] + rng.normal(0, 0.5, (accounts, periods))
    x = x[:, lead:]
    frame = pd.DataFrame(
        {
            "account_id": np.repeat([f"a{i:04d}" for i in range(accounts)], periods),
            "t": np.tile(np.arange(periods), accounts),
            # granger() works on log1p: store expm1 of the series
            "x": np.expm1((2 + size + shock + 0.3 * x).ravel()),
            "y": np.expm1((1 + 2 * size + shock + 0.3 * y).ravel()),
        }
    )
    return frame


def test_granger_finds_the_leading_series():
    g = L.granger(lead_lag_frame(), ["x", "y"], lags=3).set_index(["cause", "effect"])
    assert g.loc[("x", "y"), "p_value"] < 1e-12
    # the reverse direction picks up only the O(1/T) bias of fixed effects with lagged
    # dependent variables (Nickell 1981): small next to the true direction
    assert g.loc[("x", "y"), "F"] > 20 * g.loc[("y", "x"), "F"]
    assert abs(g.loc[("y", "x"), "coef_sum"]) < 0.1
    # y = 0.6 x[t-2] + ..., both scaled by 0.3: the elasticity to a sustained change is 0.6
    assert g.loc[("x", "y"), "coef_sum"] == pytest.approx(0.6, abs=0.1)
    prec = L.precedence(g.reset_index(), predictive=["x", "y"])
    assert prec["x"] == (("y",), ()) and prec["y"] == ((), ("x",))


def test_granger_coefficients_equal_dummy_variable_ols():
    f = lead_lag_frame(accounts=40, periods=12, seed=3)
    L_ = 2
    g = L.granger(f, ["x", "y"], lags=L_).set_index(["cause", "effect"])
    # direct: OLS of y on its lags, x's lags, account and period dummies
    z = np.log1p(f[["x", "y"]].to_numpy())
    acc = pd.factorize(f["account_id"])[0]
    t = f["t"].to_numpy()
    rows = np.flatnonzero(t >= L_)
    lagged = [z[rows - k] for k in range(1, L_ + 1)]
    X = np.column_stack(
        [lg[:, 1] for lg in lagged]
        + [lg[:, 0] for lg in lagged]
        + [np.eye(acc.max() + 1)[acc[rows]], np.eye(t.max() + 1)[t[rows]][:, L_ + 1 :]]
    )
    beta = np.linalg.lstsq(X, z[rows, 1], rcond=None)[0]
    assert g.loc[("x", "y"), "coef_sum"] == pytest.approx(beta[L_ : 2 * L_].sum(), abs=1e-8)


def test_cross_correlation_sign_convention():
    f = lead_lag_frame(lead=2)
    cc = L.cross_correlations(f, ["y", "x"], reference="y", lags=4)
    peak = cc.loc[cc["corr"].abs().idxmax()]
    # x leads the reference y by 2 periods: positive lag by the stated convention
    assert peak["metric"] == "x" and peak["lag"] == 2 and peak["outside"]
    assert "lag k > 0: the metric leads" in L.LAG_CONVENTION
    assert np.allclose(cc["band"], 1.96 / np.sqrt(cc["n"]))


def with_static(frame, seed=0):
    """Add ``trait``, constant within each account (a plan size at signup)."""
    rng = np.random.default_rng(seed)
    codes, accounts = pd.factorize(frame["account_id"])
    return frame.assign(trait=np.round(np.exp(1 + rng.normal(0, 0.5, len(accounts))))[codes])


def test_granger_does_not_test_a_metric_that_never_moves_within_an_account():
    f = with_static(lead_lag_frame())
    g = L.granger(f, ["x", "y", "trait"], lags=3).set_index(["cause", "effect"])
    fixed = [pair for pair in g.index if "trait" in pair]
    assert len(fixed) == 4
    assert g.loc[fixed, ["F", "p_value", "coef_sum"]].isna().all().all()
    assert all("trait never moves within an account" in n for n in g.loc[fixed, "note"])
    # the other pairs are the same numbers as without the static metric
    alone = L.granger(f, ["x", "y"], lags=3).set_index(["cause", "effect"])
    tested = g.drop(index=fixed)
    assert (tested["note"] == "").all() and (tested["F"] >= 0).all()
    pd.testing.assert_frame_equal(tested, alone)
    # and nothing precedes from rounding noise
    prec = L.precedence(g.reset_index(), predictive=["x", "y", "trait"])
    assert prec["trait"] == ((), ()) and prec["x"] == (("y",), ())


def test_cross_correlations_of_a_metric_that_never_moves_are_not_computed():
    f = with_static(lead_lag_frame())
    f["trait"] *= 1 + 1e-12 * np.sin(np.arange(len(f)))  # rounding-level changes only
    cc = L.cross_correlations(f, ["y", "x", "trait"], reference="y", lags=2)
    trait = cc[cc["metric"] == "trait"]
    assert trait["corr"].isna().all() and not trait["outside"].any()
    assert cc.loc[cc["metric"] == "x", "corr"].notna().all()


def test_granger_refuses_a_single_account_and_too_few_degrees_of_freedom():
    f = lead_lag_frame(accounts=50, periods=30)
    one = f[f["account_id"] == "a0000"]
    with pytest.raises(ValueError, match=r"1 account\(s\).*expected at least 2"):
        L.granger(one, ["x", "y"], lags=2)
    short = f[f["t"] < 2]  # no account has lags + 1 = 3 consecutive periods
    with pytest.raises(ValueError, match=r"0 account\(s\)"):
        L.granger(short, ["x", "y"], lags=2)
    # three accounts: the cluster-robust covariance of 3 lag coefficients has rank 2 < 3
    three = f[f["account_id"].isin(["a0000", "a0001", "a0002"])]
    g = L.granger(three, ["x", "y"], lags=3)
    assert g["F"].isna().all() and g["note"].str.contains("has rank 2").all()
    assert (g["df2"] == 2).all()
    # two: with period effects their within residuals are each other's negatives, and the
    # scores cancel within each account (rank 0, not a huge F from rounding noise)
    two = f[f["account_id"].isin(["a0000", "a0001"])]
    assert L.granger(two, ["x", "y"], lags=3)["note"].str.contains("has rank 0").all()
    with pytest.raises(ValueError, match="no residual degrees of freedom"):
        L.granger(f[f["t"] < 4], ["x", "y"], lags=3)


def test_granger_f_is_never_negative():
    for seed in range(4):
        f = lead_lag_frame(accounts=12, periods=15, seed=seed)
        both = np.expm1(np.log1p(f["x"]) + np.log1p(f["y"]))
        # a trait with rounding-level wiggles: once F = 161.6 or a negative F, now untested
        wiggle = with_static(f, seed)["trait"] * (1 + 1e-12 * np.sin(np.arange(len(f))))
        g = L.granger(f.assign(z=both, w=wiggle), ["x", "y", "z", "w"], lags=2)
        tested = g[g["note"] == ""]
        assert len(tested) == 6 and (tested["F"] >= 0).all()
        assert (tested["p_value"].between(0, 1)).all()
        assert g.loc[g["note"] != "", "note"].str.contains("w never moves").all()


# --------------------------------------------------------------------------- within / between


def test_within_between_separates_size_from_movement():
    """Churn driven by an account's size only vs by its movements only (known truth)."""
    rng = np.random.default_rng(7)
    A, T = 3000, 20
    size = rng.normal(0, 0.7, A)
    move = rng.normal(0, 0.5, (A, T))
    size_metric = np.expm1(2 + size[:, None] + rng.normal(0, 0.3, (A, T)))  # vanity-like
    move_metric = np.expm1(2 + move)  # within-account movements only
    logit = -4 - 0.8 * size[:, None] - 1.0 * move
    event = rng.random((A, T)) < expit(logit)
    end = np.where(event.any(axis=1), event.argmax(axis=1), T - 1)
    ii, tt = np.nonzero(np.arange(T)[None, :] <= end[:, None])
    frame = pd.DataFrame(
        {
            "account_id": ii,
            "t": tt,
            "segment": "all",
            "tenure": tt,
            "churned": (event.any(axis=1)[ii] & (tt == end[ii])).astype(int),
            "size_metric": size_metric[ii, tt],
            "move_metric": move_metric[ii, tt],
        }
    )
    wb = L.within_between(frame, ["size_metric", "move_metric"], ["all"]).set_index("metric")
    s, m = wb.loc["size_metric"], wb.loc["move_metric"]
    assert s["between_high"] < 0 and s["within_low"] < 0 < s["within_high"]
    assert m["within_low"] < -1.0 < m["within_high"]
    assert (
        judge(
            within=Effect(s["within_mean"], s["within_sd"]),
            between=Effect(s["between_mean"], s["between_sd"]),
        )
        == "VANITY"
    )


def test_a_static_metric_gets_no_within_effect_and_says_why(panel):
    frame = with_static(panel.frame)
    ns = panel.tree.north_star
    wb = L.within_between(frame, [ns, "trait"], panel.segments, reference=ns)
    wb = wb.set_index("metric")
    trait, own = wb.loc["trait"], wb.loc[ns]
    assert trait["static"] and trait["within_share"] < 1e-20
    within = ["within_mean", "within_low", "within_high", "within_sd"]
    assert np.isnan(trait[within].to_numpy(float)).all()
    assert np.isfinite(trait[["between_mean", "between_sd"]].to_numpy(float)).all()
    assert not own["static"] and own["within_share"] > 0.01 and np.isnan(own["level_corr"])
    # drawn apart from size: its account level does not track the North Star's
    assert abs(trait["level_corr"]) < 0.2
    v = verdict(
        within=Effect(np.nan, np.nan),
        between=Effect(-0.9, 0.1),
        skill=0.01,
        static=True,
        level_corr=trait["level_corr"],
    )
    assert v.label == "VANITY"
    assert "cannot be tested within accounts" in v.why and "churn less" in v.why
    assert "account size" not in v.why and "segment by" in v.why
    sized = verdict(
        within=Effect(np.nan, np.nan),
        between=Effect(0.9, 0.1),
        skill=0.01,
        static=True,
        level_corr=0.8,
    )
    assert "churn more" in sized.why and "tracks account size" in sized.why
    assert "+0.80" in sized.why
    # never LEADING or LAGGING, whatever the rest says
    for skill in (0.0, 0.05):
        label = judge(within=CLEAR, between=NIL, skill=skill, preceded_by=("x",))
        assert label in ("LAGGING", "COINCIDENT")
        v = verdict(within=CLEAR, between=NIL, skill=skill, preceded_by=("x",), static=True)
        assert v.label == ("COINCIDENT" if skill else "NO SIGNAL")
        assert "cannot be tested within accounts" in v.why


def test_vanity_says_account_size_only_when_the_levels_go_with_the_north_star():
    tracks = verdict(within=NIL, between=CLEAR, skill=0.02, level_corr=0.9)
    apart = verdict(within=NIL, between=CLEAR, skill=0.02, level_corr=0.1)
    assert tracks.label == apart.label == "VANITY"
    assert "tracks account size" in tracks.why and "+0.90" in tracks.why
    assert "account size" not in apart.why and "tells accounts apart" in apart.why


def test_check_refuses_a_tree_input_that_never_moves_within_an_account(world):
    f = world.panel.copy()
    child = world.tree.children[world.tree.north_star][0]
    f[child] = f.groupby("account_id")[child].transform("first")
    with pytest.raises(DataError) as err:
        check_frame(f, world.tree)
    message = err.value.message
    assert f"{child}: never moves within an account" in message
    assert f"edge {world.tree.north_star}<-{child}" in message
    assert "cannot have an estimated elasticity" in message
    # a candidate that never moves is accepted (validate says what it can and cannot tell)
    tree = world.tree.model_copy(update={"candidates": [*world.tree.candidates, "trait"]})
    assert "trait" in check_frame(with_static(world.panel), tree).frame


# --------------------------------------------------------------------------- threshold


def test_retention_split_is_the_product_of_survival_over_the_horizon():
    frame = pd.DataFrame(
        {
            "segment": ["a", "a"],
            "segment_idx": [0, 0],
            "tenure_band": [0, 0],
            "log_tenure": np.log1p([3.0, 3.0]),
            "level": [2.0, 20.0],
            "x": np.log1p([2.0, 20.0]),
            "at_risk": [10, 30],
            "churned": [1, 1],
        }
    )
    cells = ChurnCells(metric="m", segments=("a",), frame=frame)
    draws = {
        "churn_intercept": np.array([[-3.0]]),
        "churn_slope": np.array([[-0.2]]),
        "tenure_slope": np.array([-0.1]),
        "hinge_jump": np.array([-1.0]),
        "hinge_tau": np.array([8.0]),
    }
    above, below = retention_split(draws, cells, horizon=4)

    def survive(level):
        h = [
            expit(
                -3.0
                - 0.2 * np.log1p(level)
                - 0.1 * np.log1p(3.0 + k)
                - 1.0 * expit((np.log1p(level) - np.log1p(8.0)) / 0.05)
            )
            for k in range(4)
        ]
        return np.prod(1 - np.array(h))

    assert above[0] == pytest.approx(survive(20.0), rel=1e-12)
    assert below[0] == pytest.approx(survive(2.0), rel=1e-12)


# --------------------------------------------------------------------------- inputs


def test_bad_inputs_raise_data_errors(panel):
    with pytest.raises(DataError, match="not_a_metric"):
        L.validate(panel, metrics=["projects_completed", "not_a_metric"])
    with pytest.raises(DataError, match="cutoff"):
        L.validate(panel, train_share=0.999)


def test_cli_refuses_a_static_input_and_a_single_account(tmp_path):
    """Exit 2 with the column, the tree node and why (nothing is fitted)."""
    runner = CliRunner()
    world = generate_world(accounts=120, periods=12, seed=5)  # refused whatever the size
    static = world.panel.copy()
    child = world.tree.children[world.tree.north_star][0]
    static[child] = static.groupby("account_id")[child].transform("first")
    write_world(world, tmp_path)
    static.to_csv(tmp_path / "static.csv", index=False)
    tree = str(tmp_path / "tree.yaml")
    result = runner.invoke(app, ["check", tree, "--data", str(tmp_path / "static.csv")])
    assert result.exit_code == 2
    assert f"{child}: never moves within an account" in " ".join(result.output.split())
    one = world.panel[world.panel["account_id"] == world.panel["account_id"].iloc[0]]
    one.to_csv(tmp_path / "one.csv", index=False)
    result = runner.invoke(app, ["validate", tree, "--data", str(tmp_path / "one.csv")])
    assert result.exit_code == 2
    assert "only 1 account(s)" in " ".join(result.output.split())


# --------------------------------------------------------------------------- real fits


@pytest.fixture(scope="module")
def validation(panel):
    # the threshold's fits in a second process, as nsm-sim validate runs them on two cores
    return L.validate(panel, seed=1, draws=300, tune=300, chains=2, workers=2)


@pytest.fixture(scope="module")
def no_signal():
    world = generate_world(1500, 40, seed=11, churn_slope=0.0, hinge_jump=0.0)
    return L.validate(check_frame(world.panel, world.tree), seed=1, draws=300, tune=300, chains=2)


@pytest.mark.slow
def test_synthetic_world_verdicts(validation, world):
    v = validation.verdicts()
    assert v[world.tree.north_star] == "LEADING"
    assert v[world.truth["vanity"]] == "VANITY"
    assert v[world.truth["lagging"]] == "LAGGING"
    table = validation.metrics.set_index("metric")
    assert table.loc[world.tree.north_star, "rank"] == 1
    assert (table["rhat_max"] < 1.1).all()
    assert "North Star projects_completed: LEADING." in validation.summary


@pytest.mark.slow
def test_every_fit_has_its_trust_gates(validation):
    checks = validation.checks
    metrics = list(validation.metrics["metric"])
    fits = checks.groupby(["fit", "metric"]).ngroups
    assert fits == 2 * len(metrics) + 1
    assert {"r_hat", "ess_bulk", "ess_tail", "divergences"} <= set(checks["check"])
    assert set(checks["status"]) <= {"PASS", "REVIEW", "FAIL"}
    gates = validation.to_dict()["diagnostics"]
    json.dumps(gates)
    assert len(gates["fits"]) == fits and gates["status"] in ("PASS", "REVIEW", "FAIL")
    assert len(gates["warnings"]) == int((checks["status"] != "PASS").sum())
    # the in-sample fits' gates are the metrics table's R-hat and divergences
    own = checks[checks["fit"] == L.validation.IN_SAMPLE_FIT].set_index(["metric", "check"])
    table = validation.metrics.set_index("metric")
    for m in metrics:
        assert own.loc[(m, "divergences"), "value"] == table.loc[m, "divergences"]
        assert own.loc[(m, "r_hat"), "value"] <= table.loc[m, "rhat_max"] + 1e-12
    assert validation.summary.splitlines()[-1].startswith(f"Trust gates of the {fits} fits")
    out, err = (Console(file=io.StringIO(), width=100, color_system=None) for _ in range(2))
    terminal.render_validation(out, validation, verbose=True, err=err)
    assert "Trust gates of the fits" in out.file.getvalue()
    assert err.file.getvalue().count("warning:") == len(gates["warnings"])
    quiet = Console(file=io.StringIO(), width=100, color_system=None)
    terminal.render_validation(out, validation, err=quiet)
    assert quiet.file.getvalue().count("warning:") == (1 if gates["warnings"] else 0)
    figures = {"retention_by_level.png": b"", "timing.png": b""}
    section = report._leading_section(validation, validation.north_star, figures)
    shown = [b.frame for b in section.blocks if getattr(b, "caption", "").startswith("Trust")]
    assert len(shown) == 1 and len(shown[0]) == fits


@pytest.fixture(scope="module")
def static_world():
    return generate_world(1500, 40, seed=11, static_trait=True)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto")  # 400 draws
def test_a_static_candidate_is_judged_for_what_it_can_tell(static_world):
    world = static_world
    trait = world.truth["static_trait"]["name"]
    panel = check_frame(world.panel, world.tree)
    v = L.validate(panel, seed=1, draws=200, tune=200, chains=2)
    row = v.metrics.set_index("metric").loc[trait]
    assert row["static"] and np.isnan(row["within_mean"])
    assert row["verdict"] in ("VANITY", "COINCIDENT", "NO SIGNAL")
    assert "cannot be tested within accounts" in row["why"]
    assert row["precedes"] == "" and row["preceded_by"] == ""
    timing = v.timing[(v.timing["cause"] == trait) | (v.timing["effect"] == trait)]
    assert len(timing) == 2 * (len(v.metrics) - 1) and timing["F"].isna().all()
    # the trait is drawn with size: its account level goes with the North Star's
    if row["verdict"] == "VANITY":
        assert ("tracks account size" in row["why"]) == (abs(row["level_corr"]) >= 0.5)
    assert v.verdicts()[world.tree.north_star] == "LEADING"
    json.dumps(v.to_dict())


@pytest.mark.slow
def test_timing_on_the_synthetic_world(validation, world):
    g = validation.timing.set_index(["cause", "effect"])
    ns, rev = world.tree.north_star, world.truth["lagging"]
    assert g.loc[(ns, rev), "p_value"] < 1e-6
    assert g.loc[(ns, rev), "F"] > 10 * g.loc[(rev, ns), "F"]
    # revenue follows the North Star by revenue_lag periods: the peak is at lag -revenue_lag
    cc = validation.cross_correlations
    rc = cc[cc["metric"] == rev]
    assert rc.loc[rc["corr"].abs().idxmax(), "lag"] == -world.truth["revenue_lag"]


@pytest.mark.slow
def test_threshold_recovers_the_planted_tau(validation, world):
    thr = validation.threshold
    tau = world.truth["churn"]["hinge_tau"]
    assert thr["supported"]
    assert thr["tau"]["low"] <= tau <= thr["tau"]["high"]
    assert thr["jump"]["high"] < 0
    assert thr["retention_above"]["mean"] > thr["retention_below"]["mean"]
    assert thr["rhat_max"] < 1.1
    assert "retain at" in thr["sentence"]


@pytest.mark.slow
def test_no_effect_world_is_no_signal(no_signal):
    assert no_signal.verdicts()["projects_completed"] == "NO SIGNAL"
    assert not no_signal.threshold["supported"]


@pytest.mark.slow
def test_to_dict_is_json_and_complete(validation, panel):
    d = validation.to_dict()
    json.dumps(d)
    m = d["metrics"][0]
    for key in ("metric", "verdict", "rank", "log_loss", "auc", "elpd_loo", "within", "between"):
        assert key in m
    assert set(m["within"]) >= {"mean", "low", "high"}
    assert [x["rank"] for x in d["metrics"]] == [1, 2, 3]
    assert d["threshold"]["tau"]["low"] <= d["threshold"]["tau"]["high"]
    assert d["settings"]["lag_convention"] == L.LAG_CONVENTION
    # the in-sample fits carry the per-account log-likelihood used by LOO
    ll = validation.posteriors["projects_completed"].log_likelihood["churn"]
    assert ll.sizes["account"] == panel.frame["account_id"].nunique()


@pytest.mark.slow
def test_scores_do_not_see_rows_after_the_cutoff(panel):
    """Fits use rows before the cutoff only: altering later rows changes no training draw."""
    ns = panel.tree.north_star
    sampling = L.RetentionSampler(draws=100, tune=100, chains=2)
    kw = {"seed": 3, "sampling": sampling, "in_sample": False}
    before = L.predictive_power(panel, [ns], **kw)
    f = panel.frame.copy()
    later = f["t"] >= before.cutoff
    accounts = pd.unique(f["account_id"])
    touched = f["account_id"].isin(accounts[::2]).to_numpy()
    f.loc[later & touched, ns] = f.loc[later & touched, ns] * 3.0
    last = ~f["account_id"].duplicated(keep="last")
    f.loc[later & touched & last, "churned"] = 1  # censored accounts now churn at the end
    altered = check_frame(
        f.drop(columns=["t", "tenure"]).rename(columns={"segment": panel.tree.segment}),
        panel.tree,
    )
    after = L.predictive_power(altered, [ns], **kw)
    a, b = before.train_posteriors[ns].posterior, after.train_posteriors[ns].posterior
    assert np.array_equal(a["churn_slope"].values, b["churn_slope"].values)
    scored_untouched = ~touched[later.to_numpy()]
    assert np.array_equal(
        before.predictions[ns][scored_untouched], after.predictions[ns][scored_untouched]
    )
    assert not np.array_equal(before.predictions[ns], after.predictions[ns])


@pytest.mark.slow
def test_a_metrics_fits_do_not_depend_on_the_others_judged(panel):
    """Each fit's seed comes from its stage and metric: the same draws alone or among others."""
    ns = panel.tree.north_star
    sampling = L.RetentionSampler(draws=100, tune=100, chains=2)
    kw = {"seed": 5, "sampling": sampling, "in_sample": False}
    alone = L.predictive_power(panel, [ns], **kw)
    among = L.predictive_power(panel, ["logins", ns], **kw)
    a, b = alone.train_posteriors[ns].posterior, among.train_posteriors[ns].posterior
    assert np.array_equal(a["churn_slope"].values, b["churn_slope"].values)
    assert alone.scores.set_index("metric").loc[ns, "log_loss"] == pytest.approx(
        among.scores.set_index("metric").loc[ns, "log_loss"], rel=1e-12
    )
    # the two metrics' fits are different models of the same rows
    c = among.train_posteriors["logins"].posterior
    assert not np.allclose(c["churn_slope"].values.mean(), a["churn_slope"].values.mean())


@pytest.mark.slow
def test_the_threshold_fitted_in_a_second_process_is_the_one_fitted_here(validation, panel):
    from nsm_sim.leading.hinge import THRESHOLD_BINS, threshold_fit

    sampling = L.RetentionSampler(draws=300, tune=300, chains=2)
    here, _ = threshold_fit(panel, seed=1, sampling=sampling, bins=THRESHOLD_BINS)
    there = validation.threshold
    assert there["tested"] and here["tested"]
    for key in ("tau", "jump", "combined", "retention_above", "retention_below"):
        assert there[key] == here[key]
    assert there["elpd_diff"] == here["elpd_diff"]
    assert there["elpd_diff_se"] == here["elpd_diff_se"]
