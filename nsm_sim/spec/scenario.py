"""The scenario file: a quarter's initiatives, horizon and capacity."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from nsm_sim.errors import hint
from nsm_sim.spec.base import Probability, _Closed
from nsm_sim.spec.lifts import Lift, _coerce_lift
from nsm_sim.spec.tree import MetricTree

# --------------------------------------------------------------------------- scenario


class Initiative(_Closed):
    """A proposed initiative: an uncertain lift on one node of the metric tree.

    Attributes
    ----------
    name : str
        Unique within the scenario.
    target : str
        The node of the tree it moves.
    lift : Lift
        Relative lift of the target if the initiative works.
    confidence : float
        Probability that it works at all.
    reach : float or None
        Share of accounts it reaches (default 1 when ``segments`` is not given).
    segments : list of str or None
        Segments it reaches (all their accounts); exclusive with ``reach``.
    start : int
        Period of the horizon in which it ships (0 = the first projected period).
    ramp : int
        Periods to full effect after ``start`` (0 = full effect at once).
    effort : float
        Cost in the scenario's capacity unit (e.g. engineer-weeks).
    requires, excludes : list of str
        Initiatives it needs, or cannot be combined with.
    """

    name: str = Field(min_length=1)
    target: str
    lift: Annotated[Lift, BeforeValidator(_coerce_lift)]
    confidence: Probability = 1.0
    reach: Probability | None = None
    segments: list[str] | None = None
    start: int = Field(default=0, ge=0)
    ramp: int = Field(default=0, ge=0)
    effort: float = Field(default=1.0, gt=0.0)
    requires: list[str] = Field(default_factory=list)
    excludes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _reach_or_segments(self) -> Initiative:
        if self.reach is not None and self.segments is not None:
            raise ValueError("give either reach or segments, not both")
        if self.segments is not None and not self.segments:
            raise ValueError("segments: expected at least one segment")
        return self


class Scenario(_Closed):
    """A quarter's initiatives, projected through a fitted metric tree.

    Attributes
    ----------
    name : str
        The scenario's name.
    model : str
        Path of the metric-tree file, relative to the scenario file.
    horizon : int
        Periods to project.
    capacity : float
        Effort budget for the portfolio.
    overlap : float
        Share by which joint lifts on the same node shrink because they reach the same users
        (0 = independent, lifts multiply in full).
    initiatives : list of Initiative
        The proposals.
    tree : MetricTree or None
        The tree the scenario names, filled by :func:`load_scenario`.
    """

    name: str
    model: str
    horizon: int = Field(ge=1)
    capacity: float = Field(gt=0.0)
    overlap: Probability = 0.0
    initiatives: list[Initiative] = Field(min_length=1)
    tree: MetricTree | None = None

    @field_validator("initiatives")
    @classmethod
    def _unique(cls, initiatives: list[Initiative]) -> list[Initiative]:
        names = [i.name for i in initiatives]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"initiative names must be unique; used twice: {', '.join(dupes)}")
        return initiatives

    @model_validator(mode="after")
    def _links(self) -> Scenario:
        names = {i.name for i in self.initiatives}
        problems = []
        for k, ini in enumerate(self.initiatives):
            for field in ("requires", "excludes"):
                for j, other in enumerate(getattr(ini, field)):
                    where = f"initiatives[{k}].{field}[{j}]"
                    if other == ini.name:
                        problems.append(f"{where}: an initiative cannot name itself")
                    elif other not in names:
                        problems.append(
                            f"{where}: no initiative named {other!r}{hint(other, names)}"
                        )
            if self.tree is not None and ini.target not in self.tree.nodes:
                problems.append(
                    f"initiatives[{k}].target: {ini.target!r} is not a node of the tree "
                    f"{self.tree.name!r}{hint(ini.target, self.tree.nodes)}"
                )
        if problems:
            raise ValueError("\n".join(problems))
        return self
