"""Reading the files: YAML (safe), schema validation, every problem with its field path.

A file is read as bytes and refused with a message naming it when it is missing, a folder,
unreadable, larger than :data:`MAX_FILE_BYTES`, not UTF-8 (or UTF-16/32 with a byte-order
mark), binary, not YAML, nested too deeply, or when a mapping repeats a key. YAML is read
with the safe loader (no tag can name a Python object; aliases are shared, never expanded).
Content that no schema expects is refused before validation, each problem with its field
path: numbers that are not finite (``.nan``, ``.inf``), text that is not valid Unicode, and
in a tree's ``inputs`` a name that is not a plain value.
"""

from __future__ import annotations

import codecs
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

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
from nsm_sim.spec.scenario import Initiative, Scenario, scenario_problems
from nsm_sim.spec.tree import MetricTree

#: Largest tree or scenario file read (they are a few kilobytes).
MAX_FILE_BYTES = 2 * 2**20

#: Problems listed per file; the rest are counted.
MAX_PROBLEMS = 40

_BRANCHES = {"interval", "experiment", "fixed", "normal", "lognormal", "beta", "uniform", "pert"}

#: libyaml's parser where PyYAML was built with it (about ten times the pure-Python one); the
#: constructor, and so what a file reads as, is the safe one either way.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


# --------------------------------------------------------------------------- reading


class _StrictLoader(_SafeLoader):
    """The safe loader, refusing a mapping that repeats a key (YAML keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    "found a key that is a list or a mapping; expected a name",
                    key_node.start_mark,
                ) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"the key {key!r} appears twice in one mapping (first on line "
                    f"{seen[key] + 1}); expected each key once",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _decode(path: Path, raw: bytes) -> str:
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return raw.decode(encoding)
            except UnicodeDecodeError as exc:
                raise SpecError(
                    str(path), [f"not valid {encoding.upper()} text ({exc.reason})"]
                ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(
            str(path),
            [
                f"not UTF-8 text: byte 0x{raw[exc.start]:02x} on line {line} (another encoding, "
                "or a binary file); expected a YAML text file saved as UTF-8"
            ],
        ) from None
    if "\x00" in text:
        raise SpecError(
            str(path), ["binary content (a NUL byte); expected a YAML text file saved as UTF-8"]
        )
    return text


def _where(base: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else str(key)


def _walk(content: Any, root: str) -> Iterator[tuple[str, Any]]:
    """Yield ``(where, value)`` for every value and mapping key in document order.

    Each list or mapping is entered once, so a YAML alias that refers back to its own
    parent ends the walk there instead of looping.
    """
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [(root, content)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict | list):
            if id(value) in seen:
                continue
            seen.add(id(value))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in reversed(list(items)):
                if isinstance(key, str):
                    stack.append((where, key))
                stack.append((_where(where, key), item))
        yield where, value


def _unexpected(content: Any) -> list[str]:
    """Values no schema expects: non-finite numbers and text that is not valid Unicode."""
    problems: list[str] = []
    for where, value in _walk(content, ""):
        if len(problems) > MAX_PROBLEMS:
            break
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{where or '(top level)'}: {value} is not a finite number")
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                problems.append(
                    f"{where or '(top level)'}: text with an invalid character (a lone "
                    "surrogate escape); expected plain text"
                )
    return list(dict.fromkeys(problems))


def _input_names(inputs: Any) -> list[str]:
    """Name the entries of a tree's ``inputs`` that are lists or mappings, not names."""
    problems: list[str] = []
    for where, value in _walk(inputs, "inputs"):
        if len(problems) > MAX_PROBLEMS:
            break
        if isinstance(value, list):
            problems.extend(
                f"{where}[{i}]: expected a metric name, got a "
                f"{'list' if isinstance(item, list) else 'mapping'} (a list of names lists "
                "leaves; a mapping of name to inputs nests them)"
                for i, item in enumerate(value)
                if isinstance(item, dict | list)
            )
    return problems


#: Deepest nesting of lists and mappings a tree or scenario file may have.
MAX_DEPTH = 50


