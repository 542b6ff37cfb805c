"""The metric tree drawn: an SVG of the North Star, its inputs and theirs, with the fit's numbers.

The layout is layered: the North Star on top, its inputs on the row below, their inputs
below them. Leaves take consecutive slots from left to right in the tree file's order, and
each parent is centred over its children, so edges never cross. Each edge is labelled with
its population elasticity and 90 % interval from the fit's drivers summary
(:func:`nsm_sim.models.inference.summarise`); an edge that experiments calibrate is drawn
solid and green and labelled "calibrated", the others dashed grey. Each node shows its
owner (from the tree file's metric definitions, when they name one) and its current level
(from the starting population, the accounts alive in the last period of the panel).

The SVG is generated here from the tree, with no drawing library: every string from a
user's file is escaped, and the same inputs give the same text byte for byte. Its elements
carry classes and ``data-`` attributes (``g.node[data-metric]``, ``g.edge[data-parent]
[data-child]``, ``text.edge-label``) so that pages and tests can find them.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from nsm_sim.output.format import fmt

#: Size of a node's box and the gaps between boxes and rows, in pixels.
NODE_WIDTH, NODE_HEIGHT = 190, 62
COLUMN_GAP, ROW_GAP = 24, 84
MARGIN = 12

#: Where an edge's label sits, from the parent (0) to the child (1).
LABEL_AT = 0.7

CALIBRATED_COLOUR = "#1e7b34"
EDGE_COLOUR = "#8a8a8a"


@dataclass(frozen=True)
class NodeLevel:
    """A node's current level: what one account has in a period, and over how many accounts.

    Attributes
    ----------
    per_account : float
        Mean per account per period, in the last period of the panel.
    accounts : int
        Accounts alive in that period.
    """

    per_account: float
    accounts: int

    @property
    def total(self) -> float:
        """The level summed over the accounts."""
        return self.per_account * self.accounts


def current_levels(population: Any, tree: Any) -> dict[str, NodeLevel]:
    """Return the current level of the nodes the starting population knows.

    The population (:class:`nsm_sim.data.Population`) holds, per cell of accounts alive in
    the last period, their number and mean North Star; the other nodes are kept only as
    shares ``x / (1 + x)`` (what the projection needs), from which no level can be read, so
    only the North Star has one.

    Parameters
    ----------
    population : nsm_sim.data.Population
    tree : nsm_sim.spec.MetricTree

    Returns
    -------
    dict
        ``{north_star: NodeLevel}``.
    """
    frame = population.frame
    accounts = int(frame["accounts"].sum())
    if accounts == 0:
        return {}
    mean = float((frame["accounts"] * frame["north_star"]).sum() / accounts)
    return {tree.north_star: NodeLevel(mean, accounts)}


def tree_owners(tree_file: str | Path) -> dict[str, str]:
    """Read each metric's owner from a tree file's metric definitions.

    Parameters
    ----------
    tree_file : str or Path
        A metric-tree file; with no metric definitions (a panel's tree) nobody is named.

    Returns
    -------
    dict
        Metric to owner, for the metrics whose definition names one.

    Raises
    ------
    SpecError
        When the file's definitions do not validate.
    """
    from nsm_sim.events.load import has_definitions, load_definitions

    if not has_definitions(tree_file):
        return {}
    metrics = load_definitions(tree_file).definitions.metrics
    return {name: m.owner for name, m in metrics.items() if m.owner}


def _population_rows(drivers: pd.DataFrame) -> dict[tuple[str, str], dict[str, Any]]:
    rows = drivers[drivers["segment"].isna()]
    out = {}
    for row in rows.to_dict(orient="records"):
        calibrated = row.get("calibrated_by")
        if not isinstance(calibrated, str):
            calibrated = ""
        out[(str(row["parent"]), str(row["child"]))] = {**row, "calibrated_by": calibrated}
    return out


def _layout(tree: Any) -> dict[str, tuple[float, int]]:
    """Map each node to (x centre in slot units, depth)."""
    children = tree.children
    place: dict[str, tuple[float, int]] = {}
    next_slot = [0.0]

    def visit(node: str, depth: int) -> float:
        kids = children.get(node, ())
        if not kids:
            x = next_slot[0]
            next_slot[0] += 1.0
        else:
            xs = [visit(kid, depth + 1) for kid in kids]
            x = (xs[0] + xs[-1]) / 2.0
        place[node] = (x, depth)
        return x

    visit(tree.north_star, 0)
    return place


def edge_text(mean: float, low: float, high: float) -> str:
    """Return an edge's label: the elasticity and its 90 % interval.

    Parameters
    ----------
    mean, low, high : float

    Returns
    -------
    str

    Examples
    --------
    >>> edge_text(0.4213, 0.31, 0.555)
    '0.421 [0.31, 0.555]'
    """
    return f"{mean:.3g} [{low:.3g}, {high:.3g}]"


def tree_svg(
    tree: Any,
    drivers: pd.DataFrame,
    *,
    levels: Mapping[str, NodeLevel] | None = None,
    owners: Mapping[str, str] | None = None,
) -> str:
    """Draw the metric tree as an SVG document.

    Parameters
    ----------
    tree : nsm_sim.spec.MetricTree
        The tree.
    drivers : pandas.DataFrame
        The fit's drivers summary (``summarise(fit)["drivers"]``): its population rows
        (``segment`` missing) give each edge's ``mean``, ``low``, ``high`` and
        ``calibrated_by``.
    levels : mapping of str to NodeLevel, optional
        Current level per node (:func:`current_levels`); nodes without one show none.
    owners : mapping of str to str, optional
        Owner per node (:func:`tree_owners`); nodes without one show none.

    Returns
    -------
    str
        The SVG, an XML document with one ``g.node`` per node of the tree and one
        ``g.edge`` per edge.

    Raises
    ------
    ValueError
        When the summary lacks an edge of the tree.

    Examples
    --------
    >>> from nsm_sim.testing import flat_tree
    >>> drivers = pd.DataFrame([{"parent": "nsm", "child": "a", "segment": None,
    ...     "mean": 0.5, "low": 0.4, "high": 0.6, "calibrated_by": ""}])
    >>> svg = tree_svg(flat_tree(), drivers)
    >>> svg.startswith("<svg") and "0.5 [0.4, 0.6]" in svg
    True
    """
    esc = html.escape
    levels = levels or {}
    owners = owners or {}
    numbers = _population_rows(drivers)
    missing = [f"{p}<-{c}" for p, c in tree.edges if (p, c) not in numbers]
    if missing:
        raise ValueError(f"the drivers summary lacks the edges {missing}")
    place = _layout(tree)
    slots = max(x for x, _ in place.values()) + 1
    depth = max(d for _, d in place.values()) + 1
    width = int(2 * MARGIN + slots * NODE_WIDTH + (slots - 1) * COLUMN_GAP)
    height = int(2 * MARGIN + depth * NODE_HEIGHT + (depth - 1) * ROW_GAP)

    def box(node: str) -> tuple[float, float]:
        x, d = place[node]
        left = MARGIN + x * (NODE_WIDTH + COLUMN_GAP)
        top = MARGIN + d * (NODE_HEIGHT + ROW_GAP)
        return left, top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="metric-tree" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'font-family="sans-serif" font-size="12">',
        f"<title>Metric tree {esc(tree.name)}: elasticities with 90% intervals</title>",
    ]
    for parent, child in tree.edges:
        row = numbers[(parent, child)]
        calibrated = bool(row["calibrated_by"])
        px, py = box(parent)
        cx, cy = box(child)
        x1, y1 = px + NODE_WIDTH / 2, py + NODE_HEIGHT
        x2, y2 = cx + NODE_WIDTH / 2, cy
        colour = CALIBRATED_COLOUR if calibrated else EDGE_COLOUR
        dash = "" if calibrated else ' stroke-dasharray="5 3"'
        label = edge_text(row["mean"], row["low"], row["high"])
        # nearer the child, where sibling edges are a node's width apart: labels never overlap
        tx, ty = x1 + LABEL_AT * (x2 - x1), y1 + LABEL_AT * (y2 - y1)
        note = (
            f'<text class="edge-note" x="{tx:.1f}" y="{ty + 13:.1f}" text-anchor="middle" '
            f'fill="{CALIBRATED_COLOUR}" font-size="10">calibrated</text>'
            if calibrated
            else ""
        )
        tip = f"{parent} <- {child}: elasticity {label}"
        if calibrated:
            tip += f"; calibrated by {row['calibrated_by']}"
        parts.append(
            f'<g class="edge{" calibrated" if calibrated else ""}" data-parent="{esc(parent)}" '
            f'data-child="{esc(child)}" data-mean="{row["mean"]:.6g}" '
            f'data-low="{row["low"]:.6g}" data-high="{row["high"]:.6g}">'
            f"<title>{esc(tip)}</title>"
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" '
            f'stroke-width="2"{dash}/>'
            f'<text class="edge-label" x="{tx:.1f}" y="{ty:.1f}" text-anchor="middle" '
            f'paint-order="stroke" stroke="#fff" stroke-width="4" fill="#222">{esc(label)}</text>'
            f"{note}</g>"
        )
    for node in tree.nodes:
        left, top = box(node)
        is_ns = node == tree.north_star
        fill, stroke = ("#e9f1fa", "#1f5f99") if is_ns else ("#fafafa", "#999999")
        cx = left + NODE_WIDTH / 2
        owner = owners.get(node)
        level = levels.get(node)
        lines = [
            f'<text class="node-name" x="{cx:.1f}" y="{top + 18:.1f}" text-anchor="middle" '
            f'font-weight="bold">{esc(node)}</text>'
        ]
        if level is not None:
            words = f"{fmt(level.per_account)} per account ({level.accounts:,} accounts)"
            lines.append(
                f'<text class="node-level" x="{cx:.1f}" y="{top + 35:.1f}" '
                f'text-anchor="middle" font-size="11">{esc(words)}</text>'
            )
        if owner:
            lines.append(
                f'<text class="node-owner" x="{cx:.1f}" y="{top + 52:.1f}" '
                f'text-anchor="middle" font-size="11" fill="#555">owner: {esc(owner)}</text>'
            )
        parts.append(
            f'<g class="node{" north-star" if is_ns else ""}" data-metric="{esc(node)}"'
            + (f' data-owner="{esc(owner)}"' if owner else "")
            + (f' data-level="{level.per_account:.6g}"' if level is not None else "")
            + f'><rect x="{left:.1f}" y="{top:.1f}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" '
            f'rx="6" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>' + "".join(lines) + "</g>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


__all__ = ["NodeLevel", "current_levels", "edge_text", "tree_owners", "tree_svg"]
