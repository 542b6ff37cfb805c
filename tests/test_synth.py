"""The synthetic world keeps its promises: known elasticities, a vanity and a lagging metric."""

import json

import numpy as np
import pandas as pd
import pytest

from nsm_sim.data import check_frame, demean_two_way, driver_stats, load_panel
from nsm_sim.spec import load_tree
from nsm_sim.synth import generate_world, write_world


@pytest.fixture(scope="module")
def demo_world():
    """The demo's size, 5,000 accounts x 52 weeks (generated once; takes well under a second)."""
    return generate_world(accounts=5000, periods=52, seed=0)


@pytest.fixture(scope="module")
def no_signal_world():
    """The same draws with the North Star's effect on churn switched off."""
    return generate_world(accounts=5000, periods=52, seed=0, churn_slope=0.0, hinge_jump=0.0)


def _within_churn_t(f, metric):
    """t statistic of the two-way demeaned log1p(metric) on churn rows against the other rows.

    ``f`` is a world's checked frame. Negative: account-periods with a higher metric than
    usual for the account (and the period) churn less.
    """
    dev = demean_two_way(
        np.log1p(f[metric].to_numpy()), pd.factorize(f["account_id"])[0], f["t"].to_numpy()
    )
    churn = f["churned"].to_numpy() == 1
    a, b = dev[churn], dev[~churn]
    return (a.mean() - b.mean()) / np.sqrt(a.var() / a.size + b.var() / b.size)


def _slopes(stats):
    """OLS slopes per segment from sufficient statistics (with an intercept when pooled)."""
    out = []
    for s in range(len(stats.segments)):
        if stats.within:
            out.append(np.linalg.solve(stats.XtX[s], stats.Xty[s]))
            continue
        K = len(stats.children)
        M = np.empty((K + 1, K + 1))
        M[0, 0], M[0, 1:], M[1:, 0], M[1:, 1:] = (
            stats.n[s],
            stats.sum_x[s],
            stats.sum_x[s],
            stats.XtX[s],
        )
        out.append(np.linalg.solve(M, np.r_[stats.sum_y[s], stats.Xty[s]])[1:])
    return np.array(out)


def test_shape_and_truth(world):
    p, truth, tree = world.panel, world.truth, world.tree
    assert list(p.columns) == ["account_id", "period", "plan", *tree.metrics, "churned"]
    assert p["account_id"].nunique() == truth["accounts"] == 1500
    assert p["period"].nunique() == truth["periods"] == 40
    assert set(truth["elasticities"]) == {f"{a}<-{b}" for a, b in tree.edges}
    assert all(0.2 <= b <= 0.8 for b in truth["elasticities"].values())
    assert truth["kappa"] > 0
    assert truth["vanity"] == "logins" and truth["lagging"] == "revenue" == tree.value
    assert set(truth["churn"]["intercept"]) == {"free", "team", "enterprise"}
    assert truth["realised"]["rows"] == len(p)
    assert truth["realised"]["churn_per_account_period"] == pytest.approx(p["churned"].mean())
    shares = p.drop_duplicates("account_id")["plan"].value_counts(normalize=True)
    assert shares["free"] == pytest.approx(0.50, abs=0.05)
    assert shares["team"] == pytest.approx(0.35, abs=0.05)
    assert shares["enterprise"] == pytest.approx(0.15, abs=0.04)
    assert (p[list(tree.metrics)] >= 0).all().all()
    np.testing.assert_array_equal(p["invites_sent"], p["invites_sent"].round(3))
    json.dumps(truth)  # serialisable


def test_rows_end_at_churn_and_joins_are_staggered(panel):
    f = panel.frame
    last = ~f["account_id"].duplicated(keep="last")
    assert (f.loc[~last, "churned"] == 0).all()  # churned only on an account's last row
    first_t = f.groupby("account_id")["t"].min()
    assert 0.5 < (first_t == 0).mean() < 0.7  # an initial cohort ...
    assert first_t.nunique() > 30  # ... and accounts joining over the periods
    assert f["tenure"].max() == 39


def test_same_seed_same_world():
    a = generate_world(accounts=300, periods=12, seed=5)
    b = generate_world(accounts=300, periods=12, seed=5)
    c = generate_world(accounts=300, periods=12, seed=6)
    pd.testing.assert_frame_equal(a.panel, b.panel)
    assert a.truth == b.truth
    assert not a.panel["projects_completed"].equals(c.panel["projects_completed"])


