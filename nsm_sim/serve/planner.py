"""What the planning page shows and does: the fit loaded once, scenarios edited, results.

A :class:`Planner` holds a fit's posterior draws, starting population and drivers summary
(read once from the bundle, :class:`~nsm_sim.serve.fit_model.FitModel`) and one or more
scenario files (:class:`ScenarioDocument`). Each edit is checked as the CLI checks a file,
then the scenario is simulated on the stored draws by :func:`nsm_sim.simulate.simulate` and
prioritised by :func:`nsm_sim.prioritise.prioritise`, the functions behind
``nsm-sim prioritise``; the tables and the fan chart's frame are those of the report
(:mod:`nsm_sim.output.tables`). Everything the page shows comes out of these calls as
JSON-ready data.

An initiative switched off on the page is left out of the simulation (and out of the
others' ``excludes``); it stays in the file, since the scenario file has no switch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nsm_sim.errors import InputError, SpecError
from nsm_sim.output import tables
from nsm_sim.output.tree_diagram import current_levels, tree_owners, tree_svg
from nsm_sim.serialise import to_jsonable
from nsm_sim.serve import charts
from nsm_sim.serve.document import LIFT_FIELDS, ScenarioDocument
from nsm_sim.serve.fit_model import FitModel
from nsm_sim.spec import Scenario

#: Simulations per edit on the page (see benchmarks/bench_serve.py for the latency).
PAGE_SIMULATIONS = 500


def _text(value: Any) -> Any:
    return None if value is None else str(value) if not isinstance(value, int | float) else value


def _lift_words(lift: Any) -> str:
    if isinstance(lift, Mapping):
        if "experiment" in lift:
            return "from an A/B result"
        kind = lift.get("distribution", "interval")
        return f"{kind}: " + ", ".join(f"{k} {v}" for k, v in lift.items() if k != "distribution")
    return str(lift)


class Planner:
    """The state of the planning page: the fit, the scenarios, their edits and results.

    Parameters
    ----------
    documents : sequence of ScenarioDocument
        The scenarios (the first is shown first); all on the fit's tree.
    model : FitModel
        The fit.
    simulations : int, default :data:`PAGE_SIMULATIONS`
        Simulations per edit.
    seed : int, default 0
    owners : mapping of str to str, optional
        Owner per metric (:func:`nsm_sim.output.tree_diagram.tree_owners`).
    """

    def __init__(
        self,
        documents: Sequence[ScenarioDocument],
        model: FitModel,
        *,
        simulations: int = PAGE_SIMULATIONS,
        seed: int = 0,
        owners: Mapping[str, str] | None = None,
    ):
        if not documents:
            raise ValueError("expected at least one scenario")
        self.documents = list(documents)
        self.model = model
        self.simulations = simulations
        self.seed = seed
        self.off: list[set[str]] = [set() for _ in self.documents]
        self._results: list[dict[str, Any] | None] = [None for _ in self.documents]
        self._charts: dict[str, Any] | None = None
        self.tree_svg = tree_svg(
            model.tree,
            model.drivers,
            levels=current_levels(model.population, model.tree),
            owners=owners,
        )

    @classmethod
    def open(
        cls,
        scenario_files: Sequence[str | Path],
        fit_dir: str | Path,
        *,
        simulations: int = PAGE_SIMULATIONS,
        seed: int = 0,
    ) -> Planner:
        """Read the scenario files and the fit bundle (once), as ``nsm-sim prioritise`` does.

        Parameters
        ----------
        scenario_files : sequence of path
        fit_dir : path
        simulations : int, default :data:`PAGE_SIMULATIONS`
        seed : int, default 0

        Returns
        -------
        Planner

        Raises
        ------
        InputError
            A scenario does not validate, or the bundle is missing, damaged or fitted on
            another tree.
        """
        from nsm_sim import limits

        documents = [ScenarioDocument(path) for path in scenario_files]
        tree = documents[0].scenario.tree
        model = FitModel.from_bundle(fit_dir, tree)
        for doc in documents[1:]:
            if doc.scenario.tree.fingerprint() != tree.fingerprint():
                from nsm_sim.models import inference

                inference.load_bundle(fit_dir, tree=doc.scenario.tree)  # refused, with why
        cells = len(model.population.frame)
        for doc in documents:
            scenario = doc.scenario
            limits.check_simulation(
                simulations, scenario.horizon, len(scenario.initiatives), cells, len(documents)
            )
        tree_file = Path(scenario_files[0]).parent / documents[0].scenario.model
        return cls(
            documents, model, simulations=simulations, seed=seed, owners=tree_owners(tree_file)
        )

    # ----------------------------------------------------------------------- the table

    def _index(self, index: int) -> int:
        if not 0 <= index < len(self.documents):
            raise SpecError("page", [f"scenario: no scenario number {index}"])
        return index

    def table(self, index: int = 0) -> dict[str, Any]:
        """Return the scenario's editable fields: capacity and one row per initiative.

        Parameters
        ----------
        index : int, default 0
            The scenario.

        Returns
        -------
        dict
            ``name``, ``path``, ``capacity``, ``horizon`` and ``initiatives``: per initiative
            ``name``, ``target``, ``lift_low`` and ``lift_high`` (as written in the file;
            ``None`` when the lift is not given by its ends), ``lift`` (in words),
            ``confidence``, ``reach``, ``segments``, ``start``, ``ramp``, ``effort``,
            ``on``.
        """
        doc = self.documents[self._index(index)]
        scenario = doc.scenario
        rows = []
        for item, ini in zip(doc.data["initiatives"], scenario.initiatives, strict=True):
            lift = item.get("lift")
            ends = {
                field: _text(lift.get(key)) if isinstance(lift, Mapping) else None
                for field, key in LIFT_FIELDS.items()
            }
            rows.append(
                {
                    "name": ini.name,
                    "target": ini.target,
                    **ends,
                    "lift": _lift_words(lift),
                    "confidence": ini.confidence,
                    "reach": ini.reach,
                    "segments": ini.segments,
                    "start": ini.start,
                    "ramp": ini.ramp,
                    "effort": ini.effort,
                    "requires": ini.requires,
                    "excludes": ini.excludes,
                    "on": ini.name not in self.off[index],
                }
            )
        return {
            "index": index,
            "name": scenario.name,
            "path": str(doc.path),
            "capacity": scenario.capacity,
            "horizon": scenario.horizon,
            "initiatives": rows,
        }

    # ----------------------------------------------------------------------- results

    def simulated_scenario(self, index: int = 0) -> Scenario:
        """Return the scenario as simulated: the initiatives switched off left out.

        Parameters
        ----------
        index : int, default 0

        Returns
        -------
        Scenario
        """
        scenario = self.documents[self._index(index)].scenario
        off = self.off[index]
        if not off:
            return scenario
        kept = [
            ini.model_copy(update={"excludes": [n for n in ini.excludes if n not in off]})
            for ini in scenario.initiatives
            if ini.name not in off
        ]
        return scenario.model_copy(update={"initiatives": kept})

    def results(self, index: int = 0) -> dict[str, Any]:
        """Simulate and prioritise the scenario (cached until the next edit).

        Parameters
        ----------
        index : int, default 0

        Returns
        -------
        dict
            JSON-ready: ``ranking`` (the report's ranking table), ``portfolio``
            (:meth:`~nsm_sim.prioritise.Portfolio.to_dict`), ``evpi``, ``initiatives``
            (each initiative alone, the report's table), ``quantity``, ``note``,
            ``simulations``; ``forecast`` and ``target``
            (:meth:`nsm_sim.forecast.Forecast.to_dict` with the chosen portfolio, as
            ``nsm-sim simulate --json`` gives them; ``None`` without the bundle's history or
            a target); ``charts`` (:func:`nsm_sim.serve.charts.chart_data`).
        """
        index = self._index(index)
        if self._results[index] is None:
            self._results[index] = self._compute(index)
        return self._results[index]

    def _compute(self, index: int) -> dict[str, Any]:
        from nsm_sim import prioritise, simulate

        scenario = self.simulated_scenario(index)
        model = self.model
        result = simulate.simulate(
            scenario,
            model.posterior,
            model.population,
            simulations=self.simulations,
            seed=self.seed,
        )
        plan = prioritise.prioritise(result)
        fan = tables.fan_frame(result, plan, origin=model.origin)
        summary = {"forecast": None, "target": None}
        if model.forecast_model is not None:
            from nsm_sim import forecast

            projected = forecast.forecast(
                scenario,
                model.posterior,
                model.population,
                model.forecast_model,
                model.history,
                portfolio=plan.portfolio.selected,
                each=False,
                simulations=self.simulations,
                seed=self.seed,
            )
            summary = projected.to_dict()
        return to_jsonable(
            {
                "scenario": scenario.name,
                "simulations": self.simulations,
                "quantity": plan.quantity,
                "note": plan.note,
                "ranking": tables.ranking_view(plan, currency=scenario.tree.currency),
                "portfolio": plan.portfolio.to_dict(),
                "evpi": plan.evpi,
                "initiatives": tables.simulation_table(result),
                "forecast": summary.get("forecast"),
                "target": summary.get("target"),
                "charts": charts.chart_data(
                    fan, plan.evpi, summary.get("forecast"), summary.get("target")
                ),
            }
        )

    def comparison(self) -> dict[str, Any] | None:
        """Compare the first two scenarios' funded portfolios (``nsm-sim compare --funded``).

        Returns
        -------
        dict or None
            The report's comparison table (JSON-ready) with the scenarios' names and
            portfolios; ``None`` with fewer than two scenarios.
        """
        if len(self.documents) < 2:
            return None
        from nsm_sim import prioritise, simulate

        model = self.model
        results = [
            simulate.simulate(
                self.simulated_scenario(i),
                model.posterior,
                model.population,
                simulations=self.simulations,
                seed=self.seed,
            )
            for i in (0, 1)
        ]
        comparison = prioritise.compare(*results, funded=True)
        return to_jsonable(
            {
                **comparison.to_dict(),
                "table": tables.comparison_view(comparison),
            }
        )

    def chart_items(self) -> dict[str, Any]:
        """Return the charts, built once (:func:`nsm_sim.serve.charts.chart_items`)."""
        if self._charts is None:
            unit = self.results(0)["quantity"]
            self._charts = charts.chart_items(
                self.model.tree.north_star, unit, dated=self.model.origin is not None
            )
        return self._charts

    def state(self, index: int = 0) -> dict[str, Any]:
        """Return everything the page shows for one scenario.

        Parameters
        ----------
        index : int, default 0

        Returns
        -------
        dict
            ``scenarios`` (names and paths), ``tree`` (the SVG), ``warnings`` (the fit's),
            ``charts`` (:meth:`chart_items`), ``table`` (:meth:`table`) and ``results``
            (:meth:`results`).
        """
        return {
            "scenarios": [
                {"index": i, "name": d.scenario.name, "path": str(d.path)}
                for i, d in enumerate(self.documents)
            ],
            "tree": self.tree_svg,
            "warnings": self.model.warnings,
            "bokeh": charts.bokeh_version(),
            "charts": self.chart_items(),
            "table": self.table(index),
            "results": self.results(index),
        }

    # ----------------------------------------------------------------------- edits

    def edit(self, index: int, edit: Mapping[str, Any]) -> dict[str, Any]:
        """Apply one edit, checked as the CLI checks the file; re-simulate.

        Parameters
        ----------
        index : int
            The scenario.
        edit : mapping
            As :meth:`ScenarioDocument.edited`, or ``{"initiative": NAME, "field": "on",
            "value": bool}`` to switch an initiative on or off.

        Returns
        -------
        dict
            ``table`` and ``results``, as :meth:`state`.

        Raises
        ------
        InputError
            The edit is refused (the CLI's messages); nothing changed.
        """
        index = self._index(index)
        doc = self.documents[index]
        if edit.get("field") == "on":
            self._switch(index, str(edit.get("initiative")), bool(edit.get("value")))
        else:
            doc.apply(edit)
            names = {ini.name for ini in doc.scenario.initiatives}
            self.off[index] &= names
        self._results[index] = None
        return {"table": self.table(index), "results": self.results(index)}

    def _switch(self, index: int, name: str, on: bool) -> None:
        doc = self.documents[index]
        scenario = doc.scenario
        names = [ini.name for ini in scenario.initiatives]
        if name not in names:
            raise SpecError(str(doc.path), [f"initiatives: no initiative named {name!r}"])
        off = set(self.off[index])
        if on:
            off.discard(name)
        else:
            off.add(name)
        kept = [ini for ini in scenario.initiatives if ini.name not in off]
        if not kept:
            raise InputError("page", ["expected at least one initiative switched on"])
        needs = [(ini.name, r) for ini in kept for r in ini.requires if r in off]
        if needs:
            a, b = needs[0]
            raise InputError("page", [f"{a!r} requires {b!r}: switch {a!r} off too, or {b!r} on"])
        self.off[index] = off

    def save(self, index: int = 0) -> Path:
        """Write the scenario back to its file, comments kept.

        Parameters
        ----------
        index : int, default 0

        Returns
        -------
        Path
        """
        return self.documents[self._index(index)].save()


__all__ = ["PAGE_SIMULATIONS", "Planner"]
