"""The page's charts as Bokeh documents: built once here, their data refreshed on each edit.

Building a Bokeh figure in Python takes tenths of a second, more than an edit may, so each
chart is built once (:func:`chart_items`, handed to ``Bokeh.embed.embed_item``) with named,
empty data sources; each edit then sends only the columns (:func:`chart_data`), which the
page puts into the sources by name. The data are what the pipeline computed (the fan
chart's frame of :func:`nsm_sim.output.tables.fan_frame`, the value of information, the
forecast); the page computes nothing. BokehJS is served from the installed ``bokeh``
package (:func:`bokehjs_files`), so the page needs no internet.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

#: Colours of the fan chart's series, in the order of :func:`fan_series`.
FAN_COLOURS = ("#7f7f7f", "#1f77b4", "#2ca02c")

#: The forecast's series and their colours.
FORECAST_COLOURS = {"baseline": "#7f7f7f", "portfolio": "#2ca02c"}

#: BokehJS files the page loads, in order.
BOKEHJS = ("bokeh.min.js",)

_BANDS = ("p5", "p25", "p50", "p75", "p95")


def fan_series() -> tuple[str, ...]:
    """Return the fan chart's series, as :func:`nsm_sim.output.tables.fan_frame` names them."""
    from nsm_sim.output.tables import FAN_SERIES

    return (*FAN_SERIES.values(), "chosen portfolio")


def bokehjs_files() -> dict[str, Path]:
    """Return the BokehJS files of the installed ``bokeh`` package, by name.

    Returns
    -------
    dict of str to Path
    """
    import bokeh

    folder = Path(bokeh.__file__).parent / "server" / "static" / "js"
    return {name: folder / name for name in BOKEHJS}


def bokeh_version() -> str:
    """Return the installed Bokeh's version (BokehJS must match the documents it draws)."""
    import bokeh

    return bokeh.__version__


def _fan_item(north_star: str, dated: bool) -> dict[str, Any]:
    from bokeh.embed import json_item
    from bokeh.models import ColumnDataSource
    from bokeh.plotting import figure

    plot = figure(
        height=300,
        sizing_mode="stretch_width",
        title=f"{north_star}, total over accounts: median, 50% and 90% bands",
        x_axis_label="start of the period" if dated else "period of the horizon",
        x_axis_type="datetime" if dated else "linear",
        y_axis_label=north_star,
        toolbar_location=None,
    )
    for series, colour in zip(fan_series(), FAN_COLOURS, strict=True):
        source = ColumnDataSource({c: [] for c in ("period", *_BANDS)}, name=f"fan:{series}")
        plot.varea("period", "p5", "p95", source=source, fill_color=colour, fill_alpha=0.12)
        plot.varea("period", "p25", "p75", source=source, fill_color=colour, fill_alpha=0.22)
        plot.line(
            "period", "p50", source=source, line_color=colour, line_width=2, legend_label=series
        )
    plot.legend.location = "top_left"
    return json_item(plot)


def _evpi_item(unit: str) -> dict[str, Any]:
    from bokeh.embed import json_item
    from bokeh.models import ColumnDataSource, FactorRange
    from bokeh.plotting import figure

    source = ColumnDataSource({"name": [], "evpi": []}, name="evpi")
    plot = figure(
        y_range=FactorRange(name="evpi:names"),
        height=260,
        sizing_mode="stretch_width",
        title=f"Expected value of perfect information ({unit}): the initiative to test first",
        toolbar_location=None,
    )
    plot.hbar(y="name", right="evpi", height=0.7, source=source, color="#1f5f99")
    plot.x_range.start = 0
    return json_item(plot)


def _forecast_item(north_star: str) -> dict[str, Any]:
    from bokeh.embed import json_item
    from bokeh.models import ColumnDataSource, Span
    from bokeh.plotting import figure

    plot = figure(
        height=280,
        sizing_mode="stretch_width",
        x_axis_type="datetime",
        title=f"{north_star} forecast: mean and 90% band, against the target",
        toolbar_location=None,
    )
    for series, colour in FORECAST_COLOURS.items():
        source = ColumnDataSource(
            {"date": [], "mean": [], "p5": [], "p95": []}, name=f"forecast:{series}"
        )
        plot.varea("date", "p5", "p95", source=source, fill_color=colour, fill_alpha=0.18)
        plot.line(
            "date",
            "mean",
            source=source,
            line_color=colour,
            line_width=2,
            legend_label=f"with the {series}" if series == "portfolio" else "no initiative",
        )
    target = Span(
        dimension="width",
        location=0,
        line_color="#b3261e",
        line_dash="dashed",
        line_width=2,
        visible=False,
        name="forecast:target",
    )
    plot.add_layout(target)
    plot.legend.location = "top_left"
    return json_item(plot)


