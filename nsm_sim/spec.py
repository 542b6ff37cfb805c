"""The metric-tree file and the scenario file: closed, validated schemas.

Both files are YAML read with ``yaml.safe_load`` (no YAML tag can name a Python object) and
validated by pydantic models with ``extra="forbid"``. Every problem is reported at once, with
the file, the field path (``initiatives[2].lift.low``) and what was expected; an unknown key
comes with a did-you-mean.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nsm_sim.errors import SpecError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def edge_label(parent: str, child: str) -> str:
    """Return the coordinate label of an edge, ``"parent<-child"``.

    Parameters
    ----------
    parent, child : str
        The edge's end points.

    Returns
    -------
    str
        The label.

    Examples
    --------
    >>> edge_label("projects_completed", "active_seats")
    'projects_completed<-active_seats'
    """
    return f"{parent}<-{child}"


def parse_fraction(value: Any) -> Any:
    """Turn ``"5%"`` into ``0.05``; leave numbers (already fractions) as they are.

    Parameters
    ----------
    value : Any
        A number, or a string such as ``"5%"``, ``"-2.5 %"`` or ``"0.05"``.

    Returns
    -------
    Any
        A float when ``value`` could be read as one, else ``value`` unchanged so that the
        schema reports it.

    Examples
    --------
    >>> parse_fraction("12.5%")
    0.125
    >>> parse_fraction(0.3)
    0.3
    """
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        try:
            if text.endswith("%"):
                return float(text[:-1]) / 100.0
            return float(text)
        except ValueError:
            return value
    return value


Fraction = Annotated[float, BeforeValidator(parse_fraction)]
Probability = Annotated[float, BeforeValidator(parse_fraction), Field(ge=0.0, le=1.0)]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    def _interval(cls, lift: IntervalLift) -> IntervalLift:
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
                near = difflib.get_close_matches(exp.input, list(seen), n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                problems.append(
                    f"experiments[{i}].input: {exp.input!r} is not an input of the tree{hint}"
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
        """Return a short hash of the tree's content (not of its file's formatting)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- lifts


class IntervalLift(_Closed):
    """A 90 % interval of the relative lift if the initiative works.

    Log-normal when both ends are positive, normal otherwise.
    """

    low: Fraction
    high: Fraction

    @field_validator("high")
    @classmethod
    def _ordered(cls, high: float, info: ValidationInfo) -> float:
        low = info.data.get("low")
        if low is not None and low > high:
            raise ValueError(f"must not be below low ({low:g}), got {high:g}")
        return high


class NormalLift(_Closed):
    """A normal relative lift."""

    distribution: Literal["normal"]
    mean: Fraction
    sd: Fraction = Field(ge=0.0)


class LogNormalLift(_Closed):
    """A log-normal relative lift: ``log(lift) ~ Normal(log(median), sigma)``."""

    distribution: Literal["lognormal"]
    median: Fraction = Field(gt=0.0)
    sigma: float = Field(ge=0.0)


class BetaLift(_Closed):
    """A relative lift ``scale * Beta(alpha, beta)``."""

    distribution: Literal["beta"]
    alpha: float = Field(gt=0.0)
    beta: float = Field(gt=0.0)
    scale: Fraction = 1.0


class UniformLift(_Closed):
    """A uniform relative lift on ``[low, high]``."""

    distribution: Literal["uniform"]
    low: Fraction
    high: Fraction

    _ordered = field_validator("high")(IntervalLift._ordered.__func__)


class PertLift(_Closed):
    """A PERT relative lift: a scaled Beta with the given minimum, mode and maximum."""

    distribution: Literal["pert"]
    low: Fraction
    mode: Fraction
    high: Fraction

    @model_validator(mode="after")
    def _ordered(self) -> PertLift:
        if not self.low <= self.mode <= self.high or self.low == self.high:
            raise ValueError(
                f"expected low <= mode <= high with low < high, got "
                f"{self.low:g}, {self.mode:g}, {self.high:g}"
            )
        return self


class Arm(_Closed):
    """One arm of an A/B test: accounts exposed and accounts converted."""

    n: int = Field(gt=0)
    conversions: int = Field(ge=0)

    @model_validator(mode="after")
    def _fits(self) -> Arm:
        if self.conversions > self.n:
            raise ValueError(f"conversions ({self.conversions}) must not exceed n ({self.n})")
        return self


class Experiment(_Closed):
    """An A/B result; the lift is the posterior of ``p_treatment / p_control - 1``."""

    control: Arm
    treatment: Arm


class ExperimentLift(_Closed):
    """A lift measured by an A/B test (Beta(1, 1) priors on both conversion rates)."""

    experiment: Experiment


class FixedLift(_Closed):
    """A lift known exactly."""

    value: Fraction