def _check_depth(text: str, path: Path) -> None:
    """Refuse a file nested deeper than :data:`MAX_DEPTH` before anything recursive reads it.

    YAML's event stream is read iteratively, so the depth is known whatever the interpreter's
    recursion limit (which libraries loaded earlier may have raised). libyaml's scanner reads
    ahead and has a nesting limit of its own, which it may meet first.
    """
    too_deep = SpecError(
        str(path), [f"nested too deeply (over {MAX_DEPTH} levels); expected a YAML file"]
    )
    depth = 0
    try:
        for event in yaml.parse(text, Loader=_SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise too_deep
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        if "maximum nesting depth" in str(exc.problem):
            raise too_deep from None
        raise


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a tree or scenario file into a mapping, refusing what no schema expects.

    Parameters
    ----------
    path : str or Path
        A YAML file.

    Returns
    -------
    dict
        Its top-level mapping.

    Raises
    ------
    SpecError
        Naming the file and what was expected (see the module docstring).
    """
    path = Path(path)
    if not path.exists():
        raise SpecError(str(path), ["file not found"])
    if path.is_dir():
        raise SpecError(str(path), ["is a folder; expected a YAML file"])
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SpecError(str(path), [f"cannot be read: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise SpecError(
            str(path),
            [f"larger than {MAX_FILE_BYTES // 2**20} MB; expected a YAML file of a few kilobytes"],
        )
    text = _decode(path, raw)
    try:
        _check_depth(text, path)
        content = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        context = f" ({exc.context})" if exc.context else ""
        raise SpecError(str(path), [f"not valid YAML{where}: {exc.problem}{context}"]) from None
    except (yaml.YAMLError, ValueError, OverflowError, TypeError) as exc:
        raise SpecError(str(path), [f"not valid YAML: {exc}"]) from None
    except RecursionError:
        raise SpecError(str(path), ["nested too deeply; expected a YAML file"]) from None
    if not isinstance(content, dict):
        raise SpecError(str(path), ["expected a mapping of keys at the top level"])
    problems = _unexpected(content)
    if "inputs" in content:
        problems += _input_names(content["inputs"])
    if problems:
        raise SpecError(str(path), _cap(problems))
    return content


# --------------------------------------------------------------------------- validation


#: The name the event definitions' loader reads files by.
_read_yaml = read_yaml


def _all_field_names() -> set[str]:
    models = [MetricTree, IntervalLift, NormalLift, LogNormalLift, BetaLift, UniformLift]
    models += [PertLift, Arm, Experiment, ExperimentLift, FixedLift, Initiative, Scenario]
    return {name for m in models for name in m.model_fields}


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


def _cap(problems: list[str]) -> list[str]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    return [*problems[:MAX_PROBLEMS], f"... and {len(problems) - MAX_PROBLEMS} more"]


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
        elif e["type"] == "finite_number":
            out.append(f"{where}: {e['input']} is not a finite number")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            for line in msg.split("\n"):
                # a model-level check already names the field path in its message
                out.append(line if where == "(top level)" else f"{where}: {line}")
    # a union reports each branch that failed; keep each message once
    return _cap(list(dict.fromkeys(out)))


def _validate_tree(content: dict[str, Any], source: str) -> MetricTree:
    try:
        tree = MetricTree.model_validate(content)
    except ValidationError as err:
        raise SpecError(source, _problems(err)) from None
    except (TypeError, AttributeError, KeyError, RecursionError) as exc:
        raise SpecError(
            source, [f"not the structure of a metric tree ({exc.__class__.__name__}: {exc})"]
        ) from None
    problems = [
        f"experiments[{i}].input_lift: {e.input_lift} is not a finite number"
        for i, e in enumerate(tree.experiments)
        if not math.isfinite(e.input_lift)
    ]
    if problems:
        raise SpecError(source, problems)
    return tree


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
    return _validate_tree(read_yaml(path), str(path))


def _scenario_tree(path: Path) -> MetricTree:
    """Read the tree a scenario names; a tree file with metric definitions gives its tree part.

    The definitions (how each metric is built from events) are checked where the panel is
    built, not here: a scenario needs the tree only.
    """
    from nsm_sim.events.keys import DEFINITION_KEYS, tree_part

    content = read_yaml(path)
    if any(key in content for key in DEFINITION_KEYS):
        content = tree_part(content)
    return _validate_tree(content, str(path))


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
        With every problem of the file (or of the tree it names), including those of
        :func:`~nsm_sim.spec.scenario.scenario_problems`.
    """
    path = Path(path)
    return scenario_from_content(read_yaml(path), path)


def scenario_from_content(
    content: dict[str, Any], path: str | Path, tree: MetricTree | None = None
) -> Scenario:
    """Validate a scenario file's content as :func:`load_scenario` does, with its messages.

    For content edited in memory (the planning page) before it is written to ``path``.

    Parameters
    ----------
    content : dict
        The file's top-level mapping.
    path : str or Path
        The file: named in the messages; its ``model`` is resolved from its folder.
    tree : MetricTree, optional
        The tree its ``model`` names, when already read (else it is read).

    Returns
    -------
    Scenario

    Raises
    ------
    SpecError
        As :func:`load_scenario`.
    """
    path = Path(path)
    problems = _unexpected(content)
    if problems:
        raise SpecError(str(path), _cap(problems))
    if tree is None and isinstance(content.get("model"), str):
        tree_path = path.parent / content["model"]
        if not tree_path.exists():
            raise SpecError(str(path), [f"model: metric-tree file {str(tree_path)!r} not found"])
        if tree_path.is_dir():
            raise SpecError(
                str(path), [f"model: {str(tree_path)!r} is a folder; expected a metric-tree file"]
            )
        tree = _scenario_tree(tree_path)
    if "tree" in content:
        raise SpecError(str(path), ["tree: unknown key (the tree is named by `model`)"])
    try:
        scenario = Scenario.model_validate({**content, "tree": tree})
    except ValidationError as err:
        raise SpecError(str(path), _problems(err)) from None
    except (TypeError, AttributeError, KeyError, RecursionError) as exc:
        raise SpecError(
            str(path), [f"not the structure of a scenario ({exc.__class__.__name__}: {exc})"]
        ) from None
    problems = scenario_problems(scenario)
    if problems:
        raise SpecError(str(path), _cap(problems))
    return scenario


def dump_tree(tree: MetricTree, path: str | Path) -> None:
    """Write a metric tree as YAML that :func:`load_tree` reads back.

    Parameters
    ----------
    tree : MetricTree
    path : str or Path
    """
    data = tree.model_dump(mode="json")
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


__all__ = [
    "MAX_FILE_BYTES",
    "dump_tree",
    "load_scenario",
    "load_tree",
    "read_yaml",
    "scenario_from_content",
]
