"""The reduction in the query engine against the reduction in memory (nsm_sim.data.reduce_panel).

Counts, levels, quantiles and the summary are equal exactly; sums of floating-point values
to rtol 1e-9: both sides add the same numbers in another order (the engine in parallel) and
the engine removes the period effects in closed form where memory iterates to 1e-10, so the
last digits differ (observed: about 1e-12 relative). The residual sums ``sum_y`` and
``sum_x`` are 0 in the engine and 0 to rounding in memory (atol).
"""

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nsm_sim.data import check_frame, reduce_panel
from nsm_sim.errors import DataError
from nsm_sim.events.engine import Session
from nsm_sim.events.quantiles import median_from, middle, positions, quantiles_from
from nsm_sim.events.reduction import reduce_events, reduce_panel_file, reduce_table
from nsm_sim.synth import generate_world

RTOL = 1e-9


def assert_same_reduction(memory, engine, *, same_source=True):
    assert engine.segments == memory.segments
    assert engine.tree == memory.tree
    for parent, want in memory.driver_stats.items():
        got = engine.driver_stats[parent]
        assert (got.parent, got.children, got.segments, got.within) == (
            want.parent,
            want.children,
            want.segments,
            want.within,
        )
        np.testing.assert_array_equal(got.n, want.n)
        np.testing.assert_array_equal(got.n_absorbed, want.n_absorbed)
        np.testing.assert_array_equal(got.clusters, want.clusters)
        # the by-account score products sit at the estimate: a second pass, less exact
        meat_scale = np.abs(want.meat).max()
        np.testing.assert_allclose(got.meat, want.meat, rtol=1e-7, atol=1e-12 * meat_scale)
        for name in ("sum_y2", "XtX", "Xty"):
            np.testing.assert_allclose(
                getattr(got, name), getattr(want, name), rtol=RTOL, err_msg=name
            )
        scale = np.sqrt(want.n * want.sum_y2).max()
        for name in ("sum_y", "sum_x"):
            np.testing.assert_allclose(
                getattr(got, name), getattr(want, name), rtol=RTOL, atol=1e-9 * scale
            )
    for name in ("churn_cells", "period_cells"):
        got, want = getattr(engine, name), getattr(memory, name)
        assert got.metric == want.metric and got.segments == want.segments
        pd.testing.assert_frame_equal(got.frame, want.frame, check_exact=False, rtol=RTOL)
        integers = [c for c in want.frame.columns if want.frame[c].dtype.kind == "i"]
        pd.testing.assert_frame_equal(got.frame[integers], want.frame[integers])
    pd.testing.assert_frame_equal(
        engine.population.frame, memory.population.frame, check_exact=False, rtol=RTOL
    )
    assert engine.north_star_quantiles == memory.north_star_quantiles
    skip = ("fingerprint",) if same_source else ("fingerprint", "source")
    for key, value in memory.summary.items():
        if key not in skip:
            assert engine.summary[key] == value, key
    assert engine.summary["fingerprint"] == engine.fingerprint
    assert len(engine.fingerprint) == 16


# --------------------------------------------------------------------------- quantiles


def test_quantiles_and_medians_from_order_statistics_equal_numpys_bit_for_bit():
    rng = np.random.default_rng(1)
    for trial in range(400):
        n = int(rng.integers(1, 300))
        if trial % 2:
            values = rng.choice(rng.gamma(1.0, 3.0, 12).round(2), n)  # many ties
        else:
            values = rng.lognormal(0.0, 2.0, n)
        q = np.r_[np.linspace(0.0, 1.0, 31)[1:-1], 0.1, 0.5, 0.9, 0.0, 1.0]
        ordered = np.sort(values)
        below, above, _ = positions(n, q)
        at = {int(i): ordered[i] for i in (*below, *above)}
        assert (quantiles_from(n, q, at) == np.quantile(values, q)).all()
        assert median_from(n, {i: ordered[i] for i in middle(n)}) == np.median(values)


# --------------------------------------------------------------------------- from events


@pytest.fixture(scope="module")
def synthetic(synthetic_events):
    """The synthetic world's events, tree file and panel (paths)."""
    return synthetic_events


