"""Reading the files: YAML (safe), schema validation, every problem with its field path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from nsm_sim.errors import SpecError, hint
from nsm_sim.spec.lifts import (
    Arm,
    BetaLift,
    Experiment,
    ExperimentLift,
    FixedLift,
    IntervalLift,
    LogNormalLift,
    NormalLift,
    PertLift,
    UniformLift,
)
from nsm_sim.spec.scenario import Initiative, Scenario
from nsm_sim.spec.tree import MetricTree

# --------------------------------------------------------------------------- loading


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
            out.append(f"{where}: unknown key{hint(key, vocabulary)}")
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
