"""Hostile inputs for the command line: a fit bundle without sampling, and fuzzing strategies.

Shared by ``tests/test_hostile.py`` (a bounded number of examples) and
``benchmarks/fuzz_cli.py`` (thousands). Every strategy draws one run of ``nsm-sim``: its
arguments and the files they name, written into a folder of its own. :func:`run` invokes
the application in-process and :func:`contract_broken` says whether the run broke the
exit-code contract (a traceback, or an exit code other than 0 or 2).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import arviz as az
import pandas as pd
from hypothesis import strategies as st
from typer.testing import CliRunner

from nsm_sim.cli import app
from nsm_sim.files import to_jsonable
from nsm_sim.models.bundle import Fit, save_bundle
from nsm_sim.spec import edge_label, load_tree
from nsm_sim.synth import generate_world
from nsm_sim.testing import demo_population, demo_posterior

HOSTILE = Path(__file__).parent / "data" / "hostile"
TREE = HOSTILE / "tree.yaml"

#: Values that no field expects, as YAML text.
HOSTILE_YAML = [
    ".nan",
    ".inf",
    "-.inf",
    "1.0e+999",
    "1e999",
    "-1",
    "0",
    "1.0e+308",
    "-150%",
    "inf%",
    "nan%",
    "1e9%",
    "'[/bold]'",
    "'[red]x'",
    "'$x^$'",
    "'=1+1'",
    "'@SUM(A1)'",
    "'-cmd'",
    "~",
    "[]",
    "{}",
    "[[a, b]]",
    "{a: [[b]]}",
    "[*a]",
    "!!python/object/apply:os.system ['true']",
    "*undefined",
    '"\\ud800"',
    '"\\x00"',
    "2025-02-30",
    "yes",
    "'" + "x" * 3000 + "'",
    "[" * 50 + "]" * 50,
    "{low: .nan, high: .nan}",
    "{distribution: lognormal, median: 0.05, sigma: 1000}",
    "{distribution: normal, mean: 0, sd: 5}",
    "{distribution: beta, alpha: 0, beta: 1}",
    "{distribution: pert, low: 0.1, mode: 0.1, high: 0.1}",
    "{experiment: {control: {n: 1, conversions: 0}, treatment: {n: 1, conversions: 1}}}",
]

#: Values of a panel's cells that no column expects.
HOSTILE_CELLS = [
    "",
    "nan",
    "inf",
    "-inf",
    "-1",
    "1e308",
    "1e16",
    "abc",
    "[/bold]",
    "$x^$",
    "=1+1",
    "9999-12-27",
    "1900-01-01",
    "2025-01-07",
    "2025-13-45",
    "next week",
    "0",
    "1",
    "2",
    "1.5",
    "\u00e9",
]

#: Values of integer and float options, as typed.
HOSTILE_NUMBERS = [
    "-1",
    "0",
    "1",
    "49",
    "99",
    "100",
    "150",
    "1e9",
    "1000000000",
    "100000000",
    "4294967295",
    "4294967296",
    "99999999999999999999",
    "nan",
    "inf",
    "-0.5",
    "0.5",
    "1.5",
    "abc",
    "[/bold]",
    "",
]


# --------------------------------------------------------------------------- a fit, no sampling


def synthetic_fit(*, failed: bool = False, draws: int = 200) -> Fit:
    """Return a fit of the demo tree built from a random posterior (no model is sampled).

    Parameters
    ----------
    failed : bool, default False
        Whether its trust gates failed.
    draws : int, default 200
        Posterior draws (one chain).

    Returns
    -------
    Fit
    """
    tree = load_tree(TREE)
    post = demo_posterior(n_draws=draws)
    edges = [edge_label(p, c) for p, c in tree.edges]
    variables = {
        "elasticity": post.elasticity[None],
        "elasticity_mu": post.elasticity.mean(axis=2)[None],
        "churn_intercept": post.churn_intercept[None],
        "churn_slope": post.churn_slope[None],
        "churn_slope_mu": post.churn_slope.mean(axis=1)[None],
        "tenure_slope": post.tenure_slope[None],
        "hinge_jump": post.hinge_jump[None],
        "hinge_tau": post.hinge_tau[None],
    }
    idata = az.from_dict(
        posterior=variables,
        coords={"edge": edges, "segment": list(post.segments)},
        dims={
            "elasticity": ["edge", "segment"],
            "elasticity_mu": ["edge"],
            "churn_intercept": ["segment"],
            "churn_slope": ["segment"],
        },
    )
    status = "FAIL" if failed else "PASS"
    checks = pd.DataFrame(
        [
            {
                "check": "max_rhat",
                "value": 1.2 if failed else 1.0,
                "threshold": 1.01,
                "status": status,
                "parameter": "elasticity",
                "detail": "largest R-hat",
            }
        ]
    )
    panel = {"warnings": []}
    card = {
        "tree": tree.model_dump(mode="json"),
        "tree_fingerprint": tree.fingerprint(),
        "segments": list(post.segments),
        "diagnostics": {"status": status, "checks": to_jsonable(checks)},
        "north_star_levels": {"p10": 2.0, "p50": 5.0, "p90": 12.0},
        "reference_tenure": 10.0,
        "seed": 0,
        "panel": panel,
    }
    return Fit(
        idata=idata,
        tree=tree,
        panel=panel,
        card=card,
        population=demo_population(),
        diagnostics=checks,
    )


@dataclass(frozen=True)
class Inputs:
    """The files a fuzzed run may name, made once per folder.

    Attributes
    ----------
    root : Path
        The folder.
    bundle, failed_bundle : Path
        Fit bundles of the demo tree (the second failed its trust gates).
    mixed_bundle : Path
        A bundle whose card comes from another fit.
    panel : Path
        A valid panel of the demo tree (CSV).
    scenario : Path
        A valid scenario of the demo tree.
    a_file, a_folder : Path
        An existing file, and an existing folder holding a file.
    """

    root: Path
    bundle: Path
    failed_bundle: Path
    mixed_bundle: Path
    panel: Path
    scenario: Path
    a_file: Path
    a_folder: Path


def make_inputs(root: Path) -> Inputs:
    """Write the files fuzzed runs name: bundles, a panel, a scenario, a file and a folder.

    Parameters
    ----------
    root : Path

    Returns
    -------
    Inputs
    """
    root.mkdir(parents=True, exist_ok=True)
    for name in os.listdir(HOSTILE):
        shutil.copy(HOSTILE / name, root / name)
    save_bundle(synthetic_fit(), root / "bundle")
    save_bundle(synthetic_fit(failed=True), root / "failed_bundle")
    save_bundle(synthetic_fit(draws=150), root / "mixed_bundle")
    shutil.copy(root / "bundle" / "posterior.nc", root / "mixed_bundle" / "posterior.nc")
    world = generate_world(accounts=120, periods=12, seed=5)
    world.panel.to_csv(root / "panel.csv", index=False, date_format="%Y-%m-%d")
    (root / "scenario.yaml").write_text(
        "name: plan\nmodel: tree.yaml\nhorizon: 13\ncapacity: 10\ninitiatives:\n"
        "  - {name: Onboarding, target: seats_activated, lift: {low: 2%, high: 10%}, effort: 4}\n"
        "  - {name: Invites, target: invites_sent, lift: {low: 5%, high: 20%}, effort: 3}\n"
        "  - {name: Boards, target: boards_shared, lift: 6%, effort: 5, excludes: [Invites]}\n",
        encoding="utf-8",
    )
    (root / "a_file").write_text("x")
    (root / "a_folder").mkdir(exist_ok=True)
    (root / "a_folder" / "keep.txt").write_text("kept")
    return Inputs(
        root=root,
        bundle=root / "bundle",
        failed_bundle=root / "failed_bundle",
        mixed_bundle=root / "mixed_bundle",
        panel=root / "panel.csv",
        scenario=root / "scenario.yaml",
        a_file=root / "a_file",
        a_folder=root / "a_folder",
    )


# --------------------------------------------------------------------------- running


def run(args: list[str]) -> Any:
    """Invoke ``nsm-sim`` in-process with ``args``.

    Parameters
    ----------
    args : list of str

    Returns
    -------
    click.testing.Result
    """
    return CliRunner().invoke(app, args, env={"COLUMNS": "100"})


def contract_broken(result: Any) -> str | None:
    """Say how a run broke the exit-code contract, or None when it kept it.

    Parameters
    ----------
    result : click.testing.Result

    Returns
    -------
    str or None
        The exception raised (a traceback at the command line) or the exit code other
        than 0 or 2.
    """
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        return f"{type(exc).__name__}: {exc}"
    if result.exit_code not in (0, 2):
        return f"exit code {result.exit_code}: {result.output[-500:]}"
    if "Traceback" in result.output:
        return "a traceback in the output"
    return None


# --------------------------------------------------------------------------- files


def _replace_value(line: str, value: str) -> str:
    key, sep, _ = line.partition(":")
    return f"{key}{sep} {value}" if sep else line


@st.composite
def yaml_variant(draw: st.DrawFn, text: str) -> bytes:
    """Mutate a YAML file: values replaced by hostile ones, lines lost or repeated, bytes in.

    Parameters
    ----------
    text : str
        A valid file.

    Returns
    -------
    bytes
        The file's new content.
    """
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["value", "value", "value", "delete", "repeat", "text"]))
        if op == "value":
            value = draw(st.one_of(st.sampled_from(HOSTILE_YAML), st.text(max_size=12)))
            lines[k] = _replace_value(lines[k], value.replace("\n", " "))
        elif op == "delete":
            del lines[k]
        elif op == "repeat":
            lines.insert(k, lines[k])
        else:
            lines.insert(k, draw(st.text(max_size=30)).replace("\r", ""))
        if not lines:
            lines = [""]
    out = "\n".join(lines).encode("utf-8", "surrogatepass")
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "latin-1", "utf-16", "bytes"]))
    if encoding == "bytes":
        at = draw(st.integers(0, len(out)))
        out = out[:at] + draw(st.binary(min_size=1, max_size=8)) + out[at:]
    elif encoding != "utf-8":
        out = out.decode("utf-8", "replace").encode(encoding, "replace")
    return out


@st.composite
def panel_variant(draw: st.DrawFn, frame: pd.DataFrame) -> bytes:
    """Mutate a panel: hostile cells, lost or renamed columns, repeated rows, constant columns.

    Parameters
    ----------
    frame : pandas.DataFrame
        A valid panel.

    Returns
    -------
    bytes
        A CSV file.
    """
    f = frame.astype(object).copy()
    for _ in range(draw(st.integers(1, 3))):
        op = draw(
            st.sampled_from(["cell", "cell", "column", "drop", "rename", "rows", "churn", "value"])
        )
        column = draw(st.sampled_from(list(f.columns)))
        if op == "cell":
            row = draw(st.integers(0, len(f) - 1))
            at = draw(st.integers(0, len(f.columns) - 1))
            f.iat[row, at] = draw(st.sampled_from(HOSTILE_CELLS))
        elif op == "column":
            f[column] = draw(st.sampled_from(HOSTILE_CELLS))
        elif op == "drop" and len(f.columns) > 1:
            f = f.drop(columns=column)
        elif op == "rename":
            f = f.rename(columns={column: draw(st.sampled_from(["[/bold]", "churned", "", "x"]))})
        elif op == "rows":
            rows = draw(st.lists(st.integers(0, len(f) - 1), min_size=1, max_size=5))
            f = pd.concat([f, f.iloc[rows]], ignore_index=True)
        elif op == "churn" and "churned" in f:
            f["churned"] = draw(st.sampled_from([0, 1]))
        elif op == "value" and column in f:
            f[column] = f[column].map(lambda v: v * 1e20 if isinstance(v, float) else v)
        f = f.astype(object)
    text = f.to_csv(index=False)
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "latin-1", "utf-16"]))
    return text.encode(encoding, "replace")


# --------------------------------------------------------------------------- runs


def _seed(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return str(draw(st.integers(0, 2**32 - 1)))
    return draw(st.one_of(st.sampled_from(HOSTILE_NUMBERS), st.integers(-(10**6), 10**6).map(str)))


def _out(draw: st.DrawFn, inputs: Inputs, case: Path) -> str:
    choice = draw(
        st.sampled_from(
            ["new"] * 4 + ["folder"] * 2 + ["file", "under_file", "deep", "cwd", "empty"]
        )
    )
    return {
        "new": str(case / "out"),
        "file": str(inputs.a_file),
        "folder": str(case / "folder"),
        "under_file": str(inputs.a_file / "sub"),
        "deep": str(case / "a" / "b" / "c"),
        "cwd": ".",
        "empty": "",
    }[choice]


@st.composite
def cli_run(draw: st.DrawFn, inputs: Inputs, case: Path) -> list[str]:
    """Draw one run of ``nsm-sim`` on hostile flags and files, writing its files into ``case``.

    Commands that would sample a model (``fit``, ``validate``, ``demo``) are drawn only with
    an argument that must be refused before any work.

    Parameters
    ----------
    inputs : Inputs
        The shared files.
    case : Path
        A new folder for this run's own files and outputs.

    Returns
    -------
    list of str
        The arguments.
    """
    case.mkdir(parents=True, exist_ok=True)
    (case / "folder").mkdir(exist_ok=True)
    (case / "folder" / "old.txt").write_text("old")
    tree_text = TREE.read_text(encoding="utf-8")
    kind = draw(
        st.sampled_from(
            ["tree", "scenario", "panel", "generate", "simulate", "prioritise", "compare"]
            + ["report", "build", "fit", "validate", "demo"]
        )
    )
    if kind == "tree":
        path = case / "tree.yaml"
        path.write_bytes(draw(yaml_variant(tree_text)))
        return ["check", str(path), *draw(st.sampled_from([[], ["--json"]]))]
    if kind == "scenario":
        shutil.copy(TREE, case / "tree.yaml")
        path = case / "scenario.yaml"
        path.write_bytes(draw(yaml_variant(inputs.scenario.read_text(encoding="utf-8"))))
        return ["check", str(path), *draw(st.sampled_from([[], ["--json"]]))]
    if kind == "panel":
        path = case / "panel.csv"
        frame = pd.read_csv(inputs.panel, dtype=str)
        path.write_bytes(draw(panel_variant(frame)))
        return ["check", str(TREE), "--data", str(path)]
    if kind == "generate":
        accounts = draw(st.sampled_from(["60"] * 4 + ["-1", "0", "49", "1e9", "1000000000", "x"]))
        periods = draw(st.sampled_from(["8", "10"] * 2 + ["-1", "7", "100000", "x"]))
        args = ["generate", "--out", _out(draw, inputs, case), "--accounts", accounts]
        args += ["--periods", periods, "--seed", _seed(draw)]
        args += draw(st.sampled_from([[], ["--format", "parquet"], ["--format", "[/bold]"]]))
        return args + draw(st.sampled_from([[], ["--json"], ["--events"]]))
    scenario = draw(
        st.sampled_from(
            [inputs.scenario] * 12 + sorted(inputs.root.glob("scenario_*.yaml")) + [inputs.a_file]
        )
    )
    fit_dir = draw(
        st.sampled_from(
            [inputs.bundle] * 8
            + [inputs.failed_bundle] * 2
            + [inputs.mixed_bundle, inputs.a_file, inputs.a_folder]
            + [case / "missing"]
        )
    )
    simulations = draw(
        st.sampled_from(["100", "150", "300"] * 3 + ["-1", "99", "1e9", "100000000", "x"])
    )
    common = ["--fit", str(fit_dir), "--simulations", simulations, "--seed", _seed(draw)]
    out = [] if draw(st.booleans()) else ["--out", _out(draw, inputs, case)]
    json = draw(st.sampled_from([[], ["--json"]]))
    if kind == "simulate":
        return ["simulate", str(scenario), *common, *out, *json]
    if kind == "prioritise":
        extra = ["--objective", draw(st.sampled_from(["value", "north_star", "x", "[/bold]"]))]
        extra += ["--risk-aversion", draw(st.sampled_from(["0", "0.5", "1", "1.5", "nan", "x"]))]
        return ["prioritise", str(scenario), *common, *extra, *out, *json]
    if kind == "compare":
        other = draw(st.sampled_from([inputs.scenario, scenario, inputs.a_folder]))
        basis = draw(st.sampled_from(["--all", "--funded"]))
        return ["compare", str(scenario), str(other), *common, basis, *out, *json]
    if kind == "report":
        args = ["report", "--fit", str(fit_dir), "--out", _out(draw, inputs, case)]
        args += ["--simulations", simulations, "--seed", _seed(draw)]
        return args + draw(st.sampled_from([[], ["--scenario", str(scenario)]])) + json
    if kind == "build":
        bad = draw(st.sampled_from([str(inputs.a_folder), str(inputs.a_file / "x.csv"), "x.txt"]))
        return ["build", str(TREE), "--out", bad]
    # fit, validate, demo: always one argument refused up front (no sampling)
    refused = draw(
        st.sampled_from(
            [
                ["--out", str(inputs.a_file)],
                ["--out", str(inputs.a_file / "sub")],
                ["--seed", "-1"],
                ["--seed", "4294967296"],
            ]
            + ([["--draws", "1000000000"], ["--chains", "1000"]] if kind == "fit" else [])
            + ([["--data", str(case / "missing.csv")]] if kind != "demo" else [])
        )
    )
    if kind == "demo":
        return ["demo", *refused, "--accounts", "200", "--periods", "20"]
    tree = draw(st.sampled_from([TREE, inputs.a_file, inputs.a_folder]))
    base = [kind, str(tree), "--data", str(inputs.panel)]
    if kind == "fit":
        base += ["--out", str(case / "fit")]
    return base + refused


__all__ = [
    "HOSTILE",
    "HOSTILE_CELLS",
    "HOSTILE_NUMBERS",
    "HOSTILE_YAML",
    "TREE",
    "Inputs",
    "cli_run",
    "contract_broken",
    "make_inputs",
    "panel_variant",
    "run",
    "synthetic_fit",
    "yaml_variant",
]
