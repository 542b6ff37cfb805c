"""Nothing a user types or kills breaks it: hostile files, flags and outputs, and kills.

Every bad input ends in exit code 2 with a message naming the file and what was expected,
never a traceback; outputs appear whole or not at all; data that cannot support an answer is
refused or carries a warning to every use of the fit. The fuzzing here runs a bounded number
of examples; ``benchmarks/fuzz_cli.py`` runs thousands.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hostile_inputs import (
    HOSTILE,
    TREE,
    cli_run,
    contract_broken,
    make_inputs,
    panel_variant,
    run,
    synthetic_fit,
    yaml_variant,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nsm_sim import files, limits
from nsm_sim.errors import BundleError, DataError, InputError, SpecError
from nsm_sim.models.bundle import load_bundle, save_bundle
from nsm_sim.output import decision_plots, figures
from nsm_sim.output.html import Section as HtmlSection
from nsm_sim.output.html import TableBlock, render_report
from nsm_sim.spec import load_scenario, load_tree
from nsm_sim.synth import generate_world

CASES = yaml.safe_load((HOSTILE / "cases.yaml").read_text(encoding="utf-8"))
FUZZ = settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,  # the same examples on every run; benchmarks/fuzz_cli.py explores more
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Bundles (whole, failed, mixed), a panel, a scenario, a file and a folder."""
    return make_inputs(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def world_frame():
    """A small valid panel of the demo tree, as a frame."""
    world = generate_world(accounts=120, periods=12, seed=5)
    return world.panel


def refused(result, *fragments):
    """Assert exit code 2, no traceback, and each fragment in the message."""
    assert contract_broken(result) is None, contract_broken(result)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    for fragment in fragments:
        assert " ".join(fragment.split()) in text, (fragment, result.output)


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_hostile_file_gets_its_message(name):
    code, fragment = CASES[name]
    result = run(["check", str(HOSTILE / name)])
    assert contract_broken(result) is None, contract_broken(result)
    assert result.exit_code == code, result.output
    text = " ".join(result.output.split())
    assert fragment in text
    if code == 2:
        assert str(HOSTILE / name) in text  # the message names the file


def test_a_folder_or_a_missing_file_is_named(tmp_path):
    folder = tmp_path / "tree.yaml"
    folder.mkdir()
    refused(run(["check", str(folder)]), f"{folder}: 1 problem(s)", "is a folder")
    refused(run(["check", str(tmp_path / "nope.yaml")]), "file not found")
    refused(run(["check", str(TREE), "--data", str(folder)]), "is a folder")
    big = tmp_path / "big.yaml"
    big.write_text("name: " + "x" * (3 * 2**20))
    refused(run(["check", str(big)]), "larger than 2 MB")


def test_panel_files_that_are_not_what_they_claim(tmp_path, world_frame):
    csv = tmp_path / "panel.csv"
    world_frame.to_csv(csv, index=False, encoding="utf-16")
    refused(run(["check", str(TREE), "--data", str(csv)]), "not UTF-8 text", str(csv))
    csv.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x01\xff")
    refused(run(["check", str(TREE), "--data", str(csv)]), "expected a CSV file saved as UTF-8")
    parquet = tmp_path / "panel.parquet"
    parquet.write_bytes(b"PAR1 not really")
    refused(run(["check", str(TREE), "--data", str(parquet)]), "not a readable Parquet file")


def test_an_alias_bomb_is_not_expanded(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * 9)}]" for k in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\nname: t\nnorth_star: n\ninputs: {x: *a8}\n")
    started = time.perf_counter()
    refused(run(["check", str(bomb)]), "inputs.x[0]: expected a metric name, got a list")
    assert time.perf_counter() - started < 10


def test_python_tags_are_refused(tmp_path):
    tagged = tmp_path / "tree.yaml"
    tagged.write_text("name: !!python/object/apply:os.system ['echo owned']\n")
    refused(run(["check", str(tagged)]), "not valid YAML")


