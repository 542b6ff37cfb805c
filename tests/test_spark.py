"""The same definitions and reductions on Spark (local mode) as on DuckDB, on small event logs.

Skipped without pyspark (``pip install "nsm-sim[spark]"``) or Java (17 or later). Slow: Spark
takes half a minute to start and about a second per query on two cores.
"""

import shutil

import numpy as np
import pandas as pd
import pytest
from test_engine_reduce import assert_same_reduction
from test_events import random_log, tree_file, write_log

from nsm_sim.errors import DataError
from nsm_sim.events.engine import build_panel
from nsm_sim.events.reduction import reduce_events, reduce_panel_file
from nsm_sim.events.synthetic import write_synthetic_events

pytest.importorskip("pyspark")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java 17 or later"),
]

METRICS = {
    "mobile_logins": {"event": "login", "where": "platform = 'ios'"},
    "active_users": {"event": ["project_completed", "login"], "aggregate": "unique_users"},
    "revenue": {"event": "invoice_paid", "aggregate": "sum", "column": "amount"},
    "completion_rate": {
        "numerator": {"event": "project_completed"},
        "denominator": {"event": "project_created"},
        "zero_denominator": "zero",
    },
    "busy_weeks": {"event": "login", "at_least": 3, "window": "10 days"},
}


@pytest.fixture(scope="module")
def berlin(tmp_path_factory):
    """A log whose timestamps carry a zone, read in Berlin's time (a DST change inside)."""
    tmp = tmp_path_factory.mktemp("spark")
    events, accounts = random_log(seed=5)
    events["ts"] = events["ts"].dt.tz_localize("UTC") + pd.Timedelta(days=70)
    accounts["created_at"] = accounts["created_at"].dt.tz_localize("UTC") + pd.Timedelta(days=70)
    accounts["churned_at"] = accounts["churned_at"].dt.tz_localize("UTC") + pd.Timedelta(days=70)
    write_log(tmp, events, accounts)
    source = {
        "events": "events.parquet",
        "columns": {"timestamp": "ts", "account_id": "account", "event": "name"},
        "accounts": "accounts.parquet",
        "account_columns": {"started_at": "created_at", "churned_at": "churned_at"},
    }
    calendar = {"timezone": "Europe/Berlin", "start": "2025-03-17", "end": "2025-05-25"}
    return tree_file(
        tmp,
        METRICS,
        source=source,
        calendar=calendar,
        exclude={"accounts_where": "internal", "events_where": "platform = 'web' AND amount > 90"},
    )


def test_spark_builds_the_same_panel_as_duckdb(berlin):
    duck = build_panel(berlin)
    spark = build_panel(berlin, engine="spark")
    pd.testing.assert_frame_equal(
        spark.frame.astype({"period": "datetime64[us]"}),
        duck.frame.astype({"period": "datetime64[us]"}),
        check_dtype=False,
        check_exact=False,
        rtol=1e-12,
    )
    assert spark.panel.fingerprint == duck.panel.fingerprint
    assert spark.summary == duck.summary
    assert any("UNIX_MICROS" in s for s in spark.statements)  # the zone by offset arithmetic


def test_spark_reduces_events_and_panel_files_as_duckdb(tmp_path_factory):
    out = tmp_path_factory.mktemp("spark") / "world"
    paths = write_synthetic_events(out, accounts=200, periods=10, seed=3, fmt="parquet")
    duck = reduce_events(paths["tree"])
    spark = reduce_events(paths["tree"], engine="spark")
    assert_same_reduction(duck, spark)
    assert spark.fingerprint == duck.fingerprint
    from_file = reduce_panel_file(paths["panel"], duck.tree, engine="spark", within=False)
    assert_same_reduction(reduce_panel_file(paths["panel"], duck.tree, within=False), from_file)
    assert np.all(from_file.driver_stats[duck.tree.north_star].n_absorbed == 0)


def test_spark_says_what_it_cannot_read(tmp_path):
    events, accounts = random_log(seed=5)
    write_log(tmp_path, events, accounts)
    source = {
        "events": {"database": "x.duckdb", "table": "events"},
        "columns": {"timestamp": "ts", "account_id": "account", "event": "name"},
        "accounts": "accounts.parquet",
        "account_columns": {"started_at": "created_at", "churned_at": "churned_at"},
    }
    path = tree_file(tmp_path, {}, source=source)
    with pytest.raises(DataError, match="read by --engine duckdb only"):
        build_panel(path, engine="spark")


def test_spark_finds_the_problems_duckdb_finds(tmp_path):
    events, accounts = random_log(seed=5)
    stray = events.iloc[[0]].assign(account="zz99")
    bad = pd.concat([events, stray, events.iloc[[5, 5]]], ignore_index=True)
    write_log(tmp_path, bad, accounts)
    path = tree_file(tmp_path, {})
    messages = []
    for engine in ("duckdb", "spark"):
        with pytest.raises(DataError) as err:
            build_panel(path, engine=engine)
        messages.append(str(err.value))
    assert "duplicate events: 1 event(s) appear more than once (3 rows)" in messages[1]
    assert "account missing from the accounts table in 1 event(s)" in messages[1]
    assert messages[1] == messages[0]


def test_nanosecond_parquet_timestamps_are_refused_with_the_way_out(tmp_path):
    events, accounts = random_log(seed=6)
    tree = tree_file(tmp_path, {"mobile_logins": METRICS["mobile_logins"]})
    write_log(tmp_path, events, accounts)
    events.to_parquet(tmp_path / "events.parquet", index=False)  # pandas' nanoseconds
    with pytest.raises(DataError, match="coerce_timestamps='us'"):
        build_panel(tree, engine="spark")
    assert build_panel(tree).panel.fingerprint  # DuckDB reads them
