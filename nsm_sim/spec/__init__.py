"""The metric-tree file and the scenario file: closed, validated schemas.

Both files are YAML read with ``yaml.safe_load`` (no YAML tag can name a Python object) and
validated by pydantic models with ``extra="forbid"``. Every problem is reported at once, with
the file, the field path (``initiatives[2].lift.low``) and what was expected; an unknown key
comes with a did-you-mean.
"""

from nsm_sim.spec.base import Fraction, Probability, edge_label, parse_fraction
from nsm_sim.spec.forecast import AtLeast, Target, aggregate_label
from nsm_sim.spec.lifts import (
    Arm,
    BetaLift,
    Experiment,
    ExperimentLift,
    FixedLift,
    IntervalLift,
    Lift,
    LogNormalLift,
    NormalLift,
    PertLift,
    UniformLift,
)
from nsm_sim.spec.load import dump_tree, load_scenario, load_tree
from nsm_sim.spec.scenario import Initiative, Scenario
from nsm_sim.spec.tree import CalibrationExperiment, MetricTree

__all__ = [
    "Arm",
    "AtLeast",
    "BetaLift",
    "CalibrationExperiment",
    "Experiment",
    "ExperimentLift",
    "FixedLift",
    "Fraction",
    "Initiative",
    "IntervalLift",
    "Lift",
    "LogNormalLift",
    "MetricTree",
    "NormalLift",
    "PertLift",
    "Probability",
    "Scenario",
    "Target",
    "UniformLift",
    "aggregate_label",
    "dump_tree",
    "edge_label",
    "load_scenario",
    "load_tree",
    "parse_fraction",
]