# --------------------------------------------------------------------------- user text as text


def test_markup_in_names_and_messages_prints_as_written(inputs):
    result = run(["check", str(HOSTILE / "scenario_markup.yaml")])
    assert result.exit_code == 0 and "'[red]hostile[/]'" in result.output
    result = run(["check", str(HOSTILE / "scenario_markup_error.yaml")])
    refused(result, "'[/bold]' is not a node")
    result = run(
        ["simulate", str(HOSTILE / "scenario_markup.yaml"), "--fit", str(inputs.bundle)]
        + ["--simulations", "200"]
    )
    assert result.exit_code == 0, result.output
    assert "[/bold] $x^$ <script>" in result.output


def test_a_path_with_markup_prints_as_written(tmp_path):
    out = tmp_path / "[/bold]$x^$"
    result = run(["generate", "--out", str(out), "--accounts", "60", "--periods", "8"])
    assert result.exit_code == 0, result.output
    assert "[/bold]$x^$" in result.output
    refused(run(["check", str(out / "[/red].yaml")]), "[/red].yaml: 1 problem(s)")


def test_figures_draw_names_with_dollars_as_text():
    names = {"cost $x^$": np.array([1.0, 2.0, 3.0]), "$$": np.array([0.5, 1.5])}
    for figure in (
        decision_plots.value_distribution(names, "value"),
        decision_plots.evpi_bars(pd.DataFrame({"name": list(names), "evpi": [1.0, 2.0]}), "$"),
    ):
        figure.savefig(os.devnull, format="png")
        labels = [t.get_text() for ax in figure.axes for t in ax.get_yticklabels()]
        assert any(r"cost \$x^\$" in label for label in labels)
    assert figures.plain("y" * 500).endswith("\u2026") and len(figures.plain("y" * 500)) == 60


def test_html_escapes_every_name():
    frame = pd.DataFrame({"initiative": ["<script>alert(1)</script>", "[/bold] $x^$"]})
    page = render_report("t", "s", [HtmlSection("x", "", [TableBlock(frame, "<b>")])])
    assert "<script>alert" not in page and "&lt;script&gt;" in page and "&lt;b&gt;" in page


def test_formula_cells_are_quoted_in_csv(tmp_path):
    frame = pd.DataFrame({"name": ["=HYPERLINK(1)", "+cmd", "-0.5", "@SUM(A1)", "ok"]})
    files.write_files(tmp_path / "out", {"t.csv": frame, "u.csv": frame[["name"]].T})
    cells = pd.read_csv(tmp_path / "out" / "t.csv")["name"].tolist()
    assert cells == ["'=HYPERLINK(1)", "'+cmd", "-0.5", "'@SUM(A1)", "ok"]


# --------------------------------------------------------------------------- outputs


