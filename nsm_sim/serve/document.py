"""A scenario file as the page edits it: read, changed and written back with its comments.

The file is read with ruamel.yaml's round-trip loader, which keeps comments, key order,
flow style (``lift: {low: 2%, high: 10%}``) and the spelling of values (``2%`` stays
``2%``), so saving a file after an edit changes only the values edited. Every edit is
checked before it is kept: the edited content goes through the checks and messages of
:func:`nsm_sim.spec.load_scenario` (:func:`~nsm_sim.spec.load.scenario_from_content`), as
the CLI reads the file, so the page refuses what the CLI refuses, with the same messages,
and nothing is written.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from nsm_sim.errors import SpecError
from nsm_sim.files import write_file
from nsm_sim.spec import Scenario, load_scenario
from nsm_sim.spec.load import scenario_from_content

#: Fields of an initiative the page edits, besides the lift's ends.
INITIATIVE_FIELDS = ("confidence", "reach", "start", "ramp", "effort")

#: The lift's ends the page edits, when the lift is given by them.
LIFT_FIELDS = {"lift_low": "low", "lift_high": "high"}


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _number(value: Any) -> Any:
    """Read a number typed on the page; leave anything else for the schema to judge."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            return text
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text
    return value


def _set(mapping: Any, key: str, value: Any) -> None:
    if value is None or value == "":
        mapping.pop(key, None)
    else:
        mapping[key] = value


class ScenarioDocument:
    """A scenario file's text as a round-trip YAML document, with the scenario it validates to.

    Parameters
    ----------
    path : str or Path
        The scenario file.

    Attributes
    ----------
    path : Path
    data : ruamel.yaml.comments.CommentedMap
        The document.
    scenario : Scenario
        What it validates to.

    Raises
    ------
    SpecError
        When the file does not validate (as ``nsm-sim simulate`` would say).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.scenario = load_scenario(self.path)
        self.data = _yaml().load(self.path.read_text(encoding="utf-8"))

    def text(self, data: Any = None) -> str:
        """Return the document (or ``data``) as YAML text."""
        buffer = io.StringIO()
        _yaml().dump(self.data if data is None else data, buffer)
        return buffer.getvalue()

    def check(self, data: Any) -> Scenario:
        """Validate an edited document as the CLI would read it from this file.

        Parameters
        ----------
        data : CommentedMap
            An edited copy of :attr:`data`.

        Returns
        -------
        Scenario

        Raises
        ------
        SpecError
            Naming this file, with the CLI's messages.
        """
        return scenario_from_content(data, self.path, tree=self.scenario.tree)

    def _target(self, edit: Mapping[str, Any]) -> tuple[Any, Any]:
        """Return the mapping and key an edit changes (see :meth:`apply`)."""
        field = edit.get("field")
        data = self.data
        if "initiative" not in edit:
            if field != "capacity":
                raise SpecError(str(self.path), [f"{field}: not a field the page edits"])
            return data, "capacity"
        names = [str(item.get("name")) for item in data["initiatives"]]
        name = str(edit["initiative"])
        if name not in names:
            raise SpecError(str(self.path), [f"initiatives: no initiative named {name!r}"])
        k = names.index(name)
        item = data["initiatives"][k]
        if field in LIFT_FIELDS:
            lift = item.get("lift")
            key = LIFT_FIELDS[field]
            if not isinstance(lift, Mapping) or key not in lift:
                raise SpecError(
                    str(self.path),
                    [f"initiatives[{k}].lift: has no {key} to edit on the page; edit the file"],
                )
            return lift, key
        if field in INITIATIVE_FIELDS:
            return item, field
        raise SpecError(str(self.path), [f"initiatives[{k}].{field}: not a field the page edits"])

    def edited(self, edit: Mapping[str, Any]) -> Any:
        """Return a copy of the document with one edit applied (not checked).

        Parameters
        ----------
        edit : mapping
            See :meth:`apply`.

        Returns
        -------
        CommentedMap
        """
        before = self.data
        self.data = copy.deepcopy(before)
        try:
            mapping, key = self._target(edit)
            _set(mapping, key, _number(edit.get("value")))
            return self.data
        finally:
            self.data = before

    def apply(self, edit: Mapping[str, Any]) -> Scenario:
        """Apply one edit if the result validates; else leave the document as it was.

        Parameters
        ----------
        edit : mapping
            ``{"field": "capacity", "value": V}`` or ``{"initiative": NAME, "field": F,
            "value": V}`` with ``F`` one of :data:`INITIATIVE_FIELDS`, ``lift_low`` or
            ``lift_high``. A value may be text as typed (``"5%"``, ``"0.7"``); an empty
            ``reach`` removes it (every account, or the initiative's segments).

        Returns
        -------
        Scenario
            The edited scenario.

        Raises
        ------
        SpecError
            With the CLI's messages; the document is unchanged.
        """
        mapping, key = self._target(edit)
        missing = object()
        old = mapping.get(key, missing)
        _set(mapping, key, _number(edit.get("value")))
        try:
            self.scenario = self.check(self.data)
        except BaseException:
            if old is missing:
                mapping.pop(key, None)
            else:
                mapping[key] = old
            raise
        return self.scenario

    def save(self) -> Path:
        """Write the document back to its file (whole or not at all).

        Returns
        -------
        Path
        """
        return write_file(self.path, self.text())


__all__ = ["INITIATIVE_FIELDS", "LIFT_FIELDS", "ScenarioDocument"]
