import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from nsm_sim.output import decision_plots, evidence_plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NS = "projects_completed"
CONVENTION = "lag k > 0: metric leads the North Star by k periods"


def saved_png(fig, tmp_path, name="fig.png"):
    path = tmp_path / name
    fig.savefig(path, dpi=40)
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 1000
    return data


def yticklabels(ax):
    return [t.get_text() for t in ax.get_yticklabels()]


def vertical_lines_at(ax):
    xs = []
    for line in ax.get_lines():
        x = np.asarray(line.get_xdata(), dtype=float)
        if x.size == 2 and x[0] == x[1]:
            xs.append(float(x[0]))
    return xs


# --- elasticity forest -------------------------------------------------------------------


@pytest.fixture
def drivers():
    rows = []
    edges = [(NS, "active_seats"), (NS, "boards_shared"), ("active_seats", "invites_sent")]
    for k, (parent, child) in enumerate(edges):
        rows.append(
            dict(parent=parent, child=child, segment=None, mean=0.3 + k / 10, low=0.2, high=0.6)
        )
        for j, seg in enumerate(["free", "team"]):
            rows.append(
                dict(parent=parent, child=child, segment=seg, mean=0.4, low=0.1 + j / 10, high=0.8)
            )
    return pd.DataFrame(rows)


def test_elasticity_forest_labels_and_points(drivers, tmp_path):
    fig = evidence_plots.elasticity_forest(drivers, NS)
    assert isinstance(fig, Figure)
    assert fig.canvas.manager is None  # not registered with pyplot
    ax = fig.axes[0]
    assert ax.get_title() == f"What drives {NS}"
    assert ax.get_xlabel() == "elasticity (% change of parent per 1% change of input)"
    assert yticklabels(ax) == [
        f"{NS} \u2190 active_seats",
        f"{NS} \u2190 boards_shared",
        "active_seats \u2190 invites_sent",
    ]
    assert 0.0 in vertical_lines_at(ax)
    # one marker per row with a finite mean, population markers larger than segment ones
    markers = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
    assert len(markers) == len(drivers)
    pop_x = sorted(float(ln.get_xdata()[0]) for ln in markers if ln.get_markersize() == 8.0)
    assert pop_x == pytest.approx([0.3, 0.4, 0.5])
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    assert legend == {"population", "free", "team"}
    saved_png(fig, tmp_path)


def test_elasticity_forest_robust(tmp_path):
    # one segment only, NaN interval ends, NaN mean, segment given as NaN for population
    frame = pd.DataFrame(
        {
            "parent": [NS, NS, NS],
            "child": ["a", "a", "b"],
            "segment": [np.nan, "only", "only"],
            "mean": [0.5, np.nan, 0.2],
            "low": [np.nan, 0.1, 0.1],
            "high": [0.7, np.nan, 0.3],
        }
    )
    fig = evidence_plots.elasticity_forest(frame, NS)
    assert len(yticklabels(fig.axes[0])) == 2
    saved_png(fig, tmp_path)
    empty = evidence_plots.elasticity_forest(frame.iloc[:0], NS)
    assert empty.axes[0].get_title() == f"What drives {NS}"
    saved_png(empty, tmp_path, "empty.png")


def test_missing_column_is_an_error(drivers):
    with pytest.raises(ValueError, match="high"):
        evidence_plots.elasticity_forest(drivers.drop(columns="high"), NS)


# --- retention by level -----------------------------------------------------------------


@pytest.fixture
def curve():
    level = np.linspace(0.0, 20.0, 11)
    frames = []
    for seg, b in [("free", -1.0), ("team", 0.0)]:
        mean = 1 / (1 + np.exp(-(b + 0.2 * level)))
        frames.append(
            pd.DataFrame(
                {
                    "level": level[::-1],
                    "mean": mean[::-1],
                    "low": mean[::-1] - 0.05,
                    "high": mean[::-1] + 0.02,
                    "segment": seg,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_retention_by_level_with_threshold(curve, tmp_path):
    threshold = {
        "tau": 6.0,
        "low": 5.0,
        "high": 7.5,
        "retention_above": 0.9,
        "retention_below": 0.7,
    }
    fig = evidence_plots.retention_by_level(curve, NS, 4, threshold)
    ax = fig.axes[0]
    assert ax.get_title() == f"Retention over 4 periods by {NS}"
    assert NS in ax.get_xlabel()
    assert isinstance(ax.yaxis.get_major_formatter(), PercentFormatter)
    assert 6.0 in vertical_lines_at(ax)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "free" in legend and "team" in legend
    assert any("90% retained" in t and "70% below" in t for t in legend)
    # the curve is drawn in increasing level order with the given means
    free = next(ln for ln in ax.get_lines() if ln.get_label() == "free")
    x, y = np.asarray(free.get_xdata()), np.asarray(free.get_ydata())
    assert np.all(np.diff(x) > 0)
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-(-1.0 + 0.2 * x))))
    saved_png(fig, tmp_path)