@pytest.mark.parametrize("command", ["fit", "validate", "simulate", "generate", "report", "demo"])
def test_an_output_that_cannot_be_written_is_refused_before_any_work(command, inputs):
    args = {
        "fit": ["fit", str(TREE), "--data", str(inputs.panel)],
        "validate": ["validate", str(TREE), "--data", str(inputs.panel)],
        "simulate": ["simulate", str(inputs.scenario), "--fit", str(inputs.bundle)],
        "generate": ["generate"],
        "report": ["report", "--fit", str(inputs.bundle)],
        "demo": ["demo"],
    }[command]
    for out, message in [
        (inputs.a_file, "exists and is not a folder"),
        (inputs.a_file / "sub", "is a file, not a folder"),
        (Path("."), "holds the current folder"),
    ]:
        started = time.perf_counter()
        refused(run([*args, "--out", str(out)]), "--out: 1 problem(s)", message)
        assert time.perf_counter() - started < 10  # nothing was sampled or simulated
    refused(run(["build", str(TREE), "--out", str(inputs.a_folder)]), "is a folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="permissions do not bind root")
def test_an_unwritable_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    refused(run(["generate", "--out", str(locked / "w")]), "cannot be written")


def test_outputs_get_the_umask_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        out = tmp_path / "w"
        run(["generate", "--out", str(out), "--accounts", "60", "--periods", "8"])
        assert (out.stat().st_mode & 0o777) == 0o755
        assert {p.stat().st_mode & 0o777 for p in out.iterdir()} == {0o644}
    finally:
        os.umask(previous)


def test_writing_again_replaces_the_folder_and_keeps_other_files(tmp_path):
    out = tmp_path / "out"
    files.write_files(out, {"a.txt": "1", "sub/b.txt": "1"})
    (out / "mine.txt").write_text("kept")
    written = files.write_files(out, {"a.txt": "2", "sub/b.txt": "2"})
    assert [p.read_text() for p in written] == ["2", "2"]
    assert (out / "mine.txt").read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing staged is left


def test_a_replaced_folder_keeps_its_permissions_and_written_ones_get_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        out = tmp_path / "out"
        (out / "private").mkdir(parents=True)
        (out / "private" / "notes.txt").write_text("mine")
        (out / "fit").mkdir()
        for folder, mode in ((out / "private", 0o700), (out / "fit", 0o700), (out, 0o750)):
            folder.chmod(mode)
        files.write_files(out, {"fit/card.json": "{}", "report.html": "<p>"})
        modes = {p.name: p.stat().st_mode & 0o777 for p in (out, *out.iterdir())}
        assert modes == {"out": 0o750, "private": 0o700, "fit": 0o755, "report.html": 0o644}
        assert (out / "private" / "notes.txt").read_text() == "mine"
    finally:
        os.umask(previous)


def test_a_folder_holding_too_many_files_is_refused_as_an_output(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "MAX_KEPT_ENTRIES", 5)
    for k in range(8):
        (tmp_path / f"f{k}.txt").write_text("x")
    assert "holds more than 5 files" in files.output_problem(tmp_path)
    assert files.output_problem(tmp_path / "new") is None


def test_without_an_atomic_exchange_the_old_folder_is_set_aside(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    out = tmp_path / "out"
    files.write_files(out, {"a.txt": "1"})
    files.write_files(out, {"a.txt": "2"})
    assert (out / "a.txt").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_folders_of_a_killed_run_are_removed_or_put_back(tmp_path):
    pid = _dead_pid()
    out = tmp_path / "out"
    (tmp_path / f".out.nsm-sim-stage-{pid}-0a1b2c3d").mkdir()
    aside = tmp_path / f".out.nsm-sim-old-{pid}-0a1b2c3d"
    aside.mkdir()
    (aside / "a.txt").write_text("old")
    alive = tmp_path / f".out.nsm-sim-stage-{os.getpid()}-00000000"
    alive.mkdir()
    files.clean_stale(out)
    assert (out / "a.txt").read_text() == "old"  # killed between its two renames: put back
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, "out"]


WRITER = textwrap.dedent(
    """
    import os, sys
    from nsm_sim.files import write_files
    out, tag = sys.argv[1], sys.argv[2]
    for k in range(int(sys.argv[3])):
        write_files(out, {f"f{i:03d}.txt": f"{tag}-{k}" for i in range(120)})
    """
)


def _tokens(out: Path) -> set[str]:
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"f{i:03d}.txt" for i in range(120)], names  # never a partial folder
    return {p.read_text() for p in out.iterdir()}


def _written_by(out: Path, attempt: int) -> bool:
    try:
        return (out / "f000.txt").read_text().startswith(f"{attempt}-")
    except OSError:
        return False


