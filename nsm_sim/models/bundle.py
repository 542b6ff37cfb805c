"""The fit bundle: a fit saved to a folder and loaded back, refused against another tree.

A bundle holds ``posterior.nc`` (the InferenceData, with the data the diagnostics need),
``card.json`` (the tree, fingerprints of tree and data, versions, seed, sampler settings,
diagnostics), ``population.csv`` (the accounts alive at the end, for the projection) and
``manifest.json``, written last: the size and SHA-256 of each of the three, and of
``history.csv`` when the fit has one (what the forecast reads of the panel:
:mod:`nsm_sim.forecast.history`; a fit from a query engine's reduction has none). A bundle is
written whole or not at all (:func:`nsm_sim.files.write_files`), and :func:`load_bundle`
refuses one whose files do not match its manifest (files of two fits mixed, or changed
after the fit). A loaded fit says what its users must be told (:attr:`Fit.warnings`): trust
gates it failed, and what the check of its panel found doubtful.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import arviz as az
import pandas as pd

from nsm_sim import data as data_mod
from nsm_sim.errors import BundleError
from nsm_sim.files import dumps, write_files
from nsm_sim.spec import MetricTree, edge_label


@dataclass
class Fit:
    """A fitted drivers + retention model of one panel.

    Attributes
    ----------
    idata : arviz.InferenceData
        ``posterior`` (the variables of :mod:`nsm_sim.models.drivers` and
        :mod:`nsm_sim.models.retention`),
        ``sample_stats`` and ``constant_data`` (what the predictive checks need).
    tree : MetricTree
        The metric tree.
    panel : dict
        Summary of the panel (:func:`nsm_sim.data.describe`; from the card when loaded).
    card : dict
        What the fit is: tree and its fingerprint, data fingerprint, sizes, versions, seed,
        sampler settings, estimation, diagnostics summary, timings (JSON-serialisable).
    population : Population
        The accounts alive at the end of the panel, for the projection.
    diagnostics : pandas.DataFrame
        :func:`diagnose`'s table.
    history : pandas.DataFrame or None
        The forecast's history table (:func:`nsm_sim.forecast.panel_history`), when the fit
        was made from a panel.
    """

    idata: az.InferenceData
    tree: MetricTree
    panel: dict
    card: dict
    population: data_mod.Population
    diagnostics: pd.DataFrame = field(default_factory=pd.DataFrame)
    history: pd.DataFrame | None = None

    @property
    def failed_gates(self) -> list[str]:
        """The trust gates the fit failed (status FAIL), by name."""
        if "status" not in self.diagnostics:
            return []
        failed = self.diagnostics[self.diagnostics["status"] == "FAIL"]
        return [str(name) for name in failed["check"]]

    @property
    def warnings(self) -> list[str]:
        """What every use of the fit must say: failed trust gates, doubts about its panel."""
        out = []
        if self.failed_gates:
            out.append(
                f"the fit failed its trust gates ({', '.join(self.failed_gates)}): its "
                "elasticities and churn model, and everything projected from them, are not to "
                "be trusted; see the fit's diagnostics (diagnostics.csv in the report)"
            )
        out += [f"the fit's panel: {text}" for text in (self.panel or {}).get("warnings", [])]
        return out


#: Files of a fit bundle, apart from its manifest.
BUNDLE_FILES = ("posterior.nc", "card.json", "population.csv")

#: Optional file of a fit bundle: the forecast's history table.
HISTORY_FILE = "history.csv"

#: The bundle's manifest: size and SHA-256 of each of :data:`BUNDLE_FILES`, written last.
MANIFEST = "manifest.json"

#: Version of the manifest's layout.
MANIFEST_FORMAT = 1


def _digest(path: Path) -> dict[str, int | str]:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            sha.update(block)
    return {"bytes": path.stat().st_size, "sha256": sha.hexdigest()}


def _write_manifest(path: Path, history: bool = False) -> None:
    folder = path.parent
    names = [*BUNDLE_FILES, *([HISTORY_FILE] if history else [])]
    files = {name: _digest(folder / name) for name in names}
    path.write_text(dumps({"format": MANIFEST_FORMAT, "files": files}) + "\n", encoding="utf-8")


def _manifest_problems(folder: Path) -> list[str]:
    """Files of the bundle that do not match its manifest (or a manifest that is not one)."""
    redo = "fit again to write a whole bundle"
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        listed = manifest["files"]
        if not isinstance(listed, dict):
            raise TypeError("files is not a mapping")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{MANIFEST}: damaged ({exc.__class__.__name__}: {exc}); {redo}"]
    problems = []
    optional = [HISTORY_FILE] if HISTORY_FILE in listed else []
    for name in (*BUNDLE_FILES, *optional):
        if not (folder / name).is_file() or listed.get(name) != _digest(folder / name):
            problems.append(
                f"{name}: does not match {MANIFEST} (changed after the fit, or taken from "
                f"another fit); {redo}"
            )
    return problems


def save_bundle(fit: Fit, out_dir: str | os.PathLike) -> Path:
    """Write a fit bundle: ``posterior.nc``, ``card.json``, ``population.csv``, ``manifest.json``.

    Written by :func:`nsm_sim.files.write_files`: the whole bundle, its manifest last, is
    built beside ``out_dir`` and put in place in one step, so ``out_dir`` holds the old
    bundle or the new one, never a mix; other files in the folder are kept. A failure
    leaves ``out_dir`` as it was.

    Parameters
    ----------
    fit : Fit
        The fit.
    out_dir : path
        The bundle folder.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    out = Path(out_dir)
    write_files(
        out,
        {
            "posterior.nc": lambda path: fit.idata.to_netcdf(str(path)),
            "population.csv": fit.population.frame,
            "card.json": dumps(fit.card),
            **({HISTORY_FILE: fit.history} if fit.history is not None else {}),
            MANIFEST: lambda path: _write_manifest(path, history=fit.history is not None),
        },
    )
    return out


