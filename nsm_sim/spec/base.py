"""Building blocks of the file schemas: closed models, names, fractions, edge labels."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

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
