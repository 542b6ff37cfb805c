"""Figures of the decisions: the projected North Star, each initiative's effect, and EVPI.

See :mod:`nsm_sim.output.figures` for what every figure shares.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from nsm_sim.output.figures import (
    FIGSIZE,
    PALETTE,
    SCENARIO_COLOURS,
    floats,
    new_figure,
    nothing_to_show,
    plain,
    require_columns,
)


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
    require_columns(
        trajectory, ["period", "scenario", "p5", "p25", "p50", "p75", "p95"], "north_star_fan"
    )
    fig = new_figure()
    ax = fig.add_subplot()
    ax.set_title(f"Projected {north_star}: without and with the initiatives")
    ax.set_ylabel(f"{north_star} (total per period)")
    if trajectory.empty:
        ax.set_xlabel("period")
        nothing_to_show(ax)
        return fig
    dated = pd.api.types.is_datetime64_any_dtype(trajectory["period"])
    ax.set_xlabel("period start" if dated else "period of the horizon (0 = the first)")

    scenarios = list(dict.fromkeys(trajectory["scenario"].astype(str)))
    others = iter(c for c in PALETTE if c not in SCENARIO_COLOURS.values())
    names = trajectory["scenario"].astype(str).to_numpy()
    for scenario in scenarios:
        colour = SCENARIO_COLOURS.get(scenario) or next(others, "#000000")
        part = trajectory[names == scenario].sort_values("period", kind="stable")
        x = part["period"].to_numpy()
        q = {c: floats(part, c) for c in ("p5", "p25", "p50", "p75", "p95")}
        outer = np.isfinite(q["p5"]) & np.isfinite(q["p95"])
        inner = np.isfinite(q["p25"]) & np.isfinite(q["p75"])
        if outer.any():
            ax.fill_between(x[outer], q["p5"][outer], q["p95"][outer], color=colour, alpha=0.12)
        if inner.any():
            ax.fill_between(x[inner], q["p25"][inner], q["p75"][inner], color=colour, alpha=0.25)
        ax.plot(x, q["p50"], color=colour, lw=2.0, label=f"{plain(scenario)} (median, 50% and 90%)")
    ax.grid(color="0.92")
    ax.legend(loc="best", fontsize="small", frameon=False)
    if dated:
        fig.autofmt_xdate()
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
    fig = new_figure((FIGSIZE[0], min(fig_height, 14.0)))
    ax = fig.add_subplot()
    ax.set_title(f"{plain(quantity)}: change vs baseline per initiative")
    ax.set_xlabel(f"change in {plain(quantity)} vs baseline")
    values = {}
    for name, arr in draws.items():
        flat = np.asarray(arr, dtype=float).ravel()
        values[str(name)] = flat[np.isfinite(flat)]
    if not values:
        nothing_to_show(ax)
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
    require_columns(evpi, ["name", "evpi"], "evpi_bars")
    fig = new_figure((FIGSIZE[0], min(max(FIGSIZE[1], 1.0 + 0.4 * len(evpi)), 14.0)))
    ax = fig.add_subplot()
    ax.set_title("Which uncertainty is worth an experiment first")
    ax.set_xlabel(f"expected value of perfect information ({plain(unit)})")
    if evpi.empty:
        nothing_to_show(ax)
        return fig
    values = floats(evpi, "evpi")
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
