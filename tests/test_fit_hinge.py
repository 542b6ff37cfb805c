"""The fit's threshold step by evidence (``fit --hinge auto|on|off``), slope and step together."""

import io

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from nsm_sim.cli import app
from nsm_sim.data import check_frame, churn_cells
from nsm_sim.errors import InputError
from nsm_sim.models import inference
from nsm_sim.models.retention import HINGE_MIN_LEVELS, combined_effect, step_evidence
from nsm_sim.output import terminal
from nsm_sim.synth import generate_world, write_world

runner = CliRunner()


def test_auto_follows_the_evidence_and_on_or_off_decide(panel):
    cells = churn_cells(panel)  # the session's world has a planted threshold
    choice = inference.hinge_choice(cells)
    evidence = step_evidence(cells)
    assert choice == {"requested": "auto", **evidence}
    assert choice["on"] and choice["elpd_gain"] > 4
    assert "improves the expected elpd" in choice["reason"]
    for asked, on in (("on", True), (True, True), ("off", False), (False, False)):
        forced = inference.hinge_choice(cells, asked)
        assert forced["on"] is on and forced["requested"] == ("on" if on else "off")
        assert "as asked" in forced["reason"]
    with pytest.raises(ValueError, match="'auto', 'on' or 'off'"):
        inference.hinge_choice(cells, "maybe")


@pytest.mark.parametrize(
    "options, why",
    [
        ({"binary_north_star": True}, "distinct levels"),  # a 0/1 North Star: two levels
        ({"churn_slope": 0.0, "hinge_jump": 0.0}, "does not improve"),  # no threshold
    ],
    ids=["binary", "no-threshold"],
)
def test_auto_leaves_the_step_out_where_the_data_do_not_call_for_it(options, why):
    world = generate_world(accounts=1500, periods=40, seed=11, **options)
    cells = churn_cells(check_frame(world.panel, world.tree))
    choice = inference.hinge_choice(cells, "auto")
    assert not choice["on"] and why in choice["reason"]
    if "binary_north_star" in options:
        assert choice["levels"] < HINGE_MIN_LEVELS and choice["elpd_gain"] is None
    else:
        assert choice["elpd_gain"] < 4


@pytest.fixture(scope="module")
def small_world_dir(tmp_path_factory):
    """A world of 100 accounts x 10 weeks as panel.csv and tree.yaml: what the command reads
    before it fits (the fit is replaced)."""
    out = tmp_path_factory.mktemp("small_world")
    write_world(generate_world(accounts=100, periods=10, seed=3), out)
    return out


@pytest.mark.parametrize(
    "args, asked",
    [([], "auto"), (["--hinge", "on"], "on"), (["--hinge", "off"], "off"), (["--no-hinge"], "off")],
)
def test_the_fit_command_passes_the_choice_on(small_world_dir, tmp_path, monkeypatch, args, asked):
    seen = {}

    def fake_fit(panel, **settings):
        seen.update(settings)
        raise InputError("fit", ["stopped by the test"])

    monkeypatch.setattr(inference, "fit", fake_fit)
    tree = str(small_world_dir / "tree.yaml")
    data = str(small_world_dir / "panel.csv")
    out = str(tmp_path / "fit")
    result = runner.invoke(app, ["fit", tree, "--data", data, "--out", out, *args])
    assert result.exit_code == 2 and "stopped by the test" in result.output
    assert seen["hinge"] == asked


def test_the_fit_command_refuses_another_hinge_value(small_world_dir, tmp_path):
    tree = str(small_world_dir / "tree.yaml")
    result = runner.invoke(app, ["fit", tree, "--out", str(tmp_path / "f"), "--hinge", "yes"])
    assert result.exit_code == 2
    assert "auto" in result.output and "off" in result.output


def test_slope_and_step_together_is_in_the_summary_and_on_the_terminal(fitted):
    choice = fitted.card["hinge_choice"]
    assert choice["requested"] == "auto" and choice["on"] and fitted.card["hinge"]
    retention = inference.summarise(fitted)["retention"]
    rows = retention[retention["term"].str.startswith(inference.TOGETHER)]
    assert len(rows) == 1
    levels = fitted.card["north_star_levels"]
    post = fitted.idata.posterior
    expected = combined_effect(
        post["churn_slope_population"].values.ravel(),
        post["hinge_jump"].values.ravel(),
        post["hinge_tau"].values.ravel(),
        levels["p10"],
        levels["p90"],
    )
    row = rows.iloc[0]
    assert row["mean"] == pytest.approx(float(np.mean(expected)), rel=1e-12)
    assert row["low"] < row["mean"] < row["high"]
    # the planted effect (slope -0.5 and a jump of -0.7 above 7.5) is clear together
    assert row["high"] < 0
    con, err = (Console(file=io.StringIO(), width=120, color_system=None) for _ in range(2))
    terminal.render_fit(con, err, fitted, inference.summarise(fitted), "out")
    text = " ".join(con.file.getvalue().split())
    assert inference.TOGETHER in text
    assert "Threshold step on: a step in projects_completed improves the expected elpd" in text