def test_demo_size_churn(demo_world):
    r = demo_world.truth["realised"]
    assert len(demo_world.panel) == r["rows"] > 100_000
    assert 0.01 <= r["churn_per_account_period"] <= 0.02  # weekly churn 1-2 %
    f = demo_world.panel
    cohort = f.groupby("account_id")["period"].transform("min") == f["period"].min()
    cohort_churned = f[cohort].groupby("account_id")["churned"].max().mean()
    assert 0.30 <= cohort_churned <= 0.50  # accounts observed for 52 weeks
    tau = demo_world.truth["churn"]["hinge_tau"]
    share_below = (f[demo_world.tree.north_star] < tau).mean()
    assert 0.30 <= share_below <= 0.40


def test_within_recovers_truth_and_pooled_is_biased_up(world, panel):
    for parent in world.tree.children:
        within = _slopes(driver_stats(panel, parent))
        pooled = _slopes(driver_stats(panel, parent, within=False))
        for k, child in enumerate(world.tree.children[parent]):
            truth = world.truth["elasticities"][f"{parent}<-{child}"]
            np.testing.assert_allclose(within[:, k], truth, atol=0.05)
            assert (pooled[:, k] > within[:, k] + 0.03).all()


def test_logins_is_a_size_proxy_only(demo_world):
    f = check_frame(demo_world.panel, demo_world.tree).frame
    means = np.log1p(f[["logins", "projects_completed"]]).groupby(f["account_id"]).mean()
    assert means.corr().iloc[0, 1] > 0.8  # across accounts logins tracks size (and the NSM)
    assert abs(_within_churn_t(f, "logins")) < 3  # within: nothing on churn
    assert _within_churn_t(f, "projects_completed") < -5  # the NSM does


def test_no_signal_world(demo_world, no_signal_world):
    truth = no_signal_world.truth["churn"]
    assert truth["slope"] == 0 and truth["hinge_jump"] == 0
    f = check_frame(no_signal_world.panel, no_signal_world.tree).frame
    assert abs(_within_churn_t(f, "projects_completed")) < 3
    # same draws: the metrics of the first period are identical, only churn differs
    first = [
        w.panel[w.panel["period"] == w.panel["period"].min()] for w in (demo_world, no_signal_world)
    ]
    pd.testing.assert_frame_equal(
        first[0].drop(columns="churned").reset_index(drop=True),
        first[1].drop(columns="churned").reset_index(drop=True),
    )
    rate = no_signal_world.truth["realised"]["churn_per_account_period"]
    assert 0.005 <= rate <= 0.02


def test_revenue_follows_the_north_star(world, panel):
    lag = world.truth["revenue_lag"]
    f = panel.frame
    a, t = pd.factorize(f["account_id"])[0], f["t"].to_numpy()
    dev = demean_two_way(np.log1p(f[["revenue", "projects_completed"]].to_numpy()), a, t)
    revenue = pd.Series(dev[:, 0])
    nsm = pd.Series(dev[:, 1]).groupby(a)
    past, future = revenue.corr(nsm.shift(lag)), revenue.corr(nsm.shift(-lag))
    assert past > 0.8 > 0.3 > future


def test_write_world(world, panel, world_dir):
    names = sorted(p.name for p in world_dir.iterdir())
    assert names == ["panel.csv", "tree.yaml", "truth.json"]  # no temporary files left
    assert json.loads((world_dir / "truth.json").read_text()) == world.truth
    tree = load_tree(world_dir / "tree.yaml")
    assert tree == world.tree
    assert load_panel(world_dir / "panel.csv", tree).fingerprint == panel.fingerprint


