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


def _within_churn_t(world, metric):
    """t statistic of the two-way demeaned log1p(metric) on churn rows against the other rows.

    Negative: account-periods with a higher metric than usual for the account (and the
    period) churn less.
    """
    f = check_frame(world.panel, world.tree).frame
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
    assert abs(_within_churn_t(demo_world, "logins")) < 3  # within: nothing on churn
    assert _within_churn_t(demo_world, "projects_completed") < -5  # the NSM does


def test_no_signal_world(demo_world, no_signal_world):
    truth = no_signal_world.truth["churn"]
    assert truth["slope"] == 0 and truth["hinge_jump"] == 0
    assert abs(_within_churn_t(no_signal_world, "projects_completed")) < 3
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
