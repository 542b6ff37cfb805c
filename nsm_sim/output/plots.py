"""Figures: what drives the North Star, what it drives, timing, and the initiatives' effects.

Every function takes tidy pandas frames (or plain arrays) and returns a
:class:`matplotlib.figure.Figure` built without pyplot, so no global figure state is
created or leaked: save it with ``fig.savefig(...)`` (or
:func:`nsm_sim.files.write_files`) and let it go out of scope. Titles and axis labels use
the metric names of the tree.

Each figure copes with the awkward cases a real fit produces: a single segment, one metric,
missing (NaN) interval ends, a threshold that was not estimated, or an empty frame (then the
figure says there is nothing to show instead of raising). Names from a user's files (segments,
initiatives) are drawn as plain text, never as mathtext, and shortened to
:data:`LABEL_LENGTH` characters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

FIGSIZE = (8.0, 4.5)
"""Default figure size in inches: readable on screen, in an e-mail and on paper."""

ELASTICITY_LABEL = "elasticity (% change of parent per 1% change of input)"

_PALETTE = tuple(to_hex(c) for c in colormaps["tab10"].colors)
_SCENARIO_COLOURS = {
    "baseline": "#7f7f7f",
    "no initiative": "#7f7f7f",
    "portfolio": "#1f77b4",
    "every initiative": "#1f77b4",
    "chosen portfolio": "#2ca02c",
}
_POPULATION = "#222222"

#: Longest name drawn in a figure; longer ones are shortened with an ellipsis.
LABEL_LENGTH = 60


def plain(name: object) -> str:
    r"""Return a name as figure text: shortened, and with ``$`` drawn as itself (no mathtext).

    Parameters
    ----------
    name : object
        A name from a user's file.

    Returns
    -------
    str

    Examples
    --------
    >>> print(plain("cost $x^$"))
    cost \$x^\$
    """
    text = str(name)
    if len(text) > LABEL_LENGTH:
        text = text[: LABEL_LENGTH - 1] + "\u2026"
    return text.replace("$", r"\$")


def segment_colours(segments: Sequence[object]) -> dict[str, str]:
    """Assign a stable colour to each segment (sorted by name, so every figure agrees).

    Parameters
    ----------
    segments : sequence
        Segment values; missing values are ignored.

    Returns
    -------
    dict of str to str
        Segment name to hex colour.

    Examples
    --------
    >>> segment_colours(["team", "free"])
    {'free': '#1f77b4', 'team': '#ff7f0e'}
    """
    names = sorted({str(s) for s in segments if not _missing(s)})
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(names)}


def _missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _finite(values: object) -> np.ndarray:
    return np.isfinite(pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float))


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} needs columns {list(columns)}; missing {missing}")


def _new_figure(figsize: tuple[float, float] = FIGSIZE) -> Figure:
    fig = Figure(figsize=figsize, layout="constrained")
    fig.set_facecolor("white")
    return fig


def _nothing_to_show(ax, message: str = "nothing to show") -> None:
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _segments_of(frame: pd.DataFrame) -> pd.Series:
    if "segment" not in frame.columns:
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)
    return frame["segment"].astype(object).where(frame["segment"].notna(), None)


def elasticity_forest(drivers: pd.DataFrame, north_star: str) -> Figure:
    """Forest plot of the elasticities of every parent <- child edge of the metric tree.

    Parameters
    ----------
    drivers : DataFrame
        Columns ``parent``, ``child``, ``segment`` (missing for the population-level
        elasticity), ``mean``, ``low``, ``high`` (90 % interval). One row per edge and segment;
        edges are drawn top to bottom in order of first appearance.
    north_star : str
        Name of the North Star, used in the title.

    Returns
    -------
    Figure
        The population interval of each edge bold, the per-segment intervals as small offset
        points in segment colours, and a vertical line at zero.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"parent": ["nsm"], "child": ["seats"], "segment": [None],
    ...                   "mean": [0.6], "low": [0.5], "high": [0.7]})
    >>> elasticity_forest(d, "nsm").axes[0].get_title()
    'What drives nsm'
    """
    _require(drivers, ["parent", "child", "mean", "low", "high"], "elasticity_forest")
    frame = drivers.reset_index(drop=True)
    segs = _segments_of(frame)
    pairs = zip(frame["parent"].astype(str), frame["child"].astype(str), strict=True)
    edges = list(dict.fromkeys(pairs))
    colours = segment_colours(segs.tolist())
    n_seg = len(colours)

    height = max(FIGSIZE[1], 1.2 + 0.35 * len(edges) * (1 + 0.5 * n_seg))
    fig = _new_figure((FIGSIZE[0], min(height, 14.0)))
    ax = fig.add_subplot()
    ax.set_title(f"What drives {north_star}")
    ax.set_xlabel(ELASTICITY_LABEL)
    if not edges:
        _nothing_to_show(ax)
        return fig

    mean, low, high = _floats(frame, "mean"), _floats(frame, "low"), _floats(frame, "high")
    edge_index = {e: i for i, e in enumerate(edges)}
    step = 0.6 / (n_seg + 1) if n_seg else 0.0
    seg_offset = {name: (j + 1) * step for j, name in enumerate(colours)}
    labelled: set[str] = set()
    for row in range(len(frame)):
        y = float(edge_index[(str(frame.at[row, "parent"]), str(frame.at[row, "child"]))])
        seg = segs.iat[row]
        if seg is None:
            colour, lw, ms, label = _POPULATION, 3.0, 8.0, "population"
        else:
            name = str(seg)
            colour, lw, ms, label = colours[name], 1.2, 4.0, plain(name)
            y += seg_offset[name]
        if np.isfinite(low[row]) and np.isfinite(high[row]):
            ax.hlines(y, low[row], high[row], color=colour, lw=lw)
        elif np.isfinite(low[row]) or np.isfinite(high[row]):
            end = low[row] if np.isfinite(low[row]) else high[row]
            ax.plot([end], [y], marker="|", color=colour, ms=ms + 2)
        if np.isfinite(mean[row]):
            kwargs = {"label": label} if label not in labelled else {}
            labelled.add(label)
            ax.plot([mean[row]], [y], "o", color=colour, ms=ms, zorder=3, **kwargs)

    ax.axvline(0.0, color="0.3", lw=0.8, ls="--")
    ax.set_yticks(np.arange(len(edges)) + n_seg * step / 2, [f"{p} \u2190 {c}" for p, c in edges])
    ax.set_ylim(len(edges) - 0.3, -0.5)
    ax.grid(axis="x", color="0.9")
    if labelled:
        ax.legend(loc="best", fontsize="small", frameon=False)
    return fig


def retention_by_level(
    curve: pd.DataFrame,
    north_star: str,
    horizon: int,
    threshold: Mapping[str, float] | None = None,
) -> Figure:
    """Retention over the horizon as a function of the North Star per account per period.

    Parameters
    ----------
    curve : DataFrame
        Columns ``level`` (North Star per account per period), ``mean``, ``low``, ``high``
        (retention over ``horizon`` periods, between 0 and 1) and optionally ``segment``
        (one curve per segment; missing values mean the population curve).
    north_star : str
        Name of the North Star.
    horizon : int
        Number of periods the retention is measured over.
    threshold : mapping, optional
        The hinge, if one was estimated: ``tau`` and its interval ``low``/``high``, and
        optionally ``retention_above`` and ``retention_below`` (0..1). ``None``, an empty
        mapping or a missing ``tau`` draws no threshold.

    Returns
    -------
    Figure
        Mean curve with its interval shaded, the threshold as a vertical line with its
        interval shaded, and the retention axis in percent.

    Examples
    --------
    >>> import pandas as pd
    >>> c = pd.DataFrame({"level": [0, 5, 10], "mean": [0.7, 0.8, 0.9],
    ...                   "low": [0.6, 0.75, 0.85], "high": [0.8, 0.85, 0.95]})
    >>> retention_by_level(c, "nsm", 4).axes[0].get_title()
    'Retention over 4 periods by nsm'
    """
    _require(curve, ["level", "mean", "low", "high"], "retention_by_level")
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.set_title(f"Retention over {horizon} periods by {north_star}")
    ax.set_xlabel(f"{north_star} per account per period")
    ax.set_ylabel(f"retained after {horizon} periods")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    if curve.empty:
        _nothing_to_show(ax)
        return fig

    frame = curve.reset_index(drop=True)
    segs = _segments_of(frame)
    colours = segment_colours(segs.tolist())
    groups: list[tuple[str | None, np.ndarray]] = []
    if segs.isna().any():
        groups.append((None, segs.isna().to_numpy()))
    for name in colours:
        groups.append((name, (segs.astype(str) == name).to_numpy() & segs.notna().to_numpy()))

    for name, mask in groups:
        part = frame[mask]
        order = np.argsort(_floats(part, "level"), kind="stable")
        x = _floats(part, "level")[order]
        colour = _POPULATION if name is None else colours[name]
        label = "all accounts" if name is None else plain(name)
        lo, hi = _floats(part, "low")[order], _floats(part, "high")[order]
        band = np.isfinite(x) & np.isfinite(lo) & np.isfinite(hi)
        if band.any():
            ax.fill_between(x[band], lo[band], hi[band], color=colour, alpha=0.18, lw=0)
        ax.plot(x, _floats(part, "mean")[order], color=colour, lw=2.0, label=label)

    _draw_threshold(ax, threshold)
    ax.grid(color="0.92")
    if len(groups) > 1 or _has_tau(threshold):
        ax.legend(loc="lower right", fontsize="small", frameon=False)
    return fig


def _has_tau(threshold: Mapping[str, float] | None) -> bool:
    if not threshold:
        return False
    tau = threshold.get("tau")
    return tau is not None and not _missing(tau) and math.isfinite(float(tau))


def _draw_threshold(ax, threshold: Mapping[str, float] | None) -> None:
    if not _has_tau(threshold):
        return
    tau = float(threshold["tau"])
    low, high = threshold.get("low"), threshold.get("high")
    if _finite([low, high]).all():
        ax.axvspan(float(low), float(high), color="#d62728", alpha=0.08, lw=0)
    text = f"threshold \u03c4 = {tau:.3g}"
    above, below = threshold.get("retention_above"), threshold.get("retention_below")
    if _finite([above, below]).all():
        text += f"\n{float(above):.0%} retained at or above, {float(below):.0%} below"
    ax.axvline(tau, color="#d62728", lw=1.4, ls="--", label=text)


def timing(xcorr: pd.DataFrame, north_star: str, convention: str) -> Figure:
    """Cross-correlation of each metric's changes with the North Star's, by lag.

    Parameters
    ----------
    xcorr : DataFrame
        Columns ``metric``, ``lag`` (integer periods), ``corr`` and ``band`` (half-width of
        the band of no correlation at that lag).
    north_star : str
        Name of the North Star.
    convention : str
        The sign convention of the lags, printed under the panels, e.g.
        ``"lag k > 0: metric leads the North Star by k periods"``.

    Returns
    -------
    Figure
        One small panel per metric (in order of first appearance): bars of the correlation,
        coloured where they leave the shaded band.

    Examples
    --------
    >>> import pandas as pd
    >>> x = pd.DataFrame({"metric": ["seats"] * 3, "lag": [-1, 0, 1],
    ...                   "corr": [0.0, 0.3, 0.1], "band": [0.05] * 3})
    >>> timing(x, "nsm", "lag k > 0: metric leads").get_suptitle()
    'Who moves first: cross-correlation of changes with nsm'
    """
    _require(xcorr, ["metric", "lag", "corr", "band"], "timing")
    metrics = list(dict.fromkeys(xcorr["metric"].astype(str)))
    ncols = max(1, min(len(metrics), 3))
    nrows = max(1, math.ceil(len(metrics) / ncols))
    fig = _new_figure((FIGSIZE[0], max(FIGSIZE[1], 0.9 + 2.4 * nrows)))
    fig.suptitle(f"Who moves first: cross-correlation of changes with {north_star}")
    fig.supxlabel(f"lag k (periods)\n{convention}", fontsize="medium")
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    if not metrics:
        _nothing_to_show(axes[0])
        return fig

    names = xcorr["metric"].astype(str).to_numpy()
    for k, (ax, metric) in enumerate(zip(axes, metrics, strict=False)):
        part = xcorr[names == metric]
        lag = _floats(part, "lag")
        order = np.argsort(lag, kind="stable")
        lag, corr, band = lag[order], _floats(part, "corr")[order], _floats(part, "band")[order]
        ok = np.isfinite(lag) & np.isfinite(band)
        if ok.any():
            ax.fill_between(lag[ok], -band[ok], band[ok], color="0.85", lw=0, step="mid")
        outside = np.isfinite(corr) & ~(np.abs(corr) <= np.nan_to_num(band, nan=np.inf))
        shown = np.isfinite(corr) & np.isfinite(lag)
        colours = np.where(outside, "#1f77b4", "#aaaaaa")[shown]
        ax.bar(lag[shown], corr[shown], width=0.6, color=list(colours))
        ax.axhline(0.0, color="0.3", lw=0.6)
        ax.axvline(0.0, color="0.3", lw=0.6, ls=":")
        ax.set_title(metric, fontsize="medium")
        if k % ncols == 0:
            ax.set_ylabel("correlation")
        finite_lags = lag[np.isfinite(lag)]
        if finite_lags.size and finite_lags.size <= 15:
            ax.set_xticks(np.unique(finite_lags))
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    return fig


def north_star_fan(trajectory: pd.DataFrame, north_star: str) -> Figure:
    """Fan chart of the projected North Star total per period, per scenario.

    Parameters
    ----------
    trajectory : DataFrame
        Columns ``period``, ``scenario`` (``"baseline"``, ``"portfolio"``, possibly more),
        ``p5``, ``p25``, ``p50``, ``p75``, ``p95`` of the North Star total per period.
    north_star : str
        Name of the North Star.

    Returns
    -------
    Figure
        Per scenario the median as a line, the 50 % and 90 % intervals shaded.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"period": [1, 2] * 2, "scenario": ["baseline"] * 2 + ["portfolio"] * 2,
    ...                   "p5": [9, 9, 9, 10], "p25": [10, 10, 10, 11], "p50": [11, 11, 11, 12],
    ...                   "p75": [12, 12, 12, 13], "p95": [13, 13, 13, 14]})
    >>> north_star_fan(t, "nsm").axes[0].get_title()
    'Projected nsm: without and with the initiatives'
    """
    _require(trajectory, ["period", "scenario", "p5", "p25", "p50", "p75", "p95"], "north_star_fan")
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.set_title(f"Projected {north_star}: without and with the initiatives")
    ax.set_xlabel("period")
    ax.set_ylabel(f"{north_star} (total per period)")
    if trajectory.empty:
        _nothing_to_show(ax)
        return fig

    scenarios = list(dict.fromkeys(trajectory["scenario"].astype(str)))
    others = iter(c for c in _PALETTE if c not in _SCENARIO_COLOURS.values())
    names = trajectory["scenario"].astype(str).to_numpy()
    for scenario in scenarios:
        colour = _SCENARIO_COLOURS.get(scenario) or next(others, "#000000")
        part = trajectory[names == scenario].sort_values("period", kind="stable")
        x = part["period"].to_numpy()
        q = {c: _floats(part, c) for c in ("p5", "p25", "p50", "p75", "p95")}
        outer = np.isfinite(q["p5"]) & np.isfinite(q["p95"])
        inner = np.isfinite(q["p25"]) & np.isfinite(q["p75"])
        if outer.any():
            ax.fill_between(x[outer], q["p5"][outer], q["p95"][outer], color=colour, alpha=0.12)
        if inner.any():
            ax.fill_between(x[inner], q["p25"][inner], q["p75"][inner], color=colour, alpha=0.25)
        ax.plot(x, q["p50"], color=colour, lw=2.0, label=f"{plain(scenario)} (median, 50% and 90%)")
    ax.grid(color="0.92")
    ax.legend(loc="best", fontsize="small", frameon=False)
    return fig


def value_distribution(draws: Mapping[str, np.ndarray], quantity: str) -> Figure:
    """Distribution over draws of each initiative's change versus the baseline.

    Parameters
    ----------
    draws : mapping of str to ndarray
        Initiative (or portfolio) name to its per-draw change of ``quantity`` versus the
        baseline; arrays are flattened and non-finite values dropped.
    quantity : str
        What the draws measure, e.g. ``"projects_completed at the horizon"`` or ``"value"``.

    Returns
    -------
    Figure
        Horizontal violins sorted by mean (largest on top), the 5-95 % (thin) and 25-75 %
        (thick) quantile bars, the mean as a dot, a line at zero, and the share of draws
        above zero in each label.

    Examples
    --------
    >>> import numpy as np
    >>> fig = value_distribution({"a": np.array([1.0, 2.0, -1.0])}, "value")
    >>> fig.axes[0].get_xlabel()
    'change in value vs baseline'
    """
    fig_height = max(FIGSIZE[1], 1.0 + 0.55 * len(draws))
    fig = _new_figure((FIGSIZE[0], min(fig_height, 14.0)))
    ax = fig.add_subplot()
    ax.set_title(f"{plain(quantity)}: change vs baseline per initiative")
    ax.set_xlabel(f"change in {plain(quantity)} vs baseline")
    values = {}
    for name, arr in draws.items():
        flat = np.asarray(arr, dtype=float).ravel()
        values[str(name)] = flat[np.isfinite(flat)]
    if not values:
        _nothing_to_show(ax)
        return fig

    means = {k: (float(v.mean()) if v.size else -np.inf) for k, v in values.items()}
    order = sorted(values, key=lambda k: means[k], reverse=True)
    lo_all, hi_all = [0.0], [0.0]
    labels = []
    for y, name in enumerate(order):
        v = values[name]
        if v.size == 0:
            labels.append(f"{plain(name)}\nno finite draws")
            continue
        q1, q5, q25, q75, q95, q99 = np.quantile(v, [0.01, 0.05, 0.25, 0.75, 0.95, 0.99])
        lo_all.append(q1)
        hi_all.append(q99)
        if v.size > 1 and np.ptp(v) > 0 and q99 > q1:
            body = np.clip(v, q1, q99)
            parts = ax.violinplot(
                body, positions=[y], orientation="horizontal", widths=0.8, showextrema=False
            )
            for poly in parts["bodies"]:
                poly.set_facecolor("#1f77b4")
                poly.set_edgecolor("none")
                poly.set_alpha(0.25)
        ax.hlines(y, q5, q95, color="#1f77b4", lw=1.2)
        ax.hlines(y, q25, q75, color="#1f77b4", lw=4.0)
        ax.plot([v.mean()], [y], "o", color="white", mec="#1f77b4", ms=6, zorder=3)
        labels.append(f"{plain(name)}\nP(>0) = {np.mean(v > 0):.0%}")
    ax.axvline(0.0, color="0.3", lw=0.8, ls="--")
    ax.set_yticks(np.arange(len(order)), labels, fontsize="small")
    ax.set_ylim(len(order) - 0.5, -0.5)
    span = max(hi_all) - min(lo_all)
    pad = 0.05 * span if span > 0 else 1.0
    ax.set_xlim(min(lo_all) - pad, max(hi_all) + pad)
    ax.grid(axis="x", color="0.92")
    ax.set_axisbelow(True)
    return fig


def evpi_bars(evpi: pd.DataFrame, unit: str) -> Figure:
    """Bar chart of the expected value of perfect information per uncertainty, largest first.

    Parameters
    ----------
    evpi : DataFrame
        Columns ``name`` and ``evpi`` (missing values are drawn as zero and labelled "-").
    unit : str
        Unit of the value, e.g. ``"revenue"`` or ``"projects_completed"``.

    Returns
    -------
    Figure
        Horizontal bars sorted by EVPI, each labelled with its value.

    Examples
    --------
    >>> import pandas as pd
    >>> f = evpi_bars(pd.DataFrame({"name": ["a", "b"], "evpi": [1.0, 3.0]}), "revenue")
    >>> f.axes[0].get_title()
    'Which uncertainty is worth an experiment first'
    """
    _require(evpi, ["name", "evpi"], "evpi_bars")
    fig = _new_figure((FIGSIZE[0], min(max(FIGSIZE[1], 1.0 + 0.4 * len(evpi)), 14.0)))
    ax = fig.add_subplot()
    ax.set_title("Which uncertainty is worth an experiment first")
    ax.set_xlabel(f"expected value of perfect information ({plain(unit)})")
    if evpi.empty:
        _nothing_to_show(ax)
        return fig
    values = _floats(evpi, "evpi")
    names = evpi["name"].astype(str).to_numpy()
    order = np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")
    y = np.arange(len(order))
    shown = np.nan_to_num(values[order], nan=0.0)
    ax.barh(y, shown, color="#1f77b4", height=0.6)
    ax.set_yticks(y, [plain(name) for name in names[order]])
    ax.set_ylim(len(order) - 0.5, -0.5)
    for yi, v in zip(y, values[order], strict=True):
        text = "-" if not np.isfinite(v) else f"{v:,.3g}"
        ax.annotate(
            text,
            (max(float(np.nan_to_num(v)), 0.0), yi),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize="small",
        )
    top = float(np.nanmax(shown)) if shown.size else 0.0
    ax.set_xlim(min(0.0, float(shown.min())), top * 1.15 if top > 0 else 1.0)
    ax.axvline(0.0, color="0.3", lw=0.8)
    ax.grid(axis="x", color="0.92")
    ax.set_axisbelow(True)
    return fig
