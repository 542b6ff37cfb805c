"""Events to the panel: every aggregate, window, threshold, ratio, exclusion and churn rule
against an independent pandas computation on small event logs; the checks of bad input;
the synthetic world's round trip; the build command."""

import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from fixtures_events import SYNTHETIC
from sqlglot import exp

from nsm_sim.data import check_frame, load_panel
from nsm_sim.errors import DataError, InputError, SpecError
from nsm_sim.events import command, sql
from nsm_sim.events.engine import Session, build_panel
from nsm_sim.events.filters import parse_filter
from nsm_sim.events.keys import definitions_part, tree_part
from nsm_sim.events.load import load_definitions
from nsm_sim.synth import generate_world

START = pd.Timestamp("2025-01-06")  # a Monday
WEEKS = 10
END = START + pd.Timedelta(days=7 * WEEKS)  # the end of the data (exclusive)
LAST_DAY = END - pd.Timedelta(days=1)
ACCOUNTS = 60
EVENT_NAMES = ["project_completed", "project_created", "login", "invoice_paid"]


def random_log(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events and accounts: 60 accounts over 10 weeks, each event inside its lifetime."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"a{i:02d}" for i in range(ACCOUNTS)])
    created = START + pd.to_timedelta(
        rng.integers(0, 3, ACCOUNTS) * 7 * 86_400 + rng.integers(0, 3 * 86_400, ACCOUNTS), "s"
    )
    lasts = pd.to_timedelta(rng.integers(14 * 86_400, 80 * 86_400, ACCOUNTS), "s")
    churned_at = pd.Series(created + lasts).where(rng.random(ACCOUNTS) < 0.4)
    accounts = pd.DataFrame(
        {
            "account_id": ids,
            "plan": rng.choice(["free", "team"], ACCOUNTS),
            "created_at": created,
            "churned_at": churned_at,
            "internal": np.arange(ACCOUNTS) < 2,
        }
    )
    rows = []
    for i, acct in enumerate(ids):
        begin = created[i]
        stop = min(churned_at[i], END) if pd.notna(churned_at[i]) else END
        n = int(rng.integers(20, 120))
        seconds = rng.integers(0, int((stop - begin).total_seconds()), n)
        rows.append(
            pd.DataFrame(
                {
                    "ts": begin + pd.to_timedelta(seconds, "s"),
                    "account": acct,
                    "user_id": rng.choice([f"{acct}-u{k}" for k in range(5)], n),
                    "name": rng.choice(EVENT_NAMES, n, p=[0.3, 0.3, 0.3, 0.1]),
                    "platform": rng.choice(["web", "ios"], n),
                    "amount": np.round(rng.gamma(2.0, 20.0, n), 2),
                }
            )
        )
    events = pd.concat(rows, ignore_index=True)
    events.loc[events["name"] != "invoice_paid", "amount"] = np.nan
    return events.sort_values("ts", ignore_index=True), accounts


def tree_file(tmp_path: Path, metrics: dict, candidates=None, **definitions) -> Path:
    """A tree (North Star ``projects``, input ``logins``) with the given definitions."""
    base_metrics = {
        "projects": {"event": "project_completed"},
        "logins": {"event": "login", "owner": "growth"},
    }
    content = {
        "name": "events-test",
        "period": definitions.pop("period", "week"),
        "segment": "plan",
        "north_star": "projects",
        "inputs": {"logins": []},
        "candidates": list(candidates or metrics),
        "source": definitions.pop(
            "source",
            {
                "events": "events.parquet",
                "columns": {"timestamp": "ts", "account_id": "account", "event": "name"},
                "accounts": "accounts.parquet",
                "account_columns": {"started_at": "created_at", "churned_at": "churned_at"},
            },
        ),
        "calendar": definitions.pop("calendar", {"start": START.date(), "end": LAST_DAY.date()}),
        "metrics": {**base_metrics, **metrics},
        "churn": definitions.pop("churn", {"rule": "end_date"}),
        **definitions,
    }
    path = tmp_path / "tree.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def write_log(tmp_path: Path, events: pd.DataFrame, accounts: pd.DataFrame) -> None:
    """Write the log as a warehouse would: timestamps in micro-seconds (Spark's precision)."""
    for frame, name in ((events, "events"), (accounts, "accounts")):
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False, coerce_timestamps="us")


def week_of(stamps: pd.Series) -> pd.Series:
    return stamps.dt.normalize() - pd.to_timedelta(stamps.dt.day_of_week, "D")


