from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nsm_sim.errors import SpecError
from nsm_sim.spec import (
    ExperimentLift,
    FixedLift,
    IntervalLift,
    PertLift,
    load_scenario,
    load_tree,
    parse_fraction,
)

SPECS = Path(__file__).parent / "specs"
ROOT = Path(__file__).parent.parent

# broken file -> substrings its message must hold (the field path, then what was expected)
WRONG = {
    "wrong_tree_unknown_key.yaml": ["candidatse: unknown key", "did you mean 'candidates'"],
    "wrong_tree_cycle.yaml": ["inputs.a.a1.a: cycle", "nsm -> a -> a1 -> a"],
    "wrong_tree_twice.yaml": ["inputs.b: 'b' is used twice", "inputs.a.b"],
    "wrong_tree_period.yaml": ["period:", "'week' or 'month'"],
    "wrong_tree_candidate_node.yaml": ["candidates[0]: 'a' is already a node"],
    "wrong_tree_missing.yaml": ["north_star: required field is missing"],
    "wrong_tree_not_yaml.yaml": ["not valid YAML"],
    "wrong_tree_experiment.yaml": [
        "experiments[1].name: 'Onboarding test' is used twice",
        "experiments[1].input: the North Star has no parent",
        "experiments[2].input: 'a_1' is not an input of the tree (did you mean 'a1'?)",
    ],
    "wrong_tree_experiment_lift.yaml": [
        "experiments[0].input_lift: expected a relative lift above -100% and not 0",
        "experiments[0].parent_lift: expected high above low",
    ],
    "wrong_scenario_low_high.yaml": ["initiatives[2].lift.high: must not be below low (0.2)"],
    "wrong_scenario_target.yaml": [
        "initiatives[0].target: 'a_1' is not a node of the tree",
        "did you mean 'a1'",
    ],
    "wrong_scenario_experiment_node.yaml": [
        "initiatives[0]: lift.experiment.metric: the experiment measured 'a1'",
        "targets 'a'",
    ],
    "wrong_scenario_twice.yaml": ["initiatives: initiative names must be unique", "A"],
    "wrong_scenario_probability.yaml": ["initiatives[0].confidence:", "less than or equal to 1"],
    "wrong_scenario_unknown_key.yaml": ["initiatives[0].efort: unknown key", "'effort'"],
    "wrong_scenario_lift.yaml": [
        "initiatives[0].lift: expected {low, high}",
        "initiatives[1].lift.value:",
    ],
    "wrong_scenario_requires.yaml": [
        "initiatives[0].requires[0]: no initiative named 'Alpah' (did you mean 'Alpha'?)",
        "initiatives[1].excludes[0]: an initiative cannot name itself",
    ],
    "wrong_scenario_model.yaml": ["model: metric-tree file", "no_such_tree.yaml"],
    "wrong_scenario_reach.yaml": ["horizon:", "initiatives[0]: give either reach or segments"],
}


@pytest.mark.parametrize("name", sorted(WRONG))
def test_wrong_file_gives_its_message(name):
    loader = load_scenario if "scenario" in name else load_tree
    with pytest.raises(SpecError) as info:
        loader(SPECS / name)
    message = info.value.message
    assert message.startswith(str(SPECS / name))
    for expected in WRONG[name]:
        assert expected in message, message


def test_every_wrong_fixture_is_listed():
    assert {p.name for p in SPECS.glob("wrong_*.yaml")} == set(WRONG)


def test_missing_file():
    with pytest.raises(SpecError, match="file not found"):
        load_tree(SPECS / "nope.yaml")


def test_good_tree_structure():
    tree = load_tree(SPECS / "good_tree.yaml")
    assert tree.children == {"nsm": ("a", "b"), "a": ("a1", "a2")}
    assert tree.nodes == ("nsm", "a", "b", "a1", "a2")
    assert tree.path_to_north_star("a2") == [("a", "a2"), ("nsm", "a")]
    assert tree.path_to_north_star("nsm") == []
    assert tree.metrics == ("nsm", "a", "b", "a1", "a2", "c1")
    assert tree.fingerprint() == load_tree(SPECS / "good_tree.yaml").fingerprint()


def test_fingerprint_changes_with_content():
    tree = load_tree(SPECS / "good_tree.yaml")
    other = tree.model_copy(update={"candidates": []})
    assert tree.fingerprint() != other.fingerprint()


def test_good_scenario_lift_kinds():
    scenario = load_scenario(SPECS / "good_scenario.yaml")
    kinds = [type(i.lift) for i in scenario.initiatives]
    assert kinds == [IntervalLift, PertLift, ExperimentLift, FixedLift]
    assert scenario.initiatives[0].lift.low == pytest.approx(0.02)
    assert scenario.initiatives[3].lift.value == pytest.approx(0.03)
    assert scenario.tree.north_star == "nsm"


def test_shipped_demo_files_validate():
    scenario = load_scenario(ROOT / "scenarios" / "demo.yaml")
    assert 6 <= len(scenario.initiatives) <= 10
    assert scenario.tree == load_tree(ROOT / "models" / "demo.yaml")
    assert sum(i.effort for i in scenario.initiatives) > scenario.capacity


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_percent_strings_equal_fractions(x):
    assert parse_fraction(f"{x!r}%") == pytest.approx(x / 100, rel=1e-12, abs=1e-300)
    assert parse_fraction(x) == x
