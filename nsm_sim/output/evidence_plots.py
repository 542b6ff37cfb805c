"""Figures of the evidence: what drives the North Star, what it drives, and who moves first.

See :mod:`nsm_sim.output.figures` for what every figure shares.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from nsm_sim.output.figures import (
    FIGSIZE,
    POPULATION_COLOUR,
    finite_mask,
    floats,
    is_missing,
    new_figure,
    nothing_to_show,
    plain,
    require_columns,
    segment_colours,
    segments_of,
)

ELASTICITY_LABEL = "elasticity (% change of parent per 1% change of input)"


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
    require_columns(drivers, ["parent", "child", "mean", "low", "high"], "elasticity_forest")
    frame = drivers.reset_index(drop=True)
    segs = segments_of(frame)
    pairs = zip(frame["parent"].astype(str), frame["child"].astype(str), strict=True)
    edges = list(dict.fromkeys(pairs))
    colours = segment_colours(segs.tolist())
    n_seg = len(colours)

    height = max(FIGSIZE[1], 1.2 + 0.35 * len(edges) * (1 + 0.5 * n_seg))
    fig = new_figure((FIGSIZE[0], min(height, 14.0)))
    ax = fig.add_subplot()
    ax.set_title(f"What drives {north_star}")
    ax.set_xlabel(ELASTICITY_LABEL)
    if not edges:
        nothing_to_show(ax)
        return fig

    mean, low, high = floats(frame, "mean"), floats(frame, "low"), floats(frame, "high")
    edge_index = {e: i for i, e in enumerate(edges)}
    step = 0.6 / (n_seg + 1) if n_seg else 0.0
    seg_offset = {name: (j + 1) * step for j, name in enumerate(colours)}
    labelled: set[str] = set()
    for row in range(len(frame)):
        y = float(edge_index[(str(frame.at[row, "parent"]), str(frame.at[row, "child"]))])
        seg = segs.iat[row]
        if seg is None:
            colour, lw, ms, label = POPULATION_COLOUR, 3.0, 8.0, "population"
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
    require_columns(curve, ["level", "mean", "low", "high"], "retention_by_level")
    fig = new_figure()
    ax = fig.add_subplot()
    ax.set_title(f"Retention over {horizon} periods by {north_star}")
    ax.set_xlabel(f"{north_star} per account per period")
    ax.set_ylabel(f"retained after {horizon} periods")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    if curve.empty:
        nothing_to_show(ax)
        return fig

    frame = curve.reset_index(drop=True)
    segs = segments_of(frame)
    colours = segment_colours(segs.tolist())
    groups: list[tuple[str | None, np.ndarray]] = []
    if segs.isna().any():
        groups.append((None, segs.isna().to_numpy()))
    for name in colours:
        groups.append((name, (segs.astype(str) == name).to_numpy() & segs.notna().to_numpy()))

    for name, mask in groups:
        part = frame[mask]
        order = np.argsort(floats(part, "level"), kind="stable")
        x = floats(part, "level")[order]
        colour = POPULATION_COLOUR if name is None else colours[name]
        label = "all accounts" if name is None else plain(name)
        lo, hi = floats(part, "low")[order], floats(part, "high")[order]
        band = np.isfinite(x) & np.isfinite(lo) & np.isfinite(hi)
        if band.any():
            ax.fill_between(x[band], lo[band], hi[band], color=colour, alpha=0.18, lw=0)
        ax.plot(x, floats(part, "mean")[order], color=colour, lw=2.0, label=label)

    _draw_threshold(ax, threshold)
    ax.grid(color="0.92")
    if len(groups) > 1 or _has_tau(threshold):
        ax.legend(loc="lower right", fontsize="small", frameon=False)
    return fig


def _has_tau(threshold: Mapping[str, float] | None) -> bool:
    if not threshold:
        return False
    tau = threshold.get("tau")
    return tau is not None and not is_missing(tau) and math.isfinite(float(tau))


def _draw_threshold(ax, threshold: Mapping[str, float] | None) -> None:
    if not _has_tau(threshold):
        return
    tau = float(threshold["tau"])
    low, high = threshold.get("low"), threshold.get("high")
    if finite_mask([low, high]).all():
        ax.axvspan(float(low), float(high), color="#d62728", alpha=0.08, lw=0)
    text = f"threshold \u03c4 = {tau:.3g}"
    above, below = threshold.get("retention_above"), threshold.get("retention_below")
    if finite_mask([above, below]).all():
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
    require_columns(xcorr, ["metric", "lag", "corr", "band"], "timing")
    metrics = list(dict.fromkeys(xcorr["metric"].astype(str)))
    ncols = max(1, min(len(metrics), 3))
    nrows = max(1, math.ceil(len(metrics) / ncols))
    fig = new_figure((FIGSIZE[0], max(FIGSIZE[1], 0.9 + 2.4 * nrows)))
    fig.suptitle(f"Who moves first: cross-correlation of changes with {north_star}")
    fig.supxlabel(f"lag k (periods)\n{convention}", fontsize="medium")
    axes = fig.subplots(nrows, ncols, sharey=True, squeeze=False).ravel()
    if not metrics:
        nothing_to_show(axes[0])
        return fig

    names = xcorr["metric"].astype(str).to_numpy()
    for k, (ax, metric) in enumerate(zip(axes, metrics, strict=False)):
        part = xcorr[names == metric]
        lag = floats(part, "lag")
        order = np.argsort(lag, kind="stable")
        lag, corr, band = lag[order], floats(part, "corr")[order], floats(part, "band")[order]
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