def test_a_run_killed_at_random_moments_leaves_the_old_folder_or_the_new_one(tmp_path):
    out = tmp_path / "out"
    rng = np.random.default_rng(17)
    seen = set()
    for attempt in range(4):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(out), str(attempt), "10000"])
        # kill at a random moment once this writer has put at least one folder in place (its
        # start-up time depends on the machine's load, so a fixed delay may fall before it)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _written_by(out, attempt):
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0.0, 0.3)))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        if out.exists():
            tokens = _tokens(out)
            assert len(tokens) == 1  # every file from one and the same write
            seen |= tokens
    assert len(seen) >= 2  # the kills fell after several different writes
    files.write_files(out, {f"f{i:03d}.txt": "last" for i in range(120)})
    assert _tokens(out) == {"last"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # stale staging cleaned


def test_two_runs_writing_one_folder_at_once_end_with_one_complete_result(tmp_path):
    out = tmp_path / "out"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(out), tag, "25"], stderr=subprocess.PIPE
        )
        for tag in ("a", "b")
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err.decode()
    assert _tokens(out) in ({"a-24"}, {"b-24"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_bundle_that_mixes_two_fits_is_refused(inputs, tmp_path):
    refused(
        run(["simulate", str(inputs.scenario), "--fit", str(inputs.mixed_bundle)]),
        "posterior.nc: does not match manifest.json",
    )
    bundle = tmp_path / "bundle"
    save_bundle(synthetic_fit(), bundle)
    (bundle / "manifest.json").unlink()
    with pytest.raises(BundleError, match="manifest.json: missing"):
        load_bundle(bundle)
    save_bundle(synthetic_fit(), bundle)
    load_bundle(bundle)
    with (bundle / "population.csv").open("a") as handle:
        handle.write("\n")
    with pytest.raises(BundleError, match="population.csv: does not match"):
        load_bundle(bundle)


# --------------------------------------------------------------------------- limits


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["fit", "TREE", "--data", "PANEL", "--draws", "1000000000"], ["--draws", "100,000"]),
        (["fit", "TREE", "--data", "PANEL", "--chains", "64", "--draws", "100000"], ["memory"]),
        (["generate", "--accounts", "1000000000"], ["--accounts", "limit of 10,000,000"]),
        (["generate", "--accounts", "9000000", "--periods", "500"], ["of memory"]),
        (["generate", "--periods", "100000"], ["--periods", "limit of 520"]),
        (["simulate", "SCENARIO", "--fit", "BUNDLE", "--simulations", "100000000"], ["2,000,000"]),
        (["generate", "--seed", "-1"], ["--seed"]),
        (["simulate", "SCENARIO", "--fit", "BUNDLE", "--seed", "-1"], ["--seed"]),
        (["prioritise", "SCENARIO", "--fit", "BUNDLE", "--risk-aversion", "nan"], ["--risk"]),
    ],
)
def test_sizes_beyond_their_limits_are_refused_at_once(args, fragments, inputs, tmp_path):
    names = {
        "TREE": str(TREE),
        "PANEL": str(inputs.panel),
        "SCENARIO": str(inputs.scenario),
        "BUNDLE": str(inputs.bundle),
    }
    args = [names.get(a, a) for a in args]
    if args[0] in ("fit", "generate"):
        args += ["--out", str(tmp_path / "out")]
    started = time.perf_counter()
    refused(run(args), *fragments)
    assert time.perf_counter() - started < 10
    assert not (tmp_path / "out").exists()


def test_a_simulation_estimated_beyond_the_time_limit_is_refused():
    with pytest.raises(InputError, match="beyond the limit of 12.0 h"):
        limits.check_simulation(200_000, 520, 200, 5_000)
    limits.check_simulation(4000, 13, 8, 60)  # the demo's size passes


# --------------------------------------------------------------------------- data


def _check_panel(tmp_path, frame):
    path = tmp_path / "panel.csv"
    frame.to_csv(path, index=False, date_format="%Y-%m-%d")
    return run(["check", str(TREE), "--data", str(path)])