def tree_differences(a: MetricTree, b: MetricTree) -> list[str]:
    """Describe how two metric trees differ (nodes, edges, candidates, settings).

    Parameters
    ----------
    a, b : MetricTree
        The tree of the bundle and the tree asked for.

    Returns
    -------
    list of str
        One line per difference; empty when the trees are the same.
    """
    out = []
    for what, ea, eb in (
        ("nodes", set(a.nodes), set(b.nodes)),
        ("candidates", set(a.candidates), set(b.candidates)),
    ):
        if ea - eb:
            out.append(f"{what} only in the fit: {sorted(ea - eb)}")
        if eb - ea:
            out.append(f"{what} only in the tree: {sorted(eb - ea)}")
    ea = {edge_label(p, c) for p, c in a.edges}
    eb = {edge_label(p, c) for p, c in b.edges}
    if set(a.nodes) == set(b.nodes) and ea != eb:
        out.append(f"edges only in the fit: {sorted(ea - eb)}; only in the tree: {sorted(eb - ea)}")
    for name in ("north_star", "segment", "period", "value", "retention_horizon", "name"):
        va, vb = getattr(a, name), getattr(b, name)
        if va != vb:
            out.append(f"{name}: {va!r} in the fit, {vb!r} in the tree")
    if not out and a.fingerprint() != b.fingerprint():
        out.append("the trees differ in their order of inputs or candidates")
    return out


def load_bundle(directory: str | os.PathLike, tree: MetricTree | None = None) -> Fit:
    """Load a fit bundle written by :func:`save_bundle`.

    Parameters
    ----------
    directory : path
        The bundle folder.
    tree : MetricTree, optional
        The tree the bundle must have been fitted on (e.g. a scenario's); refused otherwise.

    Returns
    -------
    Fit

    Raises
    ------
    BundleError
        A file is missing, damaged or does not match the manifest, or the bundle's tree
        differs from ``tree`` (the message names the nodes that differ).
    """
    d = Path(directory)
    source = str(d)
    if not d.is_dir():
        raise BundleError(source, ["not a folder (expected a fit bundle written by `nsm-sim fit`)"])
    missing = [n for n in (*BUNDLE_FILES, MANIFEST) if not (d / n).is_file()]
    if missing:
        raise BundleError(
            source,
            [f"{n}: missing" for n in missing]
            + [
                "expected a whole fit bundle written by `nsm-sim fit` (this version writes a "
                f"{MANIFEST}); fit again"
            ],
        )
    problems = _manifest_problems(d)
    if problems:
        raise BundleError(source, problems)
    try:
        card = json.loads((d / "card.json").read_text(encoding="utf-8"))
        bundle_tree = MetricTree.model_validate(card["tree"])
    except Exception as exc:  # noqa: BLE001 - any damage is reported the same way
        raise BundleError(
            source, [f"card.json: damaged ({exc.__class__.__name__}: {exc})"]
        ) from exc
    if card.get("tree_fingerprint") != bundle_tree.fingerprint():
        raise BundleError(source, ["card.json: the tree fingerprint does not match its tree"])
    if tree is not None and tree.fingerprint() != bundle_tree.fingerprint():
        diffs = tree_differences(bundle_tree, tree)
        raise BundleError(
            source,
            [f"fitted on a different metric tree ({bundle_tree.name!r}): {d_}" for d_ in diffs],
        )
    try:
        idata = az.from_netcdf(str(d / "posterior.nc"))
        for group in idata.groups():
            idata[group].load()
        post = idata.posterior
        need = ["elasticity", "churn_intercept", "churn_slope", "tenure_slope"]
        absent = [v for v in need if v not in post]
        if absent:
            raise ValueError(f"posterior lacks {absent}")
    except Exception as exc:  # noqa: BLE001
        raise BundleError(
            source, [f"posterior.nc: damaged ({exc.__class__.__name__}: {exc})"]
        ) from exc
    try:
        frame = pd.read_csv(d / "population.csv")
        need_cols = {"segment", "segment_idx", "accounts", "north_star", "tenure", "value"}
        if not need_cols <= set(frame.columns):
            raise ValueError(f"columns {sorted(need_cols - set(frame.columns))} missing")
        frame["segment"] = frame["segment"].astype(str)
    except Exception as exc:  # noqa: BLE001
        raise BundleError(
            source, [f"population.csv: damaged ({exc.__class__.__name__}: {exc})"]
        ) from exc
    population = data_mod.Population(segments=tuple(card.get("segments", ())), frame=frame)
    history = None
    listed = json.loads((d / MANIFEST).read_text(encoding="utf-8"))["files"]
    if HISTORY_FILE in listed:  # a stale file the manifest does not name is not this fit's
        try:
            history = pd.read_csv(d / HISTORY_FILE, parse_dates=["period"])
            history["segment"] = history["segment"].astype(str)
        except Exception as exc:  # noqa: BLE001
            raise BundleError(
                source, [f"{HISTORY_FILE}: damaged ({exc.__class__.__name__}: {exc})"]
            ) from exc
    checks = pd.DataFrame(
        card.get("diagnostics", {}).get("checks", []),
        columns=["check", "value", "threshold", "status", "parameter", "detail"],
    )
    return Fit(
        idata=idata,
        tree=bundle_tree,
        panel=card.get("panel", {}),
        card=card,
        population=population,
        diagnostics=checks,
        history=history,
    )