@pytest.fixture(scope="module")
def built(synthetic_build):
    """The panel built from the synthetic events (in memory)."""
    return synthetic_build


@pytest.fixture(scope="module")
def engine_reduction(synthetic):
    """The within reduction of the synthetic events in the engine."""
    return reduce_events(synthetic["tree"])


@pytest.fixture(scope="module")
def memory_reduction(built):
    """The within reduction of the built panel in memory (read only)."""
    return reduce_panel(built.panel)


def test_the_reduction_of_events_in_duckdb_equals_the_reduction_in_memory(
    synthetic, built, engine_reduction, memory_reduction
):
    memory = memory_reduction
    engine = engine_reduction
    assert_same_reduction(memory, engine)
    pooled = reduce_events(synthetic["tree"], within=False)
    assert_same_reduction(reduce_panel(built.panel, within=False), pooled)
    assert pooled.fingerprint != engine.fingerprint


def test_a_panel_file_reduces_in_duckdb_as_in_memory(
    built, engine_reduction, memory_reduction, tmp_path
):
    path = tmp_path / "panel.parquet"
    built.frame.to_parquet(path, index=False)
    engine = reduce_panel_file(path, built.panel.tree)
    assert_same_reduction(memory_reduction, engine, same_source=False)
    assert engine.fingerprint == engine_reduction.fingerprint


# --------------------------------------------------------------------------- hard panels


def hard_panel(seed: int, levels: int | None = None) -> tuple[pd.DataFrame, object]:
    """A panel with what the closed form must get right (a new frame on every call).

    The same as :func:`_hard_panel`'s, made once per seed and level count.
    """
    frame, tree = _hard_panel(seed, levels)
    return frame.copy(), tree


@functools.cache
def _hard_panel(seed: int, levels: int | None = None) -> tuple[pd.DataFrame, object]:
    """A panel with what the closed form must get right.

    Accounts of all lifetimes; in segment ``split`` two groups of accounts that never share
    a period (two components, so one more effect absorbed); accounts switching between
    ``free`` and ``team`` every period (rows of a segment with gaps); accounts that stop
    early without churning (a warning); a North Star with ``levels`` distinct values (exact
    level bins) or continuous (quantile bins).
    """
    world = generate_world(accounts=50, periods=12, seed=seed)
    tree = world.tree
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(120):
        if a < 10:
            first, last = 0, 3
        elif a < 20:
            first, last = 6, 11
        else:
            first = int(rng.integers(0, 6))
            last = int(rng.integers(first + 1, 12))
        churned = last < 11 and (a < 10 or rng.random() < 0.7)
        size = rng.lognormal(1.0, 0.5)
        for t in range(first, last + 1):
            if a < 20:
                segment = "split"
            elif a < 30:
                segment = ("free", "team")[t % 2]
            else:
                segment = ("free", "team", "enterprise")[a % 3]
            rows.append((f"acct_{a:03d}", t, segment, size, int(churned and t == last)))
    frame = pd.DataFrame(rows, columns=["account_id", "t", "plan", "size", "churned"])
    start = pd.Timestamp("2025-01-06")
    frame.insert(1, "period", start + pd.to_timedelta(7 * frame.pop("t"), "D"))
    n = len(frame)
    for metric in tree.metrics:
        frame[metric] = np.round(frame["size"] * rng.lognormal(0.0, 0.4, n) * 3, 3)
    children = tree.children[tree.north_star]
    ns = np.exp(0.4 * np.log1p(frame[list(children)]).sum(axis=1) + rng.normal(0, 0.2, n))
    frame[tree.north_star] = np.round(ns, 3) if levels is None else np.minimum(ns, levels - 1)
    if levels is not None:
        frame[tree.north_star] = np.floor(frame[tree.north_star])
    frame = frame.drop(columns="size")
    return frame[["account_id", "period", "plan", *tree.metrics, "churned"]], tree


@functools.cache
def checked_hard_panel(levels: int | None) -> tuple[pd.DataFrame, object, object]:
    """The hard panel of seed 4, its tree and the panel checked (shared: read only)."""
    frame, tree = hard_panel(seed=4, levels=levels)
    return frame, tree, check_frame(frame, tree, source="hard")