def test_a_segment_looks_the_same_in_every_figure(drivers, curve):
    forest = evidence_plots.elasticity_forest(drivers, NS).axes[0]
    retention = evidence_plots.retention_by_level(curve, NS, 4).axes[0]
    in_forest = {h.get_label(): to_rgba(h.get_color()) for h in forest.get_legend().legend_handles}
    in_retention = {ln.get_label(): to_rgba(ln.get_color()) for ln in retention.get_lines()}
    for segment in ("free", "team"):
        assert in_forest[segment] == in_retention[segment]
    assert in_forest["free"] != in_forest["team"] != in_forest["population"]


@pytest.mark.parametrize("threshold", [None, {}, {"tau": float("nan")}, {"tau": 3.0}])
def test_retention_by_level_without_usable_threshold_parts(curve, threshold, tmp_path):
    population = curve[curve["segment"] == "free"].drop(columns="segment")
    population.loc[population.index[0], "low"] = np.nan
    fig = evidence_plots.retention_by_level(population, NS, 13, threshold)
    ax = fig.axes[0]
    assert ax.get_title() == f"Retention over 13 periods by {NS}"
    has_tau = threshold is not None and threshold.get("tau") == 3.0
    assert (3.0 in vertical_lines_at(ax)) == has_tau
    saved_png(fig, tmp_path)


# --- timing -----------------------------------------------------------------------------


def xcorr_frame(metrics):
    rows = []
    for m in metrics:
        for k in range(-3, 4):
            rows.append({"metric": m, "lag": k, "corr": 0.5 if k == 1 else 0.01, "band": 0.1})
    return pd.DataFrame(rows)


def test_timing_panels_and_convention(tmp_path):
    metrics = ["active_seats", "logins", "revenue", "boards_shared"]
    fig = evidence_plots.timing(xcorr_frame(metrics), NS, CONVENTION)
    assert NS in fig.get_suptitle()
    assert CONVENTION in fig.get_supxlabel()
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == metrics
    # bars outside the band are highlighted, those inside are grey
    bars = visible[0].patches
    heights = [b.get_height() for b in bars if b.get_height() != 0]
    assert len(heights) == 7
    colours = {round(b.get_height(), 2): b.get_facecolor() for b in bars}
    assert colours[0.5] != colours[0.01]
    saved_png(fig, tmp_path)


def test_timing_single_metric_and_nan(tmp_path):
    frame = xcorr_frame(["logins"])
    frame.loc[2, "corr"] = np.nan
    frame.loc[3, "band"] = np.nan
    fig = evidence_plots.timing(frame, NS, CONVENTION)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 1 and visible[0].get_title() == "logins"
    saved_png(fig, tmp_path)
    empty = evidence_plots.timing(frame.iloc[:0], NS, CONVENTION)
    saved_png(empty, tmp_path, "empty.png")


# --- north star fan ---------------------------------------------------------------------


def test_north_star_fan(tmp_path):
    rows = []
    for scenario, shift in [("baseline", 0.0), ("portfolio", 30.0), ("alt", 10.0)]:
        for p in range(6):
            mid = 1000 + shift * p
            rows.append(
                {
                    "period": p,
                    "scenario": scenario,
                    "p5": mid - 50,
                    "p25": mid - 20,
                    "p50": mid,
                    "p75": mid + 20,
                    "p95": mid + 50,
                }
            )
    fig = decision_plots.north_star_fan(pd.DataFrame(rows), NS)
    ax = fig.axes[0]
    assert NS in ax.get_title() and NS in ax.get_ylabel()
    medians = {ln.get_label().split(" ")[0]: np.asarray(ln.get_ydata()) for ln in ax.get_lines()}
    assert set(medians) == {"baseline", "portfolio", "alt"}
    np.testing.assert_allclose(medians["portfolio"], 1000 + 30.0 * np.arange(6))
    saved_png(fig, tmp_path)


