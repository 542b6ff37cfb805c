"""The scenario file: a quarter's initiatives, horizon and capacity.

Beyond the types, a scenario is held to what can be projected and decided: every number is
finite; names are plain text (no control characters, and no leading ``=``, ``+``, ``-`` or
``@``, which spreadsheets run as formulas); a lift's 90 % range stays above -100 % and below
:data:`MAX_LIFT`, and within :data:`PLAUSIBLE_LIFT` unless the initiative says
``allow_large_lift: true`` (a lift measured by an experiment is taken as measured); the
horizon is at most :data:`MAX_HORIZON_YEARS` years of the tree's periods; efforts and the
capacity are at most :data:`MAX_EFFORT`. A scenario file is also checked by
:func:`scenario_problems`: initiatives that start after the horizon, and initiatives that
can never be funded because what they require excludes itself.
"""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from nsm_sim.errors import hint
from nsm_sim.spec.base import Probability, _Closed
from nsm_sim.spec.forecast import Target
from nsm_sim.spec.lifts import ExperimentLift, Lift, _coerce_lift, lift_span
from nsm_sim.spec.tree import MetricTree

#: Lifts whose 90 % range leaves this range need ``allow_large_lift: true``.
PLAUSIBLE_LIFT = (-0.9, 3.0)

#: No lift's 95th percentile may exceed this (a hundredfold rise).
MAX_LIFT = 100.0

#: Longest horizon, in years of the tree's periods.
MAX_HORIZON_YEARS = 10
_PERIODS_PER_YEAR = {"week": 52, "month": 12}

#: Most initiatives in one scenario.
MAX_INITIATIVES = 200

#: Largest effort or capacity (in the scenario's unit).
MAX_EFFORT = 1e9

#: Longest name of an initiative or a scenario.
MAX_NAME = 120

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _plain_name(name: str) -> str:
    if _CONTROL.search(name):
        raise ValueError("expected a name without control characters (tabs, line breaks)")
    if name[:1] in ("=", "+", "-", "@"):
        raise ValueError(
            f"{name!r} starts with {name[0]!r}, which spreadsheets run as a formula; "
            "expected a name starting with a letter, a digit or a bracket"
        )
    if not name.strip():
        raise ValueError("expected a name that is not blank")
    return name


Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME), AfterValidator(_plain_name)]


def _percent(x: float) -> str:
    if not math.isfinite(x):
        return "unbounded"
    if abs(x) >= 1.0:
        return f"{100 * x:+,.0f}%"
    return f"{100 * x:+.3g}%"


