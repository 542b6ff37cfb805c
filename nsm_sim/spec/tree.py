"""The metric-tree file: the North Star, its inputs, candidates, experiments."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from nsm_sim.errors import hint
from nsm_sim.spec.base import _NAME, Fraction, _Closed
from nsm_sim.spec.forecast import Aggregate, Target, currency_label
from nsm_sim.spec.lifts import IntervalLift

#: Fields of the tree that say how the North Star is reported, not what is fitted: they are
#: left out of :meth:`MetricTree.fingerprint`, so a fit serves a tree that sets a target.
REPORTING_FIELDS = frozenset({"north_star_aggregate", "target", "currency"})

# --------------------------------------------------------------------------- metric tree


class CalibrationExperiment(_Closed):
    """A past experiment that moved one input metric: evidence on one elasticity.

    Attributes
    ----------
    name : str
        The experiment's name.
    input : str
        The input metric the experiment moved (a node of the tree, not the North Star).
    input_lift : float
        Its measured relative lift (``"12%"`` or ``0.12``), taken as known.
    parent_lift : IntervalLift
        90 % interval of the measured relative lift of the input's parent in the tree.
    """

    name: str
    input: str
    input_lift: Fraction
    parent_lift: IntervalLift

    @field_validator("input_lift")
    @classmethod
    def _moves(cls, lift: float) -> float:
        if not lift > -1.0 or lift == 0.0:
            raise ValueError(f"expected a relative lift above -100% and not 0, got {lift:g}")
        return lift

    @field_validator("parent_lift")
    @classmethod
    def _measured(cls, lift: IntervalLift) -> IntervalLift:
        if not lift.low > -1.0:
            raise ValueError(f"low: expected a relative lift above -100%, got {lift.low:g}")
        if not lift.high > lift.low:
            raise ValueError("expected high above low: a measured lift has an uncertainty")
        return lift


class MetricTree(_Closed):
    """A metric tree: the North Star, the input metrics under it, and candidate North Stars.

    Attributes
    ----------
    name : str
        The tree's name.
    period : {"week", "month"}
        The panel's period.
    segment : str or None
        The panel's segment column, if any.
    north_star : str
        The North Star metric (a panel column).
    inputs : dict
        The input metrics that drive the North Star; each maps to its own inputs, given as a
        list of names (leaves) or a mapping (deeper levels).
    candidates : list of str
        Alternative North Stars to test against it.
    value : str or None
        Value column (e.g. revenue per period) that puts a currency on retention.
    retention_horizon : int
        Periods over which retention is reported.
    experiments : list of CalibrationExperiment
        Past experiments that calibrate elasticities (see :mod:`nsm_sim.models.drivers`).
    north_star_aggregate : {"sum", "mean"} or AtLeast
        How the company reports the North Star over its accounts in a period: the ``sum``
        over accounts (default), the ``mean`` per account, or ``{at_least: LEVEL}``, the
        number of accounts at or above a level. The forecast projects this aggregate.
    target : Target or None
        A standing target of the aggregate, ``{value, by: DATE}`` (a scenario's wins).
    currency : str or None
        The unit of the value column (``EUR``), shown with money.
    """

    name: str
    period: Literal["week", "month"] = "week"
    segment: str | None = None
    north_star: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    candidates: list[str] = Field(default_factory=list)
    value: str | None = None
    retention_horizon: int = Field(default=4, ge=1)
    experiments: list[CalibrationExperiment] = Field(default_factory=list)
    north_star_aggregate: Aggregate = "sum"
    target: Target | None = None
    currency: str | None = None

    @field_validator("currency")
    @classmethod
    def _currency(cls, currency: str | None) -> str | None:
        return currency_label(currency)

    @model_validator(mode="after")
    def _check_tree(self) -> MetricTree:
        problems: list[str] = []
        seen: dict[str, str] = {self.north_star: "north_star"}

        def walk(mapping: Any, where: str, ancestors: tuple[str, ...]) -> None:
            if isinstance(mapping, list):
                mapping = {name: [] for name in mapping}
            if mapping is None:
                return
            if not isinstance(mapping, dict):
                problems.append(f"{where}: expected a list of metric names or a mapping")
                return
            for name, sub in mapping.items():
                here = f"{where}.{name}"
                if not isinstance(name, str) or not _NAME.match(name):
                    problems.append(f"{here}: {name!r} is not a valid metric (column) name")
                    continue
                if name in ancestors:
                    problems.append(
                        f"{here}: cycle: {name!r} is listed under itself "
                        f"({' -> '.join((*ancestors, name))})"
                    )
                    continue
                if name in seen:
                    problems.append(f"{here}: {name!r} is used twice (also at {seen[name]})")
                    continue
                seen[name] = here
                walk(sub, here, (*ancestors, name))

        if not _NAME.match(self.north_star):
            problems.append(f"north_star: {self.north_star!r} is not a valid metric name")
        walk(self.inputs, "inputs", (self.north_star,))
        if not self.inputs:
            problems.append("inputs: expected at least one input metric under the North Star")
        for i, cand in enumerate(self.candidates):
            if cand in seen:
                problems.append(
                    f"candidates[{i}]: {cand!r} is already a node of the tree ({seen[cand]})"
                )
        if len(set(self.candidates)) != len(self.candidates):
            problems.append("candidates: a candidate is listed twice")
        if self.segment is not None and (self.segment in seen or self.segment in self.candidates):
            problems.append(f"segment: {self.segment!r} is also a metric")
        names: set[str] = set()
        for i, exp in enumerate(self.experiments):
            if exp.name in names:
                problems.append(f"experiments[{i}].name: {exp.name!r} is used twice")
            names.add(exp.name)
            if exp.input == self.north_star:
                problems.append(
                    f"experiments[{i}].input: the North Star has no parent; name the input "
                    "metric the experiment moved"
                )
            elif exp.input not in seen:
                problems.append(
                    f"experiments[{i}].input: {exp.input!r} is not an input of the tree"
                    f"{hint(exp.input, seen)}"
                )
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def children(self) -> dict[str, tuple[str, ...]]:
        """Map each parent node (the North Star first) to its children, in file order."""
        out: dict[str, tuple[str, ...]] = {}

        def walk(parent: str, mapping: Any) -> None:
            if isinstance(mapping, list):
                mapping = {name: [] for name in mapping}
            if not mapping:
                return
            out[parent] = tuple(mapping)
            for name, sub in mapping.items():
                walk(name, sub)

        walk(self.north_star, self.inputs)
        return out

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every node of the tree: the North Star, then its inputs depth first."""
        out = [self.north_star]
        for kids in self.children.values():
            out.extend(kids)
        return tuple(out)

    @property
    def edges(self) -> tuple[tuple[str, str], ...]:
        """Every (parent, child) edge of the tree."""
        return tuple((p, c) for p, kids in self.children.items() for c in kids)

    @property
    def parent(self) -> dict[str, str]:
        """Map each input metric to its parent."""
        return {c: p for p, c in self.edges}

    @property
    def calibration(self) -> dict[tuple[str, str], tuple[CalibrationExperiment, ...]]:
        """Map each edge ``(parent, child)`` to the experiments that calibrate it (tree order)."""
        up = self.parent
        return {
            (up[c], c): tuple(e for e in self.experiments if e.input == c) for _, c in self.edges
        }

    def path_to_north_star(self, node: str) -> list[tuple[str, str]]:
        """Edges ``(parent, child)`` from ``node`` up to the North Star (empty for the North Star).

        Parameters
        ----------
        node : str
            A node of the tree.

        Returns
        -------
        list of tuple
            The edges crossed going up, first the one leaving ``node``.
        """
        if node not in self.nodes:
            raise KeyError(node)
        up = self.parent
        path = []
        while node != self.north_star:
            path.append((up[node], node))
            node = up[node]
        return path

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric column the panel must hold: the tree's nodes then the candidates."""
        return (*self.nodes, *[c for c in self.candidates if c not in self.nodes])

    @property
    def value_columns(self) -> tuple[str, ...]:
        """The value column, when it is not already a metric."""
        if self.value and self.value not in self.metrics:
            return (self.value,)
        return ()

    def fingerprint(self) -> str:
        """Return a short hash of what is fitted of the tree (not of its file's formatting).

        The reporting fields (:data:`REPORTING_FIELDS`: aggregate, target, currency) are left
        out: they change no fit.
        """
        content = self.model_dump(mode="json", exclude=set(REPORTING_FIELDS))
        canonical = json.dumps(content, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