@pytest.mark.parametrize("levels", [None, 12])
@pytest.mark.parametrize("within", [True, False])
def test_hard_panels_reduce_in_duckdb_as_in_memory(levels, within):
    frame, tree, panel = checked_hard_panel(levels)
    assert panel.warnings  # accounts that stop early without churning
    memory = reduce_panel(panel, within=within)
    with Session("hard") as session:
        session.con.register("hard", frame)
        engine = reduce_table(session, tree, "hard", source="hard", within=within)
    assert_same_reduction(memory, engine)
    if within:
        split = panel.segments.index("split")
        stats = engine.driver_stats[tree.north_star]
        # 20 accounts, 10 periods with rows, two components
        assert stats.n_absorbed[split] == 20 + 10 - 2
    exact = memory.churn_cells.frame["level"].nunique() <= 12 * 3
    assert exact == (levels is not None)


def test_a_monthly_panel_reduces_in_duckdb_as_in_memory():
    frame, tree = hard_panel(seed=6)
    tree = tree.model_copy(update={"period": "month"})
    start = pd.Timestamp("2025-01-01")
    weeks = ((frame["period"] - frame["period"].min()).dt.days // 7).to_numpy()
    frame["period"] = [start + pd.DateOffset(months=int(k)) for k in weeks]
    panel = check_frame(frame, tree)
    with Session("monthly") as session:
        session.con.register("monthly", frame)
        engine = reduce_table(session, tree, "monthly", source="<frame>")
    assert_same_reduction(reduce_panel(panel), engine)
    assert engine.summary["periods"]["kind"] == "month"


def _refused(frame, tree, tmp_path: Path) -> str:
    path = tmp_path / "bad.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(DataError) as err:
        reduce_panel_file(path, tree)
    return str(err.value)


def test_a_panel_table_that_breaks_the_contract_is_refused_with_every_problem(tmp_path):
    frame, tree = hard_panel(seed=4)
    bad = pd.concat([frame, frame.iloc[[5]]], ignore_index=True)  # a duplicate row
    bad.loc[0, "logins"] = -1.0
    bad.loc[1, "period"] += pd.Timedelta(days=2)  # off the weekly grid
    text = _refused(bad, tree, tmp_path)
    assert "duplicate rows" in text
    assert "logins: 1 row(s) with a negative value" in text
    assert "off the weekly grid" in text
    gap = frame.drop(index=frame.index[(frame["account_id"] == "acct_025")][1])
    assert "gap inside their rows" in _refused(gap, tree, tmp_path)
    assert "missing column" in _refused(frame.drop(columns="logins"), tree, tmp_path)


def test_the_fit_reads_the_reduction_in_memory_by_default_and_in_the_engine_when_named(
    synthetic, built
):
    from nsm_sim.errors import InputError
    from nsm_sim.events import command

    memory = command.reduction_for(synthetic["tree"], None)
    engine = command.reduction_for(synthetic["tree"], None, engine="duckdb")
    assert memory.fingerprint == built.panel.fingerprint
    assert_same_reduction(memory, engine)
    from_file = command.reduction_for(synthetic["tree"], synthetic["panel"], engine="duckdb")
    assert from_file.summary["rows"] == memory.summary["rows"]
    with pytest.raises(InputError, match="unknown engine 'duck'"):
        command.reduction_for(synthetic["tree"], None, engine="duck")


def test_a_world_split_into_many_more_events_reduces_to_the_worlds_reduction(tmp_path):
    from nsm_sim.events.synthetic import write_scaled_events

    # about 17 events per value of the panel (892 account-weeks x 8 metrics), in 4 files
    paths = write_scaled_events(
        tmp_path / "scaled", events=120_000, accounts=120, periods=10, seed=2, chunk_events=45_000
    )
    assert 114_000 < paths["written"] < 126_000
    assert len(list(paths["events"].glob("part-*.parquet"))) >= 3
    world = generate_world(accounts=120, periods=10, seed=2)
    memory = reduce_panel(check_frame(world.panel, world.tree))
    engine = reduce_events(paths["tree"])
    assert_same_reduction(memory, engine, same_source=False)