def _lift_kind(value: Any) -> str:
    if isinstance(value, dict):
        for key in ("experiment", "distribution", "value"):
            if key in value:
                return {"experiment": "experiment", "value": "fixed"}.get(key, value[key])
        return "interval"
    return type(value).__name__.removesuffix("Lift").lower()


Lift = Annotated[
    Annotated[IntervalLift, Tag("interval")]
    | Annotated[ExperimentLift, Tag("experiment")]
    | Annotated[FixedLift, Tag("fixed")]
    | Annotated[NormalLift, Tag("normal")]
    | Annotated[LogNormalLift, Tag("lognormal")]
    | Annotated[BetaLift, Tag("beta")]
    | Annotated[UniformLift, Tag("uniform")]
    | Annotated[PertLift, Tag("pert")],
    Discriminator(
        _lift_kind,
        custom_error_type="lift_kind",
        custom_error_message=(
            "expected {low, high}, {distribution: normal|lognormal|beta|uniform|pert, ...}, "
            "{experiment: {control, treatment}} or a number"
        ),
    ),
]


def _coerce_lift(value: Any) -> Any:
    if isinstance(value, int | float | str):
        return {"value": value}
    return value


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
                            f"{where}: no initiative named {other!r}{_hint(other, names)}"
                        )
            if self.tree is not None and ini.target not in self.tree.nodes:
                problems.append(
                    f"initiatives[{k}].target: {ini.target!r} is not a node of the tree "
                    f"{self.tree.name!r}{_hint(ini.target, self.tree.nodes)}"
                )
        if problems:
            raise ValueError("\n".join(problems))
        return self


# --------------------------------------------------------------------------- loading


def _hint(word: str, options: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _all_field_names() -> set[str]:
    models = [MetricTree, IntervalLift, NormalLift, LogNormalLift, BetaLift, UniformLift]
    models += [PertLift, Arm, Experiment, ExperimentLift, FixedLift, Initiative, Scenario]
    return {name for m in models for name in m.model_fields}


_BRANCHES = {"interval", "experiment", "fixed", "normal", "lognormal", "beta", "uniform", "pert"}


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    previous = None
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif (previous == "lift" and part in _BRANCHES) or "[" in str(part):
            pass  # pydantic's name for a union branch, not a field
        else:
            out += f".{part}" if out else str(part)
        previous = part
    return out or "(top level)"


def _problems(err: ValidationError) -> list[str]:
    vocabulary = _all_field_names()
    out: list[str] = []
    for e in err.errors():
        where = _loc(e["loc"])
        if e["type"] == "extra_forbidden":
            key = str(e["loc"][-1])
            out.append(f"{where}: unknown key{_hint(key, vocabulary)}")
        elif e["type"] == "missing":
            out.append(f"{where}: required field is missing")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            for line in msg.split("\n"):
                # a model-level check already names the field path in its message
                out.append(line if where == "(top level)" else f"{where}: {line}")
    # a union reports each branch that failed; keep each message once
    return list(dict.fromkeys(out))


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise SpecError(str(path), ["file not found"])
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError(str(path), [f"not valid YAML: {exc}"]) from None
    if not isinstance(content, dict):
        raise SpecError(str(path), ["expected a mapping of keys at the top level"])
    return content


def load_tree(path: str | Path) -> MetricTree:
    """Read and validate a metric-tree file.

    Parameters
    ----------
    path : str or Path
        A ``models/NAME.yaml`` file.

    Returns
    -------
    MetricTree

    Raises
    ------
    SpecError
        With every problem of the file, each naming its field.
    """
    path = Path(path)
    try:
        return MetricTree.model_validate(_read_yaml(path))
    except ValidationError as err:
        raise SpecError(str(path), _problems(err)) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file and the metric tree it names.

    Parameters
    ----------
    path : str or Path
        A ``scenarios/NAME.yaml`` file; its ``model`` is resolved relative to it.

    Returns
    -------
    Scenario
        With ``tree`` filled in.

    Raises
    ------
    SpecError
        With every problem of the file (or of the tree it names).
    """
    path = Path(path)
    content = _read_yaml(path)
    tree = None
    if isinstance(content.get("model"), str):
        tree_path = path.parent / content["model"]
        if not tree_path.exists():
            raise SpecError(str(path), [f"model: metric-tree file {str(tree_path)!r} not found"])
        tree = load_tree(tree_path)
    if "tree" in content:
        raise SpecError(str(path), ["tree: unknown key (the tree is named by `model`)"])
    try:
        return Scenario.model_validate({**content, "tree": tree})
    except ValidationError as err:
        raise SpecError(str(path), _problems(err)) from None


def dump_tree(tree: MetricTree, path: str | Path) -> None:
    """Write a metric tree as YAML that :func:`load_tree` reads back."""
    data = tree.model_dump(mode="json")
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False))