def test_write_world_is_atomic(world, tmp_path, monkeypatch):
    write_world(world, tmp_path)
    before = (tmp_path / "panel.csv").read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    with pytest.raises(OSError, match="disk full"):
        write_world(world, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["panel.csv", "tree.yaml", "truth.json"]
    assert (tmp_path / "panel.csv").read_bytes() == before


# --------------------------------------------------------------------------- world options

OPTION_SIZE = {"accounts": 2000, "periods": 40, "seed": 3}


@pytest.fixture(scope="module")
def default_small():
    return generate_world(**OPTION_SIZE)


def _residual_autocorrelation(world):
    """Lag-1 correlation within account, and sd, of active_seats' two-way demeaned residual."""
    f = check_frame(world.panel, world.tree).frame
    b = world.truth["elasticities"]
    resid = (
        np.log1p(f["active_seats"])
        - b["active_seats<-invites_sent"] * np.log1p(f["invites_sent"])
        - b["active_seats<-seats_activated"] * np.log1p(f["seats_activated"])
    ).to_numpy()
    account = pd.factorize(f["account_id"])[0]
    dev = pd.Series(demean_two_way(resid, account, f["t"].to_numpy()))
    previous = dev.groupby(account).shift(1)
    return dev.corr(previous), dev.std()


def test_residual_rho_makes_residuals_ar1_with_the_same_sd(default_small):
    rho_world = generate_world(**OPTION_SIZE, residual_rho=0.6)
    assert rho_world.truth["residual_rho"] == 0.6 and default_small.truth["residual_rho"] == 0.0
    r0, sd0 = _residual_autocorrelation(default_small)
    r6, sd6 = _residual_autocorrelation(rho_world)
    assert abs(r0) < 0.06  # demeaning within accounts of ~30 periods biases by about -1/T
    assert 0.5 < r6 < 0.62
    # the marginal sd is kept; demeaning removes a larger share of a correlated series
    assert 0.85 < sd6 / sd0 < 1.0
    first = [
        w.panel[w.panel["period"] == w.panel["period"].min()] for w in (rho_world, default_small)
    ]
    np.testing.assert_array_equal(first[0]["invites_sent"], first[1]["invites_sent"])


def test_churn_by_inactivity_marks_the_last_active_period():
    n = 3
    world = generate_world(**OPTION_SIZE, churn="inactivity", inactive_periods=n)
    f = check_frame(world.panel, world.tree).frame
    ns = world.tree.north_star
    idle = f[ns] == 0
    assert 0.02 < idle.mean() < 0.2  # genuine zeros
    nodes = list(world.tree.nodes)
    # mostly idle periods with no activity at all (a few are a North Star rounded to 0)
    assert (f.loc[idle, nodes] == 0).all(axis=1).mean() > 0.9
    churn_rows = f[f["churned"] == 1]
    assert len(churn_rows) > 100
    assert (churn_rows[ns] > 0).all()  # the last active period
    assert churn_rows["t"].max() <= world.truth["periods"] - 1 - n  # censored at the end
    assert churn_rows["tenure"].min() >= n - 1  # impossible at short tenure
    no_activity = (f[nodes] == 0).all(axis=1)
    assert not no_activity[f["tenure"] < n].any()  # active while onboarding
    truth = world.truth["churn"]
    assert truth["definition"] == "inactivity" and truth["inactive_periods"] == n
    # idle periods are more common for small accounts (zero inflation falls with size)
    size = np.log1p(f.groupby("account_id")["logins"].transform("mean"))
    assert idle[size < size.median()].mean() > 1.5 * idle[size >= size.median()].mean()


def test_static_trait_is_constant_within_account_and_tracks_size(default_small):
    world = generate_world(**OPTION_SIZE, static_trait=True)
    trait = world.truth["static_trait"]
    assert trait["name"] == "signup_team_size" and trait["churn_effect"] == 0.0
    assert "signup_team_size" in world.tree.candidates
    p = world.panel
    assert (p.groupby("account_id")["signup_team_size"].nunique() == 1).all()
    assert (p["signup_team_size"] >= 1).all()
    per_account = p.groupby("account_id")[["signup_team_size", "logins"]].mean()
    assert np.log(per_account).corr().iloc[0, 1] > 0.5
    # its own stream: every other column is the default world's
    pd.testing.assert_frame_equal(p.drop(columns="signup_team_size"), default_small.panel)


def test_binary_north_star(default_small):
    world = generate_world(**OPTION_SIZE, binary_north_star=True)
    ns = world.tree.north_star
    p = world.panel
    assert set(p[ns].unique()) == {0.0, 1.0}
    assert 0.2 < (p[ns] == 0).mean() < 0.5
    assert world.truth["churn"]["hinge_jump"] == 0.0 and world.truth["north_star_binary"]
    assert p.loc[p[ns] == 0, "churned"].mean() > p.loc[p[ns] == 1, "churned"].mean()
    first = [w.panel[w.panel["period"] == w.panel["period"].min()] for w in (world, default_small)]
    for leaf in ("invites_sent", "active_seats"):
        np.testing.assert_array_equal(first[0][leaf], first[1][leaf])


def test_option_values_are_checked():
    for bad in (
        {"residual_rho": 1.0},
        {"churn": "silence"},
        {"churn": "inactivity", "inactive_periods": 0},
    ):
        with pytest.raises(ValueError):
            generate_world(accounts=50, periods=10, seed=1, **bad)


def test_generate_command_passes_the_world_options(tmp_path):
    from typer.testing import CliRunner

    from nsm_sim.cli import app

    args = ["generate", "--out", str(tmp_path), "--accounts", "200", "--periods", "16"]
    options = ["--residual-rho", "0.5", "--churn", "inactivity", "--inactive-periods", "3"]
    result = CliRunner().invoke(app, [*args, *options, "--static-trait", "--binary-north-star"])
    assert result.exit_code == 0, result.output
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["residual_rho"] == 0.5 and truth["churn"]["inactive_periods"] == 3
    assert truth["static_trait"]["name"] in load_tree(tmp_path / "tree.yaml").candidates
    assert truth["north_star_binary"] is not None
    bad = CliRunner().invoke(app, [*args, "--churn", "silence"])
    assert bad.exit_code == 2 and "expected hazard or inactivity" in bad.output
