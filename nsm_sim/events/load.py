"""Reading a tree file with metric definitions: the tree and the definitions, validated.

The file is split in two: the keys of the metric tree, validated by
:class:`nsm_sim.spec.MetricTree`, and the definition keys (``source``, ``calendar``,
``metrics``, ``exclude``, ``churn``), validated by :class:`nsm_sim.events.schema.Definitions`.
``metrics`` may instead name a YAML file that holds the definition keys. Every problem of
both parts is reported at once, each with its field path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nsm_sim.errors import SpecError, hint
from nsm_sim.events.keys import DEFINITION_KEYS, definitions_part, tree_part
from nsm_sim.events.schema import FIELD_NAMES, WEEKDAYS, Definitions, EndDateChurn
from nsm_sim.spec import MetricTree
from nsm_sim.spec.load import _problems, _read_yaml

#: Union branches and discriminator tags pydantic puts into an error's location.
_BRANCHES = {"str", "list[str]", "DatabaseTable", "end_date", "inactivity"}


@dataclass(frozen=True)
class TreeDefinitions:
    """A metric tree with the definitions of its metrics.

    Attributes
    ----------
    tree : MetricTree
        The tree.
    definitions : Definitions
        How each of its metrics is computed from events.
    path : Path
        The tree file.
    base : Path
        The folder the source's relative paths start from (that of the file holding
        ``source``).
    """

    tree: MetricTree
    definitions: Definitions
    path: Path
    base: Path


def has_definitions(path: str | Path) -> bool:
    """Tell whether a tree file holds (or names) metric definitions.

    Parameters
    ----------
    path : str or Path
        A tree file.

    Returns
    -------
    bool
        True when it has a ``source`` or a ``metrics`` key.

    Raises
    ------
    SpecError
        When the file is missing or not a YAML mapping.
    """
    content = _read_yaml(Path(path))
    return "source" in content or "metrics" in content


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in str(part) or (str(part) in _BRANCHES and (i == 0 or loc[i - 1] != "metrics")):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _definition_problems(err: ValidationError) -> list[str]:
    out: list[str] = []
    for e in err.errors():
        where = _location(e["loc"])
        if e["type"] == "extra_forbidden":
            out.append(f"{where}: unknown key{hint(e['loc'][-1], FIELD_NAMES)}")
        elif e["type"] == "missing":
            out.append(f"{where}: required field is missing")
        else:
            for line in e["msg"].removeprefix("Value error, ").split("\n"):
                out.append(f"{where}: {line}")
    return list(dict.fromkeys(out))


def _read_definitions(path: Path, content: dict[str, Any]) -> tuple[dict[str, Any], Path, list]:
    """Gather the definition keys, from the tree file or the metrics file it names."""
    found = definitions_part(content)
    base = path.parent
    if not isinstance(found.get("metrics"), str):
        return found, base, []
    metrics_path = path.parent / found.pop("metrics")
    if not metrics_path.exists():
        return found, base, [f"metrics: metrics file {str(metrics_path)!r} not found"]
    named = _read_yaml(metrics_path)
    problems = [
        f"{metrics_path.name}: {key}: unknown key{hint(key, DEFINITION_KEYS)}"
        for key in named
        if key not in DEFINITION_KEYS
    ]
    problems += [
        f"{key}: given both here and in {metrics_path.name}; keep it in one place"
        for key in named
        if key in found
    ]
    if "source" in named:
        base = metrics_path.parent
    return {**found, **definitions_part(named)}, base, problems


def _against_tree(tree: MetricTree, defs: Definitions) -> list[str]:
    """Problems between a valid tree and valid definitions."""
    problems: list[str] = []
    needed = [*tree.metrics, *tree.value_columns]
    for name in needed:
        if name not in defs.metrics:
            problems.append(
                f"metrics.{name}: required: {name!r} is a column of the tree's panel and has "
                "no definition"
            )
    for name in defs.metrics:
        if name not in needed:
            problems.append(
                f"metrics.{name}: not a metric of the tree{hint(name, needed)}; expected "
                "only the tree's metrics, candidates and value column"
            )
    source = defs.source
    if source.accounts is None:
        if tree.segment:
            problems.append(
                f"source.accounts: required: the tree's segment column {tree.segment!r} "
                "comes from the accounts table"
            )
        if isinstance(defs.churn, EndDateChurn):
            problems.append(
                "source.accounts: required by churn.rule end_date (the accounts' churned_at)"
            )
        if defs.exclude.accounts_where:
            problems.append("source.accounts: required by exclude.accounts_where")
    if isinstance(defs.churn, EndDateChurn) and source.account_columns.churned_at is None:
        problems.append(
            "source.account_columns.churned_at: required by churn.rule end_date (name the "
            "accounts table's end-date column)"
        )
    start = defs.calendar.start
    if start is not None:
        if tree.period == "week" and WEEKDAYS[start.weekday()] != defs.calendar.week_start:
            problems.append(
                f"calendar.start: {start} is a {WEEKDAYS[start.weekday()]}; weekly periods "
                f"start on a {defs.calendar.week_start} (calendar.week_start)"
            )
        if tree.period == "month" and start.day != 1:
            problems.append(f"calendar.start: {start} is not the 1st; monthly periods start on it")
    return problems


def load_definitions(path: str | Path) -> TreeDefinitions:
    """Read a tree file with its metric definitions and validate both.

    Parameters
    ----------
    path : str or Path
        A tree file with ``source`` and ``metrics`` (inline, or ``metrics: FILE``).

    Returns
    -------
    TreeDefinitions

    Raises
    ------
    SpecError
        With every problem of the tree and of the definitions, each with its field path.
    """
    path = Path(path)
    content = _read_yaml(path)
    known = [*MetricTree.model_fields, *DEFINITION_KEYS]
    problems = [f"{key}: unknown key{hint(key, known)}" for key in content if str(key) not in known]
    tree = definitions = None
    try:
        tree = MetricTree.model_validate(
            {k: v for k, v in tree_part(content).items() if k in MetricTree.model_fields}
        )
    except ValidationError as err:
        problems += _problems(err)
    found, base, file_problems = _read_definitions(path, content)
    problems += file_problems
    if "source" not in found and "metrics" not in found:
        problems.append(
            "source: required: a tree file built from events names its event log under "
            "`source` and defines its metrics under `metrics`"
        )
    else:
        try:
            definitions = Definitions.model_validate(found)
        except ValidationError as err:
            problems += _definition_problems(err)
    if tree is not None and definitions is not None:
        problems += _against_tree(tree, definitions)
    if problems:
        raise SpecError(str(path), problems)
    return TreeDefinitions(tree=tree, definitions=definitions, path=path, base=base)