def test_north_star_fan_nan_quantiles(tmp_path):
    frame = pd.DataFrame(
        {
            "period": [0, 1],
            "scenario": ["baseline"] * 2,
            "p5": [np.nan] * 2,
            "p25": [1.0, 2.0],
            "p50": [2.0, 3.0],
            "p75": [3.0, 4.0],
            "p95": [np.nan, 5.0],
        }
    )
    saved_png(decision_plots.north_star_fan(frame, NS), tmp_path)


# --- value distribution -----------------------------------------------------------------


def test_value_distribution_sorted_with_share_positive(tmp_path):
    rng = np.random.default_rng(0)
    draws = {
        "small": rng.normal(0.1, 1.0, 400),
        "big <b>": rng.normal(5.0, 1.0, 400),
        "fixed": np.zeros(50),  # constant: no density, still drawn
        "broken": np.array([np.nan, np.inf]),
        "matrix": rng.normal(1.0, 0.5, (20, 10)),
    }
    fig = decision_plots.value_distribution(draws, "revenue")
    ax = fig.axes[0]
    assert ax.get_title() == "revenue: change vs baseline per initiative"
    assert ax.get_xlabel() == "change in revenue vs baseline"
    labels = yticklabels(ax)
    assert [lab.split("\n")[0] for lab in labels] == [
        "big <b>",
        "matrix",
        "small",
        "fixed",
        "broken",
    ]
    share_small = np.mean(draws["small"] > 0)
    assert labels[2] == f"small\nP(>0) = {share_small:.0%}"
    assert labels[3] == "fixed\nP(>0) = 0%"
    assert 0.0 in vertical_lines_at(ax)
    lo, hi = ax.get_xlim()
    assert lo < 0 < hi
    saved_png(fig, tmp_path)


def test_value_distribution_empty(tmp_path):
    saved_png(decision_plots.value_distribution({}, "value"), tmp_path)


# --- EVPI -------------------------------------------------------------------------------


def test_evpi_bars_sorted(tmp_path):
    frame = pd.DataFrame({"name": ["a", "b", "c", "d"], "evpi": [1.0, np.nan, 3.0, 0.5]})
    fig = decision_plots.evpi_bars(frame, "revenue")
    ax = fig.axes[0]
    assert ax.get_title() == "Which uncertainty is worth an experiment first"
    assert "revenue" in ax.get_xlabel()
    assert yticklabels(ax) == ["c", "a", "d", "b"]
    assert [p.get_width() for p in ax.patches] == [3.0, 1.0, 0.5, 0.0]
    assert [t.get_text() for t in ax.texts] == ["3", "1", "0.5", "-"]
    saved_png(fig, tmp_path)
    saved_png(decision_plots.evpi_bars(frame.iloc[:0], "revenue"), tmp_path, "empty.png")


def test_the_fan_chart_is_on_calendar_dates_when_the_origin_is_known():
    from nsm_sim.output import tables
    from nsm_sim.simulate import simulate
    from nsm_sim.testing import initiative, random_posterior, scenario, small_population

    spec = scenario([initiative("x", target="a", lift=0.05)], horizon=6)
    result = simulate(spec, random_posterior(), small_population(), simulations=100, seed=1)
    plain = tables.fan_frame(result)
    dated = tables.fan_frame(result, origin="2025-12-29")
    assert sorted(plain["period"].unique()) == list(range(6))
    weeks = pd.date_range("2026-01-05", periods=6, freq="7D")
    assert sorted(dated["period"].unique()) == list(weeks)  # the week after the data, on
    assert (dated.drop(columns="period") == plain.drop(columns="period")).all().all()
    ax = decision_plots.north_star_fan(dated, "nsm").axes[0]
    assert ax.get_xlabel() == "period start"
    assert decision_plots.north_star_fan(plain, "nsm").axes[0].get_xlabel().startswith("period of")