def reference_grid(accounts: pd.DataFrame, observed_until=END) -> pd.DataFrame:
    """The panel's rows by the end-date rule, in numpy.

    Per account every week from the week it started (or the first week) to the week holding
    the last moment before it churned (or the last week); churned in that week.
    """
    last = START + pd.Timedelta(days=7 * (WEEKS - 1))
    start = week_of(accounts["created_at"]).clip(lower=START).to_numpy("datetime64[ns]")
    churned = (accounts["churned_at"] <= observed_until).to_numpy()  # False when not churned
    end = week_of(accounts["churned_at"] - pd.Timedelta(1, "us")).where(churned, last)
    end = end.to_numpy("datetime64[ns]")
    weeks = np.maximum((end - start) // np.timedelta64(7, "D") + 1, 0)
    row = np.repeat(np.arange(len(accounts)), weeks)
    week = np.arange(len(row)) - np.repeat(np.cumsum(weeks) - weeks, weeks)
    period = start[row] + week * np.timedelta64(7, "D")
    return pd.DataFrame(
        {
            "account_id": accounts["account_id"].to_numpy()[row],
            "period": period,
            "plan": accounts["plan"].to_numpy()[row],
            "churned": (churned[row] & (period == end[row])).astype(int),
        }
    )


def per_period(events: pd.DataFrame, value: pd.Series | None = None) -> pd.Series:
    """Sum of ``value`` (count of events without one) per (account, week)."""
    key = [events["account"].rename("account_id"), week_of(events["ts"]).rename("period")]
    values = pd.Series(1.0, index=events.index) if value is None else value
    return values.groupby(key).sum()


def attach(grid: pd.DataFrame, name: str, values: pd.Series) -> None:
    index = pd.MultiIndex.from_frame(grid[["account_id", "period"]])
    grid[name] = values.reindex(index).fillna(0.0).to_numpy()


def assert_same(built: pd.DataFrame, expected: pd.DataFrame, columns) -> None:
    built = built.sort_values(["account_id", "period"], ignore_index=True)
    expected = expected.sort_values(["account_id", "period"], ignore_index=True)
    assert built["account_id"].tolist() == expected["account_id"].tolist()
    assert (built["period"].to_numpy() == expected["period"].to_numpy()).all()
    for c in columns:
        np.testing.assert_allclose(
            built[c].to_numpy(float), expected[c].to_numpy(float), rtol=1e-12, err_msg=c
        )


@pytest.fixture(scope="module")
def log():
    return random_log(seed=5)


@pytest.fixture(scope="module")
def log_files(tmp_path_factory, log):
    """The log written once (tests that change it write their own)."""
    out = tmp_path_factory.mktemp("log")
    write_log(out, *log)
    return out


@pytest.fixture
def case(tmp_path, log, log_files):
    events, accounts = log
    for name in ("events.parquet", "accounts.parquet"):
        shutil.copyfile(log_files / name, tmp_path / name)
    return tmp_path, events.copy(), accounts.copy()


# --------------------------------------------------------------------------- aggregates


def test_count_unique_users_sum_and_where_match_pandas(case):
    tmp, events, accounts = case
    path = tree_file(
        tmp,
        {
            "ios_projects": {"event": "project_completed", "where": "platform = 'ios'"},
            "builders": {
                "event": ["project_completed", "project_created"],
                "aggregate": "unique_users",
            },
            "revenue": {"event": "invoice_paid", "aggregate": "sum", "column": "amount"},
        },
        source={
            "events": "events.parquet",
            "columns": {"timestamp": "ts", "account_id": "account", "event": "name"},
            "accounts": "accounts.parquet",
            "account_columns": {"started_at": "created_at", "churned_at": "churned_at"},
        },
    )
    built = build_panel(path)
    expected = reference_grid(accounts)
    done = events["name"] == "project_completed"
    attach(expected, "projects", per_period(events[done]))
    attach(expected, "logins", per_period(events[events["name"] == "login"]))
    attach(expected, "ios_projects", per_period(events[done & (events["platform"] == "ios")]))
    building = events[events["name"].isin(["project_completed", "project_created"])]
    key = [building["account"].rename("account_id"), week_of(building["ts"]).rename("period")]
    attach(expected, "builders", building["user_id"].groupby(key).nunique())
    paid = events[events["name"] == "invoice_paid"]
    attach(expected, "revenue", per_period(paid, paid["amount"]))
    assert_same(
        built.frame,
        expected,
        ["projects", "logins", "ios_projects", "builders", "revenue", "churned"],
    )
    assert list(built.frame.columns) == [
        "account_id",
        "period",
        "plan",
        "projects",
        "logins",
        "ios_projects",
        "builders",
        "revenue",
        "churned",
    ]
    check_frame(built.frame, built.panel.tree)
    assert built.panel.frame["segment"].isin(["free", "team"]).all()


def test_ratio_matches_pandas_and_zero_denominator_is_named(case):
    tmp, events, accounts = case
    ratio = {
        "numerator": {"event": "project_completed"},
        "denominator": {"event": "project_created"},
    }
    path = tree_file(tmp, {"completion": {**ratio, "zero_denominator": "zero"}})
    built = build_panel(path)
    expected = reference_grid(accounts)
    attach(expected, "num", per_period(events[events["name"] == "project_completed"]))
    attach(expected, "den", per_period(events[events["name"] == "project_created"]))
    ratio_values = np.where(
        expected["den"] > 0, expected["num"] / expected["den"].where(expected["den"] > 0, 1.0), 0.0
    )
    expected["completion"] = ratio_values
    assert_same(built.frame, expected, ["completion"])
    assert (expected["den"] == 0).any(), "the log should have periods without a creation"

    path = tree_file(tmp, {"completion": ratio})
    with pytest.raises(DataError) as err:
        build_panel(path)
    message = err.value.message
    zero = expected.loc[expected["den"] == 0].sort_values(["account_id", "period"])
    assert (
        f"metrics.completion.denominator: zero (count of project_created) in {len(zero):,}"
        in message
    )
    first = zero.iloc[0]
    assert f"({first['account_id']}, {first['period']:%Y-%m-%d})" in message
    assert "zero_denominator: zero" in message


def test_at_least_within_the_period_gives_0_or_1(case):
    tmp, events, accounts = case
    path = tree_file(tmp, {"active3": {"event": "project_completed", "at_least": 3}})
    built = build_panel(path)
    expected = reference_grid(accounts)
    attach(expected, "n", per_period(events[events["name"] == "project_completed"]))
    expected["active3"] = (expected["n"] >= 3).astype(float)
    assert_same(built.frame, expected, ["active3"])
    assert set(built.frame["active3"]) == {0.0, 1.0}


def test_rolling_window_and_threshold_over_it_match_pandas(case):
    tmp, events, accounts = case
    path = tree_file(
        tmp,
        {
            "projects_30d": {"event": "project_completed", "window": "30 days"},
            "teams_3_in_30d": {"event": "project_completed", "window": "30d", "at_least": 3},
            "revenue_4w": {
                "event": "invoice_paid",
                "aggregate": "sum",
                "column": "amount",
                "window": "4 weeks",
            },
        },
    )
    built = build_panel(path)
    expected = reference_grid(accounts)
    done = events[events["name"] == "project_completed"]
    paid = events[events["name"] == "invoice_paid"]
    period_end = expected["period"] + pd.Timedelta(days=7)  # exclusive: midnight after the last day

    def rolling(subset: pd.DataFrame, days: int, value: str | None) -> np.ndarray:
        """Per row: the events of its account at or after ``end - days`` and before ``end``."""
        out = np.zeros(len(expected))
        ends = period_end.to_numpy()
        of_account = dict(list(subset.groupby("account")))
        for acct, rows in expected.groupby("account_id").indices.items():
            if acct not in of_account:
                continue
            own = of_account[acct].sort_values("ts", kind="stable")
            stamps = own["ts"].to_numpy()
            after = np.searchsorted(stamps, ends[rows] - np.timedelta64(days, "D"), side="left")
            before = np.searchsorted(stamps, ends[rows], side="left")
            if value:
                values = own[value].to_numpy()
                out[rows] = [values[lo:hi].sum() for lo, hi in zip(after, before, strict=True)]
            else:
                out[rows] = before - after
        return out

    expected["projects_30d"] = rolling(done, 30, None)
    expected["teams_3_in_30d"] = (expected["projects_30d"] >= 3).astype(float)
    expected["revenue_4w"] = rolling(paid, 28, "amount")
    assert_same(built.frame, expected, ["projects_30d", "teams_3_in_30d", "revenue_4w"])
    assert built.frame["teams_3_in_30d"].between(0, 1).all()
    assert 0 < built.frame["teams_3_in_30d"].mean() < 1


# --------------------------------------------------------------------------- exclusions


def test_exclusions_of_accounts_by_id_and_filter_and_of_events(case):
    tmp, events, accounts = case
    staff = events.index[events["account"].isin(["a00", "a05"])][:2]
    doubled = pd.concat([events, events.loc[staff]], ignore_index=True)  # excluded: not reported
    write_log(tmp, doubled, accounts)
    path = tree_file(
        tmp,
        {},
        exclude={
            "accounts": ["a05"],
            "accounts_where": "internal",
            "events_where": "platform = 'web' AND name = 'login'",
        },
    )
    built = build_panel(path)
    gone = {"a00", "a01", "a05"}
    kept_accounts = accounts[~accounts["account_id"].isin(gone)]
    kept = events[~events["account"].isin(gone)]
    kept = kept[~((kept["platform"] == "web") & (kept["name"] == "login"))]
    expected = reference_grid(kept_accounts)
    attach(expected, "projects", per_period(kept[kept["name"] == "project_completed"]))
    attach(expected, "logins", per_period(kept[kept["name"] == "login"]))
    assert_same(built.frame, expected, ["projects", "logins", "churned"])
    assert not set(built.frame["account_id"]) & gone
    excluded = built.summary["events"]["read"] - built.summary["events"]["kept"]
    assert excluded == len(doubled) - len(kept)


# --------------------------------------------------------------------------- churn


def test_churn_from_the_end_date_with_censoring(case):
    tmp, events, accounts = case
    observed_until = START + pd.Timedelta(days=7 * 8)  # two weeks earlier than the data
    path = tree_file(
        tmp,
        {},
        calendar={"start": START.date(), "end": (observed_until - pd.Timedelta(days=1)).date()},
    )
    built = build_panel(path)
    frame = built.frame
    assert frame["period"].max() == observed_until - pd.Timedelta(days=7)
    late = accounts["churned_at"] > observed_until
    censored = accounts.loc[late | accounts["churned_at"].isna(), "account_id"]
    churned = accounts.loc[accounts["churned_at"] <= observed_until, "account_id"]
    last_rows = frame.groupby("account_id").tail(1).set_index("account_id")
    assert (last_rows.loc[list(censored), "churned"] == 0).all()
    assert (last_rows.loc[list(censored), "period"] == frame["period"].max()).all()
    assert (last_rows.loc[list(churned), "churned"] == 1).all()
    assert frame["churned"].sum() == len(churned) > 0
    assert built.summary["censored"] == len(censored)
    # the churn week is the one holding the last moment before churned_at
    ends = accounts.set_index("account_id").loc[list(churned), "churned_at"]
    assert (last_rows.loc[list(churned), "period"] == week_of(ends - pd.Timedelta(1, "us"))).all()


def test_churn_after_periods_without_an_activity_with_censoring(case):
    tmp, events, accounts = case
    rule = {"rule": "inactivity", "periods": 3, "event": "invoice_paid"}
    path = tree_file(tmp, {}, churn=rule)
    built = build_panel(path)
    last = START + pd.Timedelta(days=7 * (WEEKS - 1))
    paid = events[events["name"] == "invoice_paid"]
    last_paid = week_of(paid["ts"]).groupby(paid["account"]).max()
    rows = []
    for acct in accounts.itertuples():
        start = max(START, week_of(pd.Series([acct.created_at]))[0])
        reference = last_paid.get(acct.account_id, start)
        churned = reference + pd.Timedelta(days=7 * 3) <= last
        end = reference if churned else last
        for period in pd.date_range(start, end, freq="7D"):
            rows.append((acct.account_id, period, int(churned and period == end)))
    expected = pd.DataFrame(rows, columns=["account_id", "period", "churned"])
    assert_same(built.frame, expected, ["churned"])
    assert 0 < expected["churned"].sum() < ACCOUNTS
    assert built.summary["churn_rule"].startswith("inactivity: 3 week(s) without invoice_paid")


# --------------------------------------------------------------------------- calendar


def test_months_sunday_weeks_and_time_zones(tmp_path, log):
    events, accounts = log
    events, accounts = events.copy(), accounts.copy()
    events["ts"] = events["ts"].dt.tz_localize("UTC")  # absolute instants
    for column in ("created_at", "churned_at"):
        accounts[column] = accounts[column].dt.tz_localize("UTC")
    write_log(tmp_path, events, accounts)
    zone = "America/New_York"
    calendar = {"timezone": zone, "week_start": "sunday"}
    built = build_panel(
        tree_file(
            tmp_path,
            {},
            calendar=calendar,
            churn={"rule": "inactivity", "periods": 2, "event": "login"},
        )
    )
    local = events["ts"].dt.tz_convert(zone).dt.tz_localize(None)
    sunday = local.dt.normalize() - pd.to_timedelta((local.dt.day_of_week + 1) % 7, "D")
    done = events["name"] == "project_completed"
    counts = (
        pd.Series(1.0, index=events.index)[done]
        .groupby([events["account"][done], sunday[done]])
        .sum()
    )
    frame = built.frame.set_index(["account_id", "period"])
    assert (frame.index.get_level_values("period").day_of_week == 6).all()
    shared = counts.index.intersection(frame.index)
    assert len(shared) > 0.9 * len(counts)
    np.testing.assert_array_equal(frame.loc[shared, "projects"], counts.loc[shared])

    # months: the same log stretched four times longer (ten months)
    def stretch(stamps: pd.Series) -> pd.Series:
        return START.tz_localize("UTC") + (stamps - START.tz_localize("UTC")) * 4

    events["ts"] = stretch(events["ts"])
    for column in ("created_at", "churned_at"):
        accounts[column] = stretch(accounts[column])
    write_log(tmp_path, events, accounts)
    monthly = build_panel(
        tree_file(
            tmp_path,
            {},
            period="month",
            calendar={"timezone": zone},
            churn={"rule": "inactivity", "periods": 1, "event": "login"},
        )
    )
    assert (monthly.frame["period"].dt.day == 1).all()
    assert monthly.frame["period"].nunique() >= 9
    local = events["ts"].dt.tz_convert(zone).dt.tz_localize(None)
    months = local.dt.to_period("M").dt.start_time
    per_month = (
        pd.Series(1.0, index=events.index)[done]
        .groupby([events["account"][done], months[done]])
        .sum()
    )
    frame = monthly.frame.set_index(["account_id", "period"])
    shared = per_month.index.intersection(frame.index)
    np.testing.assert_array_equal(frame.loc[shared, "projects"], per_month.loc[shared])


def test_csv_text_timestamps_with_offsets_are_converted(tmp_path, log):
    events, accounts = log
    text = events.copy()
    text["ts"] = (events["ts"] - pd.Timedelta(hours=2)).dt.strftime("%Y-%m-%dT%H:%M:%S") + "-02:00"
    text.to_csv(tmp_path / "events.csv", index=False)
    accounts.to_csv(tmp_path / "accounts.csv", index=False)
    source = {
        "events": "events.csv",
        "columns": {"timestamp": "ts", "account_id": "account", "event": "name"},
        "accounts": "accounts.csv",
        "account_columns": {"started_at": "created_at", "churned_at": "churned_at"},
    }
    built = build_panel(tree_file(tmp_path, {}, source=source))
    expected = reference_grid(accounts)
    attach(expected, "projects", per_period(events[events["name"] == "project_completed"]))
    assert_same(built.frame, expected, ["projects", "churned"])


def test_a_duckdb_table_is_a_source(tmp_path, log):
    events, accounts = log
    database = tmp_path / "product.duckdb"
    with duckdb.connect(str(database)) as con:
        con.register("events_frame", events)
        con.execute("CREATE TABLE events AS SELECT * FROM events_frame")
    accounts.to_parquet(tmp_path / "accounts.parquet", index=False)
    source = {
        "events": {"database": "product.duckdb", "table": "events"},
        "columns": {"timestamp": "ts", "account_id": "account", "event": "name"},
        "accounts": "accounts.parquet",
        "account_columns": {"started_at": "created_at", "churned_at": "churned_at"},
    }
    built = build_panel(tree_file(tmp_path, {}, source=source))
    expected = reference_grid(accounts)
    attach(expected, "logins", per_period(events[events["name"] == "login"]))
    assert_same(built.frame, expected, ["logins"])
    wrong = {**source, "events": {"database": "product.duckdb", "table": "event"}}
    with pytest.raises(
        DataError, match=r"source.events.table: no table 'event'.*did you mean 'events'"
    ):
        build_panel(tree_file(tmp_path, {}, source=wrong))


def test_a_session_leaves_nothing_to_the_next(tmp_path):
    """What one session attached, created or registered is not in the next; its files are let go."""
    database = tmp_path / "product.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("CREATE TABLE events AS SELECT 1 AS x")
    listed = (
        "SELECT database_name FROM duckdb_databases() WHERE NOT internal",
        "SELECT table_name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views() "
        "WHERE NOT internal",
    )
    with Session("first") as session:
        before = [session.con.execute(query).fetchall() for query in listed]
        session.run(sql.attach(str(database), "events_db"))
        session.run(sql.view("kept", exp.select(exp.Literal.number(1)), kind="TABLE"))
        session.run(sql.view("seen", exp.select(exp.Literal.number(2))))
        session.con.register("frame", pd.DataFrame({"a": [1]}))
        assert [session.con.execute(query).fetchall() for query in listed] != before
    for _ in range(2):
        with Session("next") as session:
            assert [session.con.execute(query).fetchall() for query in listed] == before
            session.run(sql.attach(str(database), "events_db"))  # the name is free again
            assert session.rows(exp.select("*").from_(exp.table_("events", db="events_db")))
    with duckdb.connect(str(database)) as con:  # and the file is no longer held
        con.execute("INSERT INTO events VALUES (2)")


# --------------------------------------------------------------------------- bad input


def _problems(tmp_path, events, accounts, metrics=None, **definitions) -> str:
    write_log(tmp_path, events, accounts)
    with pytest.raises(DataError) as err:
        build_panel(tree_file(tmp_path, metrics or {}, **definitions))
    return err.value.message


def test_unknown_event_name_and_empty_definition_are_named(case):
    tmp, events, accounts = case
    message = _problems(
        tmp,
        events,
        accounts,
        {
            "typo": {"event": "project_complete"},
            "nothing": {"event": "login", "where": "platform = 'android'"},
        },
    )
    assert (
        "metrics.typo.event: 'project_complete' is not an event of the source "
        "(did you mean 'project_completed'?)" in message
    )
    assert "metrics.nothing: the definition matches no event" in message
    assert "platform = 'android'" in message


def test_missing_columns_are_named_with_did_you_mean(case):
    tmp, events, accounts = case
    source = {
        "events": "events.parquet",
        "columns": {"timestamp": "timestamp", "account_id": "account", "event": "name"},
        "accounts": "accounts.parquet",
        "account_columns": {"started_at": "created", "churned_at": "churned_at"},
    }
    message = _problems(
        tmp,
        events,
        accounts,
        {
            "revenue": {"event": "invoice_paid", "aggregate": "sum", "column": "amunt"},
            "users": {"event": "login", "aggregate": "unique_users", "where": "platfrm = 'ios'"},
        },
        source=source,
    )
    assert "source.columns.timestamp: the event log has no column 'timestamp'" in message
    assert (
        "metrics.revenue.column: the event log has no column 'amunt' (did you mean 'amount'?)"
        in message
    )
    assert "metrics.users.where: no column 'platfrm' (did you mean 'platform'?)" in message
    assert "the filter can read account_id, user_id, event, ts, account, name, platform" in message
    assert (
        "source.account_columns.started_at: the accounts table has no column 'created' "
        "(did you mean 'created_at'?)" in message
    )


def test_unknown_accounts_duplicates_and_events_outside_lifetimes(case):
    tmp, events, accounts = case
    stray = events.iloc[[0]].assign(account="zz99")
    copy = events.iloc[[5, 5]]
    alive = accounts.set_index("account_id")
    victim = accounts.loc[accounts["churned_at"].notna() & ~accounts["internal"]].iloc[0]
    late = events.iloc[[1]].assign(
        account=victim.account_id, ts=victim.churned_at + pd.Timedelta(hours=1)
    )
    early_acct = accounts.loc[~accounts["internal"]].iloc[-1]
    early = events.iloc[[2]].assign(
        account=early_acct.account_id,
        ts=alive.loc[early_acct.account_id, "created_at"] - pd.Timedelta(hours=5),
    )
    bad = pd.concat([events, stray, copy, late, early], ignore_index=True)
    message = _problems(tmp, bad, accounts)
    assert (
        "source.columns.account_id (column 'account'): account missing from the accounts "
        "table in 1 event(s)" in message
    )
    assert "(zz99, " in message
    assert "source.events: duplicate events: 1 event(s) appear more than once (3 rows)" in message
    assert f"({events.iloc[5]['account']}, " in message
    assert (
        "source.account_columns.churned_at (column 'churned_at'): event at or after the "
        "account's churned_at in 1 event(s)" in message
    )
    assert f"({victim.account_id}, " in message
    assert "event before the account's started_at in 1 event(s)" in message
    assert f"({early_acct.account_id}, " in message


def test_unreadable_and_mixed_time_zones_are_named(tmp_path, log):
    events, accounts = log
    text = events.copy()
    text["ts"] = events["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")
    text.loc[[3, 4], "ts"] = text.loc[[3, 4], "ts"] + "+01:00"
    text.loc[7, "ts"] = "yesterday at noon"
    text.to_csv(tmp_path / "events.csv", index=False)
    accounts.to_csv(tmp_path / "accounts.csv", index=False)
    source = {
        "events": "events.csv",
        "columns": {"timestamp": "ts", "account_id": "account", "event": "name"},
        "accounts": "accounts.csv",
        "account_columns": {"started_at": "created_at", "churned_at": "churned_at"},
    }
    with pytest.raises(DataError) as err:
        build_panel(tree_file(tmp_path, {}, source=source))
    message = err.value.message
    assert "source.columns.timestamp (column 'ts'): unreadable timestamp in 1 event(s)" in message
    assert "yesterday at noon" in message
    assert "mixed time zones: 2 timestamps carry a zone offset" in message
    assert text.loc[3, "ts"] in message


def test_nothing_is_written_when_the_build_fails(case):
    tmp, events, accounts = case
    path = tree_file(tmp, {"typo": {"event": "logn"}})
    out = tmp / "panel.parquet"
    with pytest.raises(DataError):
        command.build(path, out=out)
    assert not out.exists()
    assert not [p for p in tmp.iterdir() if p.name.startswith(".panel")]


# --------------------------------------------------------------------------- the schema


BROKEN = {
    "unknown top-level key": ({"sorce": {}}, ["sorce: unknown key (did you mean 'source'?)"]),
    "unknown metric key": (
        {"metrics": {"projects": {"event": "x", "agregate": "count"}}},
        ["metrics.projects.agregate: unknown key (did you mean 'aggregate'?)"],
    ),
    "sum without a column": (
        {"metrics": {"projects": {"event": "x", "aggregate": "sum"}}},
        ["metrics.projects: column: required with aggregate: sum"],
    ),
    "threshold on a ratio": (
        {
            "metrics": {
                "projects": {
                    "numerator": {"event": "x"},
                    "denominator": {"event": "y"},
                    "at_least": 2,
                }
            }
        },
        ["metrics.projects: at_least and window apply to an aggregate, not to a ratio"],
    ),
    "window of unique users": (
        {"metrics": {"projects": {"event": "x", "aggregate": "unique_users", "window": 7}}},
        ["window: a rolling window counts events or sums; not unique_users"],
    ),
    "unreadable window": (
        {"metrics": {"projects": {"event": "x", "window": "a fortnight"}}},
        ["metrics.projects.window: expected a length such as '30 days'"],
    ),
    "a function in a filter": (
        {"exclude": {"events_where": "lower(name) = 'x'"}},
        ["exclude.events_where: 'LOWER(name)' is not allowed in a filter"],
    ),
    "a subquery in a filter": (
        {"metrics": {"projects": {"event": "x", "where": "a IN (SELECT 1)"}}},
        ["metrics.projects.where:", "is not allowed in a filter"],
    ),
    "unknown zone": (
        {"calendar": {"timezone": "Europe/Paris2"}},
        ["calendar.timezone: 'Europe/Paris2' is not a time zone"],
    ),
    "start off the week": (
        {"calendar": {"start": "2025-01-07"}},
        ["calendar.start: 2025-01-07 is a tuesday; weekly periods start on a monday"],
    ),
    "a metric of no tree": (
        {
            "metrics": {
                "projects": {"event": "x"},
                "logins": {"event": "y"},
                "projcts": {"event": "z"},
            }
        },
        ["metrics.projcts: not a metric of the tree (did you mean 'projects'?)"],
    ),
    "a metric without definition": (
        {"metrics": {"projects": {"event": "x"}}},
        ["metrics.logins: required: 'logins' is a column of the tree's panel"],
    ),
    "churn rule unknown": (
        {"churn": {"rule": "when_they_leave"}},
        ["churn:", "'end_date', 'inactivity'"],
    ),
    "end date without the column": (
        {"source": {"events": "e.parquet", "accounts": "a.parquet"}},
        ["source.account_columns.churned_at: required by churn.rule end_date"],
    ),
    "segment without accounts": (
        {
            "source": {"events": "e.parquet"},
            "churn": {"rule": "inactivity", "periods": 2, "event": "x"},
        },
        ["source.accounts: required: the tree's segment column 'plan'"],
    ),
}


def _tree_content(**changes) -> dict:
    content = {
        "name": "t",
        "period": "week",
        "segment": "plan",
        "north_star": "projects",
        "inputs": {"logins": []},
        "source": {
            "events": "e.parquet",
            "accounts": "a.parquet",
            "account_columns": {"churned_at": "churned_at"},
        },
        "metrics": {"projects": {"event": "x"}, "logins": {"event": "y"}},
        "churn": {"rule": "end_date"},
    }
    return {**content, **changes}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_definitions_say_where_and_what(tmp_path, name):
    changes, expected = BROKEN[name]
    path = tmp_path / "tree.yaml"
    path.write_text(yaml.safe_dump(_tree_content(**changes)))
    with pytest.raises(SpecError) as err:
        load_definitions(path)
    for text in expected:
        assert text in err.value.message, err.value.message


def test_definitions_may_live_in_a_metrics_file(tmp_path):
    content = _tree_content()
    definitions = definitions_part(content)
    (tmp_path / "metrics.yaml").write_text(yaml.safe_dump(definitions))
    path = tmp_path / "tree.yaml"
    path.write_text(yaml.safe_dump({**tree_part(content), "metrics": "metrics.yaml"}))
    td = load_definitions(path)
    assert set(td.definitions.metrics) == {"projects", "logins"}
    assert td.tree.north_star == "projects"
    path.write_text(yaml.safe_dump({**tree_part(content), "metrics": "missing.yaml"}))
    with pytest.raises(SpecError, match="metrics: metrics file .*missing.yaml.* not found"):
        load_definitions(path)


def test_a_filter_is_a_parsed_condition_never_text():
    assert parse_filter("plan IN ('a', 'b') AND NOT internal").sql("duckdb") == (
        "\"plan\" IN ('a', 'b') AND NOT \"internal\""
    )
    for text in ("1; DROP TABLE events", "x = (SELECT 1)", "t.x = 1", "read_csv('x') = 1"):
        with pytest.raises(ValueError):
            parse_filter(text)


# --------------------------------------------------------------------------- the synthetic world


@pytest.fixture(scope="module")
def synthetic(synthetic_events):
    """The synthetic world's events: their folder and the paths written."""
    return synthetic_events["tree"].parent, synthetic_events


def test_the_synthetic_events_build_back_the_worlds_panel_column_by_column(
    synthetic, synthetic_build
):
    out, paths = synthetic
    assert sorted(p.name for p in out.iterdir()) == [
        "accounts.parquet",
        "events.parquet",
        "panel.parquet",
        "tree.yaml",
        "truth.json",
    ]
    world = generate_world(**SYNTHETIC)
    expected = check_frame(world.panel, world.tree)
    built = synthetic_build
    for column in expected.frame.columns:
        pd.testing.assert_series_equal(built.panel.frame[column], expected.frame[column])
    assert built.panel.fingerprint == expected.fingerprint
    written = load_panel(paths["panel"], world.tree)
    assert written.fingerprint == expected.fingerprint
    assert built.summary["events"]["read"] > built.summary["events"]["kept"]  # internal accounts


def test_the_build_command_writes_a_panel_that_loads(synthetic, synthetic_build, tmp_path, capsys):
    out, paths = synthetic
    target = tmp_path / "built" / "panel.csv"
    command.build(paths["tree"], out=target, show_sql=True)
    printed = capsys.readouterr()
    assert "CREATE OR REPLACE TEMPORARY TABLE measures AS" in printed.out
    assert "CREATE OR REPLACE TEMPORARY VIEW events_all AS" in printed.out
    assert "READ_PARQUET" in printed.out
    assert "churned" in printed.err and "censored at the end of the data" in printed.err
    td = load_definitions(paths["tree"])
    reread = load_panel(target, td.tree)
    assert reread.fingerprint == synthetic_build.panel.fingerprint
    assert command.panel_for(paths["tree"], None).fingerprint == reread.fingerprint
    assert command.panel_for(paths["tree"], target).fingerprint == reread.fingerprint
    facts = command.check_events(paths["tree"])
    assert facts["metrics"]["revenue"]["definition"] == "sum of amount of invoice_paid"
    assert facts["metrics"]["revenue"]["owner"] == "finance"


def test_the_build_command_refuses_what_it_cannot_do(synthetic, tmp_path):
    out, paths = synthetic
    with pytest.raises(InputError, match="unknown engine 'duckbd' \\(did you mean 'duckdb'\\?\\)"):
        command.build(paths["tree"], out=tmp_path / "p.parquet", engine="duckbd")
    with pytest.raises(InputError, match="expected a .parquet or .csv file"):
        command.build(paths["tree"], out=tmp_path / "p.xlsx")
    with pytest.raises(InputError, match="--out"):
        command.build(paths["tree"])
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(tree_part(yaml.safe_load(paths["tree"].read_text()))))
    with pytest.raises(InputError, match="defines no metrics from events"):
        command.panel_for(plain, None)


def test_account_ids_of_different_types_are_matched_as_text(tmp_path, log):
    events, accounts = log
    numbered = {a: i for i, a in enumerate(accounts["account_id"])}
    events = events.assign(account=events["account"].map(numbered).astype("int64"))
    accounts = accounts.assign(account_id=accounts["account_id"].map(numbered).astype(str))
    write_log(tmp_path, events, accounts)
    built = build_panel(tree_file(tmp_path, {}))
    expected = reference_grid(accounts)
    attach(
        expected,
        "projects",
        per_period(events[events["name"] == "project_completed"].astype({"account": str})),
    )
    assert_same(built.frame, expected, ["projects", "churned"])


def test_a_query_the_engine_refuses_is_a_message_not_a_traceback(case):
    tmp, events, accounts = case
    path = tree_file(tmp, {"odd": {"event": "login", "where": "platform = 3"}})
    with pytest.raises(DataError, match="the query engine refused a query: Conversion Error"):
        build_panel(path)