def _span_problem(lift: Lift, allow_large: bool) -> str | None:
    if isinstance(lift, ExperimentLift):
        return None  # measured: its range is the experiment's, whatever its size
    low, high = lift_span(lift)
    if low <= -1.0:
        return (
            f"its 5th percentile is {_percent(low)}, a fall of 100% or more in one simulation in "
            "twenty, which no metric can have; expected a lift whose range stays above -100%"
        )
    if high > MAX_LIFT:
        return (
            f"its 95th percentile is {_percent(high)}; expected at most "
            f"{_percent(MAX_LIFT)} (a hundredfold rise), even with allow_large_lift"
        )
    lowest, highest = PLAUSIBLE_LIFT
    if (low < lowest or high > highest) and not allow_large:
        return (
            f"its 90% range, {_percent(low)} to {_percent(high)}, leaves the plausible "
            f"{_percent(lowest)} to {_percent(highest)}; if that is meant, say "
            "`allow_large_lift: true` on the initiative"
        )
    return None


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
    allow_large_lift : bool
        The lift's 90 % range may leave :data:`PLAUSIBLE_LIFT` (it stays under
        :data:`MAX_LIFT` and above -100 % all the same).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: Name
    target: str
    lift: Annotated[Lift, BeforeValidator(_coerce_lift)]
    confidence: Probability = 1.0
    reach: Probability | None = None
    segments: list[str] | None = None
    start: int = Field(default=0, ge=0)
    ramp: int = Field(default=0, ge=0)
    effort: float = Field(default=1.0, gt=0.0, le=MAX_EFFORT)
    requires: list[str] = Field(default_factory=list)
    excludes: list[str] = Field(default_factory=list)
    allow_large_lift: bool = False

    @model_validator(mode="after")
    def _reach_or_segments(self) -> Initiative:
        if self.reach is not None and self.segments is not None:
            raise ValueError("give either reach or segments, not both")
        if self.segments is not None and not self.segments:
            raise ValueError("segments: expected at least one segment")
        return self

    @model_validator(mode="after")
    def _lift_on_the_measured_node(self) -> Initiative:
        measured = getattr(getattr(self.lift, "experiment", None), "metric", None)
        if measured is not None and measured != self.target:
            raise ValueError(
                f"lift.experiment.metric: the experiment measured {measured!r} but the "
                f"initiative targets {self.target!r}; target the node the test measured"
            )
        return self

    @model_validator(mode="after")
    def _plausible_lift(self) -> Initiative:
        problem = _span_problem(self.lift, self.allow_large_lift)
        if problem:
            raise ValueError(f"lift: {problem}")
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
    target : Target or None
        ``{value, by: DATE}``: the North Star's aggregate (as the tree defines it) to reach by
        a date; overrides the tree's standing target (see :attr:`goal`).
    tree : MetricTree or None
        The tree the scenario names, filled by :func:`load_scenario`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: Name
    model: str
    horizon: int = Field(ge=1)
    capacity: float = Field(gt=0.0, le=MAX_EFFORT)
    overlap: Probability = 0.0
    initiatives: list[Initiative] = Field(min_length=1, max_length=MAX_INITIATIVES)
    target: Target | None = None
    tree: MetricTree | None = None

    @property
    def goal(self) -> Target | None:
        """The target in force: the scenario's, else the tree's standing one, else None."""
        if self.target is not None:
            return self.target
        return self.tree.target if self.tree is not None else None

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
        period = self.tree.period if self.tree is not None else "week"
        longest = MAX_HORIZON_YEARS * _PERIODS_PER_YEAR[period]
        if self.horizon > longest:
            problems.append(
                f"horizon: {self.horizon:,} {period}s is more than {MAX_HORIZON_YEARS} years; "
                f"expected at most {longest}"
            )
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


def _requirements(scenario: Scenario) -> dict[str, list[str]]:
    """Map each initiative to itself and everything it requires, directly or not, in order."""
    requires = {i.name: i.requires for i in scenario.initiatives}
    out = {}
    for name in requires:
        needed = [name]
        for current in needed:
            needed.extend(n for n in requires.get(current, ()) if n not in needed)
        out[name] = needed
    return out


def scenario_problems(scenario: Scenario) -> list[str]:
    """Say what in a valid scenario cannot be projected or funded as written.

    Parameters
    ----------
    scenario : Scenario

    Returns
    -------
    list of str
        One line per problem, with its field path: an initiative that starts at or after the
        horizon (it would be worth nothing), and one that can never be funded because it
        requires (directly or through others) two initiatives of which one excludes the other
        (itself included).
    """
    problems = []
    excludes = {i.name: set(i.excludes) for i in scenario.initiatives}
    for k, (ini, needed) in enumerate(
        zip(scenario.initiatives, _requirements(scenario).values(), strict=True)
    ):
        if ini.start >= scenario.horizon:
            problems.append(
                f"initiatives[{k}].start: {ini.start} is not within the horizon of "
                f"{scenario.horizon} periods (0 to {scenario.horizon - 1}), so it would change "
                "nothing; expected an earlier start or a longer horizon"
            )
        clash = next(((a, b) for a in needed for b in needed if b in excludes[a]), None)
        if clash is not None:
            a, b = clash
            through = f" (it requires {', '.join(repr(n) for n in needed[1:])})"
            problems.append(
                f"initiatives[{k}]: {ini.name!r} can never be funded: it needs both {a!r} and "
                f"{b!r}{through if len(needed) > 1 else ''}, and {a!r} excludes {b!r}; expected "
                "requires and excludes that can be met together"
            )
    return problems
