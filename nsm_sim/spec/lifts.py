"""Lifts: how an initiative (or a past experiment) moves its metric, as a distribution."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nsm_sim.spec.base import Fraction, _Closed

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