def test_a_stray_date_is_named_with_its_row(tmp_path, world_frame):
    stray = world_frame.iloc[[0]].assign(account_id="stray", period=pd.Timestamp("2262-01-06"))
    result = _check_panel(tmp_path, pd.concat([world_frame, stray]))
    refused(result, "period: date cut off from the other rows", "(stray, 2262-01-06)")
    early = world_frame.iloc[[0]].assign(account_id="early", period=pd.Timestamp("1999-01-04"))
    refused(_check_panel(tmp_path, pd.concat([world_frame, early])), "(early, 1999-01-04)")


def test_the_9999_date_of_the_report_is_a_stray_date(tmp_path, world_frame):
    frame = world_frame.astype({"period": str})
    frame["period"] = pd.to_datetime(frame["period"]).dt.strftime("%Y-%m-%d")
    stray = frame.iloc[[0]].assign(account_id="new", period="9999-12-27")
    path = tmp_path / "panel.csv"
    pd.concat([frame, stray]).to_csv(path, index=False)
    refused(run(["check", str(TREE), "--data", str(path)]), "(new, 9999-12-27)")


def test_an_account_that_vanishes_without_churn_is_a_warning_with_its_row(tmp_path, world_frame):
    last_period = world_frame["period"].max()
    alive = world_frame[(world_frame["period"] == last_period)]["account_id"].iloc[0]
    frame = world_frame.drop(world_frame[world_frame["account_id"] == alive].index[-3:])
    result = _check_panel(tmp_path, frame)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "warning: churned: last row of an account that stops before the last period" in text
    assert f"({alive}, " in text
    payload = json.loads(
        run(["check", str(TREE), "--data", str(tmp_path / "panel.csv"), "--json"]).stdout
    )
    assert len(payload["data"]["warnings"]) == 1


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda f: f.assign(logins=3.0), "logins: the same value (3) in all"),
        (lambda f: f.assign(churned=0), "churned: no account churns"),
        (lambda f: f.assign(boards_shared=1e300), "value of 1e+15 or more"),
        # ISO 8601's signed years: "-1" parses as the year -1, which no date library prints
        (lambda f: f.assign(period="-1"), "period: missing or unreadable date"),
    ],
)
def test_data_that_cannot_support_an_answer_is_refused(change, fragment, tmp_path, world_frame):
    refused(_check_panel(tmp_path, change(world_frame)), fragment)


def test_a_panel_where_every_account_churns_is_refused(tmp_path, world_frame):
    frame = world_frame.copy()
    last = frame.groupby("account_id").tail(1).index
    frame.loc[last, "churned"] = 1
    refused(_check_panel(tmp_path, frame), "none is still a customer")


def test_a_bundle_that_failed_its_gates_says_so_wherever_it_is_used(inputs, tmp_path):
    args = ["--fit", str(inputs.failed_bundle), "--simulations", "200"]
    result = run(["simulate", str(inputs.scenario), *args, "--json"])
    assert result.exit_code == 0
    assert "warning: the fit failed its trust gates (max_rhat)" in " ".join(result.output.split())
    payload = json.loads(result.stdout[result.stdout.index("{") :])
    assert payload["warnings"] and "trust gates" in payload["warnings"][0]
    result = run(["prioritise", str(inputs.scenario), *args, "--out", str(tmp_path / "p")])
    assert result.exit_code == 0 and "failed its trust gates" in result.output
    assert json.loads((tmp_path / "p" / "prioritise.json").read_text())["warnings"]
    out = tmp_path / "report"
    result = run(["report", *args, "--out", str(out), "--scenario", str(inputs.scenario)])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    assert "Read this first" in page and "failed its trust gates" in page
    clean = run(
        ["simulate", str(inputs.scenario), "--fit", str(inputs.bundle), *args[2:], "--json"]
    )
    assert json.loads(clean.stdout)["warnings"] == []


# --------------------------------------------------------------------------- same seed


