"""Validate's terminal output says when scored rows were older than every training row."""

import io
from types import SimpleNamespace

import pandas as pd
from rich.console import Console

from nsm_sim.output import terminal


def _validation(beyond: float, tenure: int = 35):
    metrics = pd.DataFrame(
        {
            "rank": [1, 2],
            "metric": ["projects_completed", "logins"],
            "verdict": ["LEADING", "VANITY"],
            "why": ["it predicts churn", "it tracks size"],
            "log_loss": [0.0573, 0.0580],
            "auc": [0.61, 0.58],
            "elpd_loo": [-9000.0, -9050.0],
            **{
                f"{side}_{k}": [0.1, 0.2]
                for side in ("within", "between")
                for k in ("mean", "low", "high")
            },
            "trained_tenure_max": [tenure, tenure],
            "beyond_trained_tenure": [beyond, beyond],
        }
    )
    # a validation read back from its files: no fits to grade, no threshold
    return SimpleNamespace(metrics=metrics, threshold=None, settings={})


def _render(validation) -> str:
    con = Console(file=io.StringIO(), width=80, color_system=None)
    terminal.render_validation(con, validation, err=Console(file=io.StringIO()))
    return " ".join(con.file.getvalue().split())


def test_validate_says_when_scored_rows_were_beyond_the_trained_tenure():
    text = _render(_validation(0.631))
    assert "63% of the scored rows were beyond the trained tenure (35 periods)" in text
    assert "held there, not extrapolated" in text


def test_no_line_when_every_scored_row_was_within_the_trained_tenure():
    assert "trained tenure" not in _render(_validation(0.0))
    older = _validation(0.5).metrics.drop(columns=["beyond_trained_tenure"])
    assert terminal.beyond_trained_tenure_line(SimpleNamespace(metrics=older)) is None
