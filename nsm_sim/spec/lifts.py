"""Lifts: how an initiative (or a past experiment) moves its metric, as a distribution.

Every number of a lift is finite, and no lift can take a metric down by 100 % or more (a
lower end at or below -100 % is refused). :func:`lift_span` gives a lift's 5th and 95th
percentiles, which :class:`~nsm_sim.spec.Initiative` holds to a plausible range.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nsm_sim.spec.base import Fraction, _Closed

#: The standard normal's 95th percentile.
_Z_95 = 1.6448536269514722

# --------------------------------------------------------------------------- lifts


class _Finite(_Closed):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _above_minus_one(value: float, field: str) -> None:
    if value <= -1.0:
        raise ValueError(
            f"{field}: {value:.4g} is a fall of 100% or more, which no metric can have; "
            "expected above -100%"
        )


class IntervalLift(_Finite):
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

    @model_validator(mode="after")
    def _possible(self) -> IntervalLift:
        _above_minus_one(self.low, "low")
        return self


class NormalLift(_Finite):
    """A normal relative lift."""

    distribution: Literal["normal"]
    mean: Fraction
    sd: Fraction = Field(ge=0.0)


class LogNormalLift(_Finite):
    """A log-normal relative lift: ``log(lift) ~ Normal(log(median), sigma)``."""

    distribution: Literal["lognormal"]
    median: Fraction = Field(gt=0.0)
    sigma: float = Field(ge=0.0)


class BetaLift(_Finite):
    """A relative lift ``scale * Beta(alpha, beta)``."""

    distribution: Literal["beta"]
    alpha: float = Field(gt=0.0)
    beta: float = Field(gt=0.0)
    scale: Fraction = 1.0

    @model_validator(mode="after")
    def _possible(self) -> BetaLift:
        _above_minus_one(self.scale, "scale")
        return self


class UniformLift(_Finite):
    """A uniform relative lift on ``[low, high]``."""

    distribution: Literal["uniform"]
    low: Fraction
    high: Fraction

    _ordered = field_validator("high")(IntervalLift._ordered.__func__)

    @model_validator(mode="after")
    def _possible(self) -> UniformLift:
        _above_minus_one(self.low, "low")
        return self


class PertLift(_Finite):
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
        _above_minus_one(self.low, "low")
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
    """An A/B result; the lift is the posterior of ``p_treatment / p_control - 1``.

    ``metric`` names the node of the tree whose rate the test measured (its conversions
    count that metric). When given, the initiative must target that node: a conversion
    measured on one step of a funnel is not a lift on another.
    """

    control: Arm
    treatment: Arm
    metric: str | None = None


class ExperimentLift(_Closed):
    """A lift measured by an A/B test (Beta(1, 1) priors on both conversion rates)."""

    experiment: Experiment


class FixedLift(_Finite):
    """A lift known exactly."""

    value: Fraction

    @model_validator(mode="after")
    def _possible(self) -> FixedLift:
        _above_minus_one(self.value, "value")
        return self


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
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return {"value": value}
    return value


def _beta_span(alpha: float, beta: float) -> tuple[float, float]:
    from scipy.stats import beta as beta_distribution

    low, high = beta_distribution.ppf([0.05, 0.95], alpha, beta)
    return float(low), float(high)


def _lognormal_quantile(log_median: float, z: float) -> float:
    exponent = log_median + z
    return math.inf if exponent > 700 else math.exp(exponent)


def lift_span(lift: Any) -> tuple[float, float]:
    """Return a lift's 5th and 95th percentiles (bounds on them for a measured experiment).

    Parameters
    ----------
    lift : Lift
        Any lift model.

    Returns
    -------
    tuple of float
        ``(p5, p95)`` of the relative lift; for an :class:`ExperimentLift`, a lower bound of
        its 5th percentile and an upper bound of its 95th (from the 2.5th and 97.5th
        percentiles of the two conversion rates).

    Examples
    --------
    >>> lift_span(IntervalLift(low=0.02, high=0.1))
    (0.02, 0.1)
    >>> lift_span(FixedLift(value=0.05))
    (0.05, 0.05)
    """
    if isinstance(lift, IntervalLift):
        return lift.low, lift.high
    if isinstance(lift, FixedLift):
        return lift.value, lift.value
    if isinstance(lift, NormalLift):
        return lift.mean - _Z_95 * lift.sd, lift.mean + _Z_95 * lift.sd
    if isinstance(lift, LogNormalLift):
        log_median = math.log(lift.median)
        spread = _Z_95 * lift.sigma
        return (
            _lognormal_quantile(log_median, -spread),
            _lognormal_quantile(log_median, spread),
        )
    if isinstance(lift, UniformLift):
        width = lift.high - lift.low
        return lift.low + 0.05 * width, lift.low + 0.95 * width
    if isinstance(lift, BetaLift):
        low, high = (lift.scale * q for q in _beta_span(lift.alpha, lift.beta))
        return min(low, high), max(low, high)
    if isinstance(lift, PertLift):
        span = lift.high - lift.low
        a = 1 + 4 * (lift.mode - lift.low) / span
        b = 1 + 4 * (lift.high - lift.mode) / span
        low, high = _beta_span(a, b)
        return lift.low + span * low, lift.low + span * high
    if isinstance(lift, ExperimentLift):
        from scipy.stats import beta as beta_distribution

        c, t = lift.experiment.control, lift.experiment.treatment
        control = beta_distribution.ppf([0.025, 0.975], 1 + c.conversions, 1 + c.n - c.conversions)
        treated = beta_distribution.ppf([0.025, 0.975], 1 + t.conversions, 1 + t.n - t.conversions)
        return float(treated[0] / control[1] - 1.0), float(treated[1] / control[0] - 1.0)
    raise TypeError(f"not a lift: {lift!r}")
