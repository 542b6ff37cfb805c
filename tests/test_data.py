"""Loading and checking panels; the reductions against direct computations on the rows."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from nsm_sim.data import (
    ALL_SEGMENTS,
    MAX_EXAMPLES,
    check_frame,
    churn_cells,
    demean_two_way,
    describe,
    driver_stats,
    load_panel,
    starting_population,
)
from nsm_sim.data.cells import tenure_edges
from nsm_sim.errors import DataError, InputError
from nsm_sim.spec import MetricTree, load_tree
from nsm_sim.synth import write_world

DATA = Path(__file__).parent / "data"
BROKEN = yaml.safe_load((DATA / "broken_panels.yaml").read_text())


@pytest.fixture(scope="module")
def tiny_tree():
    return load_tree(DATA / "tiny_tree.yaml")


@pytest.fixture(scope="module")
def tiny_frame():
    return pd.read_csv(DATA / "valid.csv", dtype={"account_id": "str"})


@pytest.fixture(scope="module")
def small_panel(world):
    """An unbalanced panel of 70 accounts (staggered joins, churn) from the synthetic world."""
    ids = world.panel["account_id"].drop_duplicates().iloc[:70]
    return check_frame(world.panel[world.panel["account_id"].isin(ids)], world.tree)


# --------------------------------------------------------------------------- broken files


def test_every_broken_file_is_listed():
    on_disk = {p.name for p in DATA.glob("*.csv")} - {"valid.csv"}
    assert on_disk == set(BROKEN)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_panel_reports_its_problems(name, tiny_tree):
    case = BROKEN[name]
    with pytest.raises(DataError) as err:
        load_panel(DATA / name, tiny_tree)
    message = err.value.message
    assert err.value.source == str(DATA / name)
    assert message.startswith(f"{DATA / name}: {case['problems']} problem(s)")
    assert len(err.value.problems) == case["problems"]
    for expected in case["expect"]:
        assert expected in message


def test_offending_rows_are_capped_at_five(tiny_tree):
    with pytest.raises(DataError) as err:
        load_panel(DATA / "many_offenders.csv", tiny_tree)
    (problem,) = err.value.problems
    assert len(re.findall(r"\(a\d\d, 2025-\d\d-\d\d\)", problem)) == MAX_EXAMPLES
    assert "in 7 row(s)" in problem


def test_valid_tiny_panel(tiny_tree, tiny_frame):
    panel = load_panel(DATA / "valid.csv", tiny_tree)
    f = panel.frame
    assert len(f) == len(tiny_frame) == 100
    assert panel.segments == ("free", "team")
    assert len(panel.periods) == 8
    assert panel.periods[0] == pd.Timestamp("2025-01-06")
    assert list(f.columns) == [
        "account_id",
        "period",
        "segment",
        "ns",
        "x1",
        "x2",
        "logins",
        "rev",
        "churned",
        "t",
        "tenure",
    ]
    # sorted by account then period; t and tenure agree with a direct computation
    assert f.equals(f.sort_values(["account_id", "period"], ignore_index=True))
    weeks = (f["period"] - pd.Timestamp("2025-01-06")).dt.days // 7
    assert (f["t"] == weeks).all()
    assert (f["tenure"] == f["t"] - f.groupby("account_id")["t"].transform("min")).all()
    assert f["churned"].sum() == tiny_frame["churned"].sum() == 10


def test_no_segment_column_gives_all(tiny_tree, tiny_frame):
    tree = MetricTree.model_validate({**tiny_tree.model_dump(), "segment": None})
    panel = check_frame(tiny_frame.drop(columns="plan"), tree)
    assert panel.segments == (ALL_SEGMENTS,)
    assert (panel.frame["segment"] == ALL_SEGMENTS).all()


def test_integer_account_ids_and_source(tiny_tree, tiny_frame):
    frame = tiny_frame.assign(account_id=tiny_frame["account_id"].str[1:].astype(int))
    panel = check_frame(frame, tiny_tree, source="in memory")
    assert panel.source == "in memory"
    assert panel.frame["account_id"].dtype.kind == "i"
    assert panel.frame["account_id"].is_monotonic_increasing


def test_fingerprint_tracks_content(tiny_tree, tiny_frame):
    a = check_frame(tiny_frame, tiny_tree)
    shuffled = check_frame(tiny_frame.sample(frac=1.0, random_state=1), tiny_tree)
    changed = tiny_frame.copy()
    changed.loc[0, "x1"] += 0.01
    assert a.fingerprint == shuffled.fingerprint
    assert a.fingerprint != check_frame(changed, tiny_tree).fingerprint


def test_monthly_grid(tiny_tree, tiny_frame):
    tree = MetricTree.model_validate({**tiny_tree.model_dump(), "period": "month"})
    weeks = (pd.to_datetime(tiny_frame["period"]) - pd.Timestamp("2025-01-06")).dt.days // 7

    def month_starts(first):
        stamps = weeks.map(lambda k: pd.Timestamp(first) + pd.DateOffset(months=k))
        return pd.to_datetime(stamps).dt.strftime("%Y-%m-%d")

    monthly = tiny_frame.assign(period=month_starts("2024-11-01"))
    panel = check_frame(monthly, tree)
    assert list(panel.periods.month) == [11, 12, 1, 2, 3, 4, 5, 6]
    per = panel.frame["period"].dt
    assert (panel.frame["t"] == (per.year - 2024) * 12 + per.month - 11).all()

    off = monthly.copy()
    off.loc[4, "period"] = "2025-01-02"  # a02's first row, day 2
    with pytest.raises(
        DataError, match=r"date off the period grid in 1 row\(s\).*\(a02, 2025-01-02\)"
    ):
        check_frame(off, tree)
    late = monthly.assign(period=month_starts("2024-11-29"))  # February clamps to the 28th
    with pytest.raises(DataError, match="falls on day 29") as err:
        check_frame(late, tree)
    assert ", 2025-02-28)" in err.value.message  # off the day-29 grid


def test_load_errors(tmp_path, tiny_tree):
    with pytest.raises(DataError, match="file not found"):
        load_panel(tmp_path / "nope.csv", tiny_tree)
    (tmp_path / "panel.xlsx").write_text("x")
    with pytest.raises(DataError, match=r"expected a \.csv or \.parquet file, got '\.xlsx'"):
        load_panel(tmp_path / "panel.xlsx", tiny_tree)
    (tmp_path / "panel.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load_panel(tmp_path / "panel.parquet", tiny_tree)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="not a readable CSV file"):
        load_panel(tmp_path / "empty.csv", tiny_tree)


def test_csv_and_parquet_load_to_the_same_panel(world, panel, world_dir, tmp_path):
    from_csv = load_panel(world_dir / "panel.csv", world.tree)
    write_world(world, tmp_path, fmt="parquet")
    from_parquet = load_panel(tmp_path / "panel.parquet", world.tree)
    assert from_csv.fingerprint == from_parquet.fingerprint == panel.fingerprint
    pd.testing.assert_frame_equal(from_csv.frame, panel.frame)
    assert from_csv.periods.equals(panel.periods)


# --------------------------------------------------------------------------- driver_stats


def _dummies(codes):
    return np.eye(codes.max() + 1)[codes]


def _by_dummy_regression(panel, parent, s):
    """Residualise on account and period dummies with lstsq, and regress y on X + dummies."""
    with threadpool_limits(1):  # small dense LAPACK calls: threads only contend on 2 cores
        return _dummy_regression(panel, parent, s)


def _dummy_regression(panel, parent, s):
    f = panel.frame[panel.frame["segment"] == panel.segments[s]]
    children = list(panel.tree.children[parent])
    y = np.log1p(f[parent].to_numpy())
    X = np.log1p(f[children].to_numpy())
    D = np.hstack([_dummies(pd.factorize(f["account_id"])[0]), _dummies(pd.factorize(f["t"])[0])])

    V = np.column_stack([y, X])
    Z = V - D @ np.linalg.lstsq(D, V, rcond=None)[0]
    slope = np.linalg.lstsq(np.hstack([X, D]), y, rcond=None)[0][: len(children)]
    return Z, slope, np.linalg.matrix_rank(D)


@pytest.mark.parametrize("parent", ["projects_completed", "active_seats"])
def test_within_stats_equal_dummy_regression(small_panel, parent):
    stats = driver_stats(small_panel, parent)
    assert stats.within and stats.children == small_panel.tree.children[parent]
    for s in range(len(stats.segments)):
        Z, slope, rank = _by_dummy_regression(small_panel, parent, s)
        y, X = Z[:, 0], Z[:, 1:]
        assert stats.n[s] == len(Z)
        assert stats.n_absorbed[s] == rank
        np.testing.assert_allclose(stats.sum_y[s], y.sum(), atol=1e-8)
        np.testing.assert_allclose(stats.sum_y2[s], y @ y, rtol=1e-8)
        np.testing.assert_allclose(stats.sum_x[s], X.sum(axis=0), atol=1e-8)
        np.testing.assert_allclose(stats.XtX[s], X.T @ X, rtol=1e-8)
        np.testing.assert_allclose(stats.Xty[s], X.T @ y, rtol=1e-8)
        # Frisch-Waugh-Lovell: the slope from the within stats is the dummy regression's
        np.testing.assert_allclose(np.linalg.solve(stats.XtX[s], stats.Xty[s]), slope, rtol=1e-7)


def test_pooled_stats_are_raw_sums(small_panel):
    stats = driver_stats(small_panel, "projects_completed", within=False)
    f = small_panel.frame
    for s, seg in enumerate(stats.segments):
        rows = f[f["segment"] == seg]
        y = np.log1p(rows["projects_completed"].to_numpy())
        X = np.log1p(rows[list(stats.children)].to_numpy())
        assert stats.n[s] == len(rows) and stats.n_absorbed[s] == 0
        np.testing.assert_allclose(stats.sum_y[s], y.sum())
        np.testing.assert_allclose(stats.sum_y2[s], y @ y)
        np.testing.assert_allclose(stats.sum_x[s], X.sum(axis=0))
        np.testing.assert_allclose(stats.XtX[s], X.T @ X)
        np.testing.assert_allclose(stats.Xty[s], X.T @ y)


def test_driver_stats_rejects_a_leaf(panel):
    with pytest.raises(ValueError, match="not a parent node"):
        driver_stats(panel, "invites_sent")


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_demean_two_way_is_the_dummy_residual(data):
    n_a = data.draw(st.integers(2, 6))
    n_p = data.draw(st.integers(2, 6))
    cells = [(a, p) for a in range(n_a) for p in range(n_p)]
    keep = data.draw(st.lists(st.booleans(), min_size=len(cells), max_size=len(cells)))
    rows = [c for c, k in zip(cells, keep, strict=True) if k] or cells[:1]
    a = pd.factorize(np.array([r[0] for r in rows]))[0]
    p = pd.factorize(np.array([r[1] for r in rows]))[0]
    v = np.random.default_rng(len(rows)).normal(size=len(rows))
    D = np.hstack([_dummies(a), _dummies(p)])
    expected = v - D @ np.linalg.lstsq(D, v, rcond=None)[0]
    np.testing.assert_allclose(demean_two_way(v, a, p), expected, atol=1e-8)


# --------------------------------------------------------------------------- churn cells


def test_churn_cells_totals(panel):
    cells = churn_cells(panel)
    c, f = cells.frame, panel.frame
    assert cells.metric == panel.tree.north_star
    assert cells.segments == panel.segments
    assert c["at_risk"].sum() == len(f)
    assert c["churned"].sum() == f["churned"].sum()
    by_seg = c.groupby("segment")[["at_risk", "churned"]].sum()
    direct = f.groupby("segment").agg(at_risk=("churned", "size"), churned=("churned", "sum"))
    pd.testing.assert_frame_equal(by_seg, direct, check_dtype=False)
    assert (c["segment"] == np.asarray(panel.segments)[c["segment_idx"]]).all()
    # quantile bins: at most `bins` levels per segment x band, means inside their range
    assert c.groupby(["segment_idx", "tenure_band"]).size().max() <= 30
    assert ((c["x"] >= 0) & (c["x"] <= np.log1p(c["level"]) + 1e-12)).all()  # Jensen
    assert len(c) == len(c.drop_duplicates(["segment_idx", "tenure_band", "level"]))


def test_churn_cells_tenure_groups_and_rows(panel):
    f = panel.frame
    early = (f["t"] < 20).to_numpy()
    cells = churn_cells(panel, "logins", rows=early, tenure_step=0.25)
    c = cells.frame
    assert cells.metric == "logins"
    assert c["at_risk"].sum() == early.sum()
    assert c["churned"].sum() == f.loc[early, "churned"].sum()
    tenure = f.loc[early, "tenure"].to_numpy()
    edges = tenure_edges(int(tenure.max()), 0.25)
    group = edges[np.searchsorted(edges, tenure, side="right") - 1]
    by_group = c.groupby("tenure_band")["at_risk"].sum()
    assert by_group.to_dict() == pd.Series(group).value_counts().sort_index().to_dict()
    # each cell stands at its rows' mean log1p(tenure), inside its group's span of 0.25
    rows = pd.DataFrame({"cell": cells.row_cell[early], "lt": np.log1p(tenure)})
    np.testing.assert_allclose(c["log_tenure"], rows.groupby("cell")["lt"].mean(), rtol=1e-12)
    start = np.log1p(c["tenure_band"].to_numpy())
    assert ((c["log_tenure"] >= start - 1e-12) & (c["log_tenure"] <= start + 0.25 + 1e-12)).all()
    # step 0: every tenure in cells of its own
    exact = churn_cells(panel, "logins", rows=early, tenure_step=0).frame
    np.testing.assert_allclose(exact["log_tenure"], np.log1p(exact["tenure_band"]))


def test_churn_cells_exact_levels(tiny_tree):
    panel = load_panel(DATA / "valid.csv", tiny_tree)
    c = churn_cells(panel, "logins", bins=50).frame  # 40 distinct integer values: exact
    np.testing.assert_array_equal(c["level"], np.round(c["level"]))
    np.testing.assert_allclose(c["x"], np.log1p(c["level"]))
    f = panel.frame
    direct = f.groupby(["segment", "logins"]).size()
    assert c.groupby(["segment", "level"])["at_risk"].sum().to_numpy().tolist() == direct.tolist()


def test_churn_cells_bad_arguments(panel):
    with pytest.raises(ValueError, match="step must be at least 0"):
        churn_cells(panel, tenure_step=-0.1)
    with pytest.raises(ValueError, match="boolean mask"):
        churn_cells(panel, rows=np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="not a metric"):
        churn_cells(panel, "projects")


# --------------------------------------------------------------------------- population, describe


def test_starting_population(panel):
    pop = starting_population(panel)
    f = panel.frame
    alive = f[(f["period"] == panel.periods[-1]) & (f["churned"] == 0)]
    p = pop.frame
    assert pop.segments == panel.segments
    assert list(p.columns) == [
        "segment",
        "segment_idx",
        "accounts",
        "north_star",
        "tenure",
        "value",
        "north_star_min",
        "north_star_max",
        *[f"share:{n}" for n in panel.tree.nodes if n != panel.tree.north_star],
    ]
    assert p["accounts"].sum() == len(alive) == alive["account_id"].nunique()
    by_seg = p.groupby("segment")["accounts"].sum()
    assert by_seg.to_dict() == alive.groupby("segment").size().to_dict()
    assert p.groupby("segment").size().max() <= 20
    ns = panel.tree.north_star
    np.testing.assert_allclose((p["accounts"] * p["north_star"]).sum(), alive[ns].sum())
    np.testing.assert_allclose((p["accounts"] * p["tenure"]).sum(), alive["tenure"].sum())
    np.testing.assert_allclose((p["accounts"] * p["value"]).sum(), alive["revenue"].sum())


def test_describe(panel):
    d = describe(panel)
    f = panel.frame
    assert d["accounts"] == f["account_id"].nunique()
    assert d["rows"] == d["churn"]["account_periods"] == len(f)
    assert d["periods"] == {
        "first": "2025-01-06",
        "last": "2025-10-06",
        "count": 40,
        "kind": "week",
    }
    assert sum(d["segments"].values()) == d["accounts"]
    assert d["churn"]["events"] == f["churned"].sum()
    assert d["churn"]["rate_per_period"] == pytest.approx(f["churned"].mean())
    assert d["churn"]["accounts_alive_at_end"] + d["churn"]["events"] == d["accounts"]
    ns = d["metrics"]["projects_completed"]
    assert ns["role"] == "north_star"
    assert ns["median"] == pytest.approx(f["projects_completed"].median())
    assert d["metrics"]["logins"]["role"] == "candidate"