def test_same_seed_same_numbers_and_no_timings_in_results(inputs):
    fewer = ["--simulations", "500"]
    args = ["simulate", str(inputs.scenario), "--fit", str(inputs.bundle), *fewer, "--seed", "7"]
    first, second = run([*args, "--json"]), run([*args, "--json"])
    assert first.exit_code == 0 and first.stdout == second.stdout
    other = run(["simulate", str(inputs.scenario), "--fit", str(inputs.bundle), *fewer, "--json"])
    assert other.stdout != first.stdout


# --------------------------------------------------------------------------- events


def test_event_commands_are_wired(tmp_path):
    out = tmp_path / "events"
    args = ["generate", "--out", str(out), "--events", "--accounts", "80", "--periods", "10"]
    result = run(args)
    assert result.exit_code == 0, result.output
    assert {"events.parquet", "accounts.parquet", "tree.yaml"} <= {p.name for p in out.iterdir()}
    checked = run(["check", str(out / "tree.yaml"), "--json"])
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout)["events"]["accounts"] == 80
    built = run(["build", str(out / "tree.yaml"), "--out", str(tmp_path / "panel.csv")])
    assert built.exit_code == 0, built.output
    again = run(["check", str(out / "tree.yaml"), "--data", str(tmp_path / "panel.csv")])
    assert again.exit_code == 0, again.output
    refused(run(["fit", str(TREE), "--out", str(tmp_path / "fit")]), "--data", "required")


@pytest.mark.slow
def test_fit_builds_its_panel_from_the_events_of_its_tree(tmp_path):
    out = tmp_path / "events"
    run(["generate", "--out", str(out), "--events", "--accounts", "300", "--periods", "16"])
    fit = tmp_path / "fit"
    args = ["fit", str(out / "tree.yaml"), "--out", str(fit), "--json"]
    result = run([*args, "--draws", "100", "--tune", "100", "--chains", "2"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout[result.stdout.index("{") :])
    assert payload["bundle"] == str(fit) and "warnings" in payload
    assert load_bundle(fit).card["accounts"] == 300


# --------------------------------------------------------------------------- fuzzing


@FUZZ
@given(data=st.data())
def test_fuzzed_tree_files_never_break_the_contract(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("tree") / "tree.yaml"
    path.write_bytes(data.draw(yaml_variant(TREE.read_text(encoding="utf-8"))))
    result = run(["check", str(path)])
    assert contract_broken(result) is None, contract_broken(result)


@FUZZ
@given(data=st.data())
def test_fuzzed_scenario_files_never_break_the_contract(inputs, tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("scenario")
    (folder / "tree.yaml").write_bytes(TREE.read_bytes())
    path = folder / "scenario.yaml"
    path.write_bytes(data.draw(yaml_variant(inputs.scenario.read_text(encoding="utf-8"))))
    result = run(["check", str(path)])
    assert contract_broken(result) is None, contract_broken(result)
    if result.exit_code == 0:
        assert load_scenario(path).initiatives  # what check accepts, the loader accepts


@FUZZ
@given(data=st.data())
def test_fuzzed_panels_never_break_the_contract(inputs, tmp_path_factory, data):
    path = tmp_path_factory.mktemp("panel") / "panel.csv"
    path.write_bytes(data.draw(panel_variant(pd.read_csv(inputs.panel, dtype=str))))
    result = run(["check", str(TREE), "--data", str(path)])
    assert contract_broken(result) is None, contract_broken(result)


@FUZZ
@given(data=st.data())
def test_fuzzed_command_lines_never_break_the_contract(inputs, tmp_path_factory, data):
    case = tmp_path_factory.mktemp("run")
    args = data.draw(cli_run(inputs, case))
    result = run(args)
    assert contract_broken(result) is None, (args, contract_broken(result))


def test_the_spec_errors_name_their_file_through_the_api():
    with pytest.raises(SpecError, match="tree_latin1.yaml"):
        load_tree(HOSTILE / "tree_latin1.yaml")
    with pytest.raises(DataError, match="file not found"):
        from nsm_sim.data import load_panel

        load_panel(HOSTILE / "nope.csv", load_tree(TREE))