def chart_items(north_star: str, unit: str, *, dated: bool = False) -> dict[str, dict[str, Any]]:
    """Build the page's charts once, with empty named data sources.

    Parameters
    ----------
    north_star : str
        The North Star's name (titles and axes).
    unit : str
        The quantity the value of information is counted in.
    dated : bool, default False
        The fan chart's periods are dates (a fit that knows its last period).

    Returns
    -------
    dict
        Bokeh JSON items: ``fan``, ``evpi`` and ``forecast``.
    """
    return {
        "fan": _fan_item(north_star, dated),
        "evpi": _evpi_item(unit),
        "forecast": _forecast_item(north_star),
    }


def fan_data(fan: pd.DataFrame) -> dict[str, dict[str, list[float]]]:
    """Return the fan chart's columns per series (empty for a series the frame lacks).

    Parameters
    ----------
    fan : pandas.DataFrame
        :func:`nsm_sim.output.tables.fan_frame`: ``period`` (a number, or a date), ``scenario``,
        ``p5`` ... ``p95``.

    Returns
    -------
    dict
        Source name (``"fan:<series>"``) to columns (dates as milliseconds since the epoch).
    """
    out = {}
    for series in fan_series():
        frame = fan[fan["scenario"] == series]
        period = frame["period"]
        if not pd.api.types.is_numeric_dtype(period):  # dates: ms since the epoch
            period = pd.to_datetime(period).astype("int64") / 1e6
        columns = {c: frame[c].astype(float).tolist() for c in _BANDS}
        out[f"fan:{series}"] = {"period": period.astype(float).tolist(), **columns}
    return out


def evpi_data(evpi: pd.DataFrame) -> dict[str, Any]:
    """Return the value of information's bars, largest on top.

    Parameters
    ----------
    evpi : pandas.DataFrame
        ``name`` and ``evpi``, sorted largest first.

    Returns
    -------
    dict
        ``{"evpi": {"name", "evpi"}, "evpi:names": factors}``.
    """
    names = [str(n) for n in evpi["name"]][::-1]
    return {
        "evpi": {"name": names, "evpi": evpi["evpi"].astype(float).tolist()[::-1]},
        "evpi:names": names,
    }


def forecast_data(forecast: Sequence[dict[str, Any]] | None, target: dict | None) -> dict:
    """Return the forecast's columns: dates (ms since the epoch), mean and 90 % band.

    Parameters
    ----------
    forecast : list of dict or None
        The simulation's ``forecast`` rows: ``period`` (a date) and ``north_star``
        ``{"baseline": {"mean", "p5", "p95"}, "portfolio": {...}}``.
    target : dict or None
        The simulation's ``target``, with its ``value``.

    Returns
    -------
    dict
        Source name to columns, and ``"forecast:target"``: the target's value or None.
    """
    rows = list(forecast or [])
    dates = [pd.Timestamp(r["period"]).value / 1e6 for r in rows]
    out: dict[str, Any] = {}
    for series in FORECAST_COLOURS:
        cells = [(r.get("north_star") or {}).get(series) or {} for r in rows]
        out[f"forecast:{series}"] = {
            "date": dates,
            **{k: [c.get(k) for c in cells] for k in ("mean", "p5", "p95")},
        }
    out["forecast:target"] = (target or {}).get("value")
    return out


def chart_data(
    fan: pd.DataFrame,
    evpi: pd.DataFrame,
    forecast: Sequence[dict[str, Any]] | None = None,
    target: dict | None = None,
) -> dict[str, Any]:
    """Return every chart's data, by source name (see :func:`chart_items`).

    Parameters
    ----------
    fan, evpi, forecast, target
        As :func:`fan_data`, :func:`evpi_data` and :func:`forecast_data`.

    Returns
    -------
    dict
    """
    return {**fan_data(fan), **evpi_data(evpi), **forecast_data(forecast, target)}


__all__ = [
    "FORECAST_COLOURS",
    "FAN_COLOURS",
    "bokeh_version",
    "bokehjs_files",
    "chart_data",
    "chart_items",
    "evpi_data",
    "fan_data",
    "fan_series",
    "forecast_data",
]
