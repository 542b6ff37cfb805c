"""Build time and peak memory from events to the panel, at 1M, 10M and 100M events, and pandas.

Run: ``python benchmarks/bench_build.py`` (``--sizes 1e6 1e7`` for fewer). Each size's event
log is generated once, in chunks, as Parquet files under ``/tmp/nsm-sim-bench/`` (kept for the
next run; ``--fresh`` writes them again): 20,000 accounts over 52 weeks (a fifth joining
later, a third churning), events uniform over each account's lifetime, six event names, a
user, a platform and an amount; three internal accounts, excluded.

The tree defines a count with a filter, distinct users, a sum, a ratio, a rolling 30-day
threshold and churn from the accounts' end dates. Each build runs in a fresh process:
``nsm_sim.events.build_panel`` (DuckDB, every check of the source included) and the same
aggregation written in pandas (no checks). Wall time and the process's peak resident memory
are printed as a markdown table; at the smallest size the two panels are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from nsm_sim.numeric import stream

ROOT = Path("/tmp/nsm-sim-bench")
ACCOUNTS = 20_000
INTERNAL = 3
WEEKS = 52
START = pd.Timestamp("2025-01-06")
CHUNK = 5_000_000
NAMES = [
    "project_completed",
    "project_created",
    "login",
    "invite_sent",
    "board_shared",
    "invoice_paid",
]
SHARES = [0.15, 0.15, 0.45, 0.1, 0.13, 0.02]
PLATFORMS = ["web", "ios", "android"]
_US = 1_000_000
_WEEK_US = 7 * 86_400 * _US

TREE = {
    "name": "bench",
    "period": "week",
    "segment": "plan",
    "north_star": "projects_completed",
    "inputs": {"active_users": [], "mobile_logins": []},
    "candidates": ["revenue", "completion_rate", "teams_3_in_30d"],
    "source": {
        "events": "events/*.parquet",
        "columns": {
            "timestamp": "ts",
            "account_id": "account_id",
            "user_id": "user_id",
            "event": "event",
        },
        "accounts": "accounts.parquet",
        "account_columns": {
            "segment": "plan",
            "started_at": "created_at",
            "churned_at": "churned_at",
        },
    },
    "calendar": {
        "timezone": "UTC",
        "start": START.date(),
        "end": (START + pd.Timedelta(days=7 * WEEKS - 1)).date(),
    },
    "metrics": {
        "projects_completed": {"event": "project_completed"},
        "active_users": {
            "event": ["project_completed", "project_created", "board_shared"],
            "aggregate": "unique_users",
        },
        "mobile_logins": {"event": "login", "where": "platform IN ('ios', 'android')"},
        "revenue": {"event": "invoice_paid", "aggregate": "sum", "column": "amount"},
        "completion_rate": {
            "numerator": {"event": "project_completed"},
            "denominator": {"event": "project_created"},
            "zero_denominator": "zero",
        },
        "teams_3_in_30d": {"event": "project_completed", "at_least": 3, "window": "30 days"},
    },
    "exclude": {"accounts_where": "internal"},
    "churn": {"rule": "end_date"},
}


def _accounts(seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Accounts with their lifetimes (microseconds since START)."""
    rng = stream(seed, 0)
    n = ACCOUNTS + INTERNAL
    joins = np.where(rng.random(n) < 0.8, 0, rng.integers(1, WEEKS, n)) * _WEEK_US
    joins[-INTERNAL:] = 0
    span = WEEKS * _WEEK_US
    churn = rng.random(n) < 0.33
    churn[-INTERNAL:] = False
    ends = np.where(churn, joins + rng.integers(_WEEK_US, span, n), span)
    churned = churn & (ends < span)
    ends = np.minimum(ends, span)
    accounts = pd.DataFrame(
        {
            "account_id": [f"acct_{i:05d}" for i in range(n)],
            "plan": np.asarray(["free", "team", "enterprise"])[rng.integers(0, 3, n)],
            "created_at": (START + pd.to_timedelta(joins, "us")).tz_localize("UTC"),
            "churned_at": pd.Series(START + pd.to_timedelta(ends, "us"))
            .dt.tz_localize("UTC")
            .where(churned),
            "internal": np.arange(n) >= ACCOUNTS,
        }
    )
    return accounts, joins, ends


def generate(events: int, seed: int = 0) -> Path:
    """Write ``events`` events in chunks of Parquet files; return the folder of the tree."""
    folder = ROOT / f"events_{events}"
    if (folder / "tree.yaml").exists():
        return folder
    (folder / "events").mkdir(parents=True, exist_ok=True)
    accounts, joins, ends = _accounts(seed)
    accounts.to_parquet(folder / "accounts.parquet", index=False)
    ids = pa.array(accounts["account_id"], pa.string())
    names, platforms = pa.array(NAMES), pa.array(PLATFORMS)
    weights = stream(seed, 1).lognormal(0.0, 0.8, len(accounts))
    weights *= (ends - joins) / weights.sum()
    weights /= weights.sum()
    for k, first in enumerate(range(0, events, CHUNK)):
        rng = stream(seed, 2, k)
        n = min(CHUNK, events - first)
        who = rng.choice(len(accounts), n, p=weights)
        ts = joins[who] + (rng.random(n) * (ends[who] - joins[who])).astype(np.int64)
        order = np.argsort(ts, kind="stable")
        who, ts = who[order], ts[order]
        kind = rng.choice(len(NAMES), n, p=SHARES)
        amount = np.where(
            kind == NAMES.index("invoice_paid"), np.round(rng.gamma(2, 40, n), 2), np.nan
        )
        table = pa.table(
            {
                "ts": pa.array(START.value // 1000 + ts, pa.timestamp("us", tz="UTC")),
                "account_id": pa.DictionaryArray.from_arrays(pa.array(who, pa.int32()), ids),
                "user_id": pa.array(who.astype(np.int64) * 16 + rng.integers(0, 12, n)),
                "event": pa.DictionaryArray.from_arrays(pa.array(kind, pa.int8()), names),
                "platform": pa.DictionaryArray.from_arrays(
                    pa.array(rng.integers(0, 3, n), pa.int8()), platforms
                ),
                "amount": pa.array(amount, from_pandas=True),
            }
        )
        pq.write_table(table, folder / "events" / f"part-{k:04d}.parquet")
    (folder / "tree.yaml").write_text(yaml.safe_dump(TREE, sort_keys=False))
    return folder


def build_duckdb(folder: Path) -> pd.DataFrame:
    """The build under test."""
    from nsm_sim.events.engine import build_panel

    return build_panel(folder / "tree.yaml").frame


def build_pandas(folder: Path) -> pd.DataFrame:
    """The same aggregation in pandas (no checks of the source)."""
    accounts = pd.read_parquet(folder / "accounts.parquet")
    accounts = accounts[~accounts["internal"]]
    frame = pd.read_parquet(
        folder / "events", columns=["ts", "account_id", "user_id", "event", "platform", "amount"]
    )
    frame = frame[frame["account_id"].isin(accounts["account_id"])]
    ts = frame["ts"].dt.tz_localize(None)
    day = ts.dt.normalize()
    frame["period"] = day - pd.to_timedelta(day.dt.day_of_week, "D")
    event = frame["event"].astype(str)
    done = event == "project_completed"
    key = ["account_id", "period"]
    grouped = (
        pd.DataFrame(
            {
                "projects_completed": done.astype(np.int64),
                "mobile_logins": (
                    (event == "login") & frame["platform"].isin(["ios", "android"])
                ).astype(np.int64),
                "revenue": frame["amount"].where(event == "invoice_paid", 0.0),
                "created": (event == "project_created").astype(np.int64),
                "account_id": frame["account_id"].astype(str),
                "period": frame["period"],
            }
        )
        .groupby(key, sort=False)
        .sum()
    )
    building = frame[event.isin(["project_completed", "project_created", "board_shared"])]
    users = building.groupby([building["account_id"].astype(str), building["period"]])[
        "user_id"
    ].nunique()
    # the grid from the accounts' lifetimes
    last = START + pd.Timedelta(days=7 * (WEEKS - 1))
    created = accounts["created_at"].dt.tz_localize(None)
    first = created.dt.normalize() - pd.to_timedelta(created.dt.day_of_week, "D")
    ended = accounts["churned_at"].dt.tz_localize(None) - pd.Timedelta(1, "us")
    ended_week = ended.dt.normalize() - pd.to_timedelta(ended.dt.day_of_week, "D")
    churned = accounts["churned_at"].notna().to_numpy()
    end = np.where(churned, ended_week, last).astype("datetime64[us]")
    weeks = ((end - first.to_numpy()) // np.timedelta64(7, "D")).astype(np.int64) + 1
    rows = np.repeat(np.arange(len(accounts)), weeks)
    offset = np.arange(len(rows)) - np.repeat(np.cumsum(weeks) - weeks, weeks)
    grid = pd.DataFrame(
        {
            "account_id": accounts["account_id"].to_numpy()[rows],
            "period": first.to_numpy()[rows] + offset * np.timedelta64(7, "D"),
            "plan": accounts["plan"].to_numpy()[rows],
        }
    )
    grid["churned"] = (churned[rows] & (offset == weeks[rows] - 1)).astype(np.int64)
    index = pd.MultiIndex.from_frame(grid[key])
    for name in ("projects_completed", "mobile_logins", "revenue", "created"):
        grid[name] = grouped[name].reindex(index).fillna(0).to_numpy(float)
    grid["active_users"] = users.reindex(index).fillna(0).to_numpy(float)
    grid["completion_rate"] = np.where(
        grid["created"] > 0,
        grid["projects_completed"] / grid["created"].where(grid["created"] > 0, 1),
        0.0,
    )
    # rolling 30 days: daily counts per account, cumulative, read at each period's last day
    daily = frame.loc[done].groupby([frame.loc[done, "account_id"].astype(str), day[done]]).size()
    codes = {a: i for i, a in enumerate(accounts["account_id"])}
    days = WEEKS * 7 + 30
    table = np.zeros((len(accounts), days + 1))
    a_idx = daily.index.get_level_values(0).map(codes).to_numpy()
    d_idx = ((daily.index.get_level_values(1) - START).days + 30).to_numpy()
    np.add.at(table, (a_idx, d_idx + 1), daily.to_numpy())
    cumulative = table.cumsum(axis=1)
    end_day = ((grid["period"] - START).dt.days + 6 + 30).to_numpy() + 1
    g_idx = grid["account_id"].map(codes).to_numpy()
    window = cumulative[g_idx, end_day] - cumulative[g_idx, end_day - 30]
    grid["teams_3_in_30d"] = (window >= 3).astype(float)
    columns = [
        "account_id",
        "period",
        "plan",
        "projects_completed",
        "active_users",
        "mobile_logins",
        "revenue",
        "completion_rate",
        "teams_3_in_30d",
        "churned",
    ]
    return grid[columns]


def measure(engine: str, events: int) -> dict:
    """Time one build in this process; report the wall time and the peak resident memory."""
    folder = ROOT / f"events_{events}"
    started = time.perf_counter()
    frame = (build_duckdb if engine == "duckdb" else build_pandas)(folder)
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss / 1024
    if os.environ.get("NSM_SIM_BENCH_KEEP"):
        frame.to_parquet(Path(os.environ["NSM_SIM_BENCH_KEEP"]), index=False)
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "engine": engine,
        "events": events,
        "wall": wall,
        "cpu": cpu,
        "peak_mb": peak,
        "rows": len(frame),
    }


def run(engine: str, events: int, keep: Path | None = None) -> dict:
    env = {**os.environ, **({"NSM_SIM_BENCH_KEEP": str(keep)} if keep else {})}
    out = subprocess.run(
        [sys.executable, __file__, "--one", engine, str(events)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 1e7, 1e8])
    parser.add_argument(
        "--pandas-up-to", type=float, default=1e7, help="largest size also built with pandas"
    )
    parser.add_argument("--fresh", action="store_true", help="write the event logs again")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]))))
        return
    import duckdb
    import sqlglot

    print(
        f"duckdb {duckdb.__version__}, sqlglot {sqlglot.__version__}, pandas {pd.__version__}; "
        f"{ACCOUNTS:,} accounts x {WEEKS} weeks; load average before: {os.getloadavg()[0]:.2f}\n"
    )
    print(
        "| events | Parquet (MB) | generated (s) | rows | DuckDB build (s) | DuckDB CPU (s) "
        "| DuckDB peak (MB) | pandas (s) | pandas peak (MB) | budget |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for size in args.sizes:
        events = int(size)
        folder = ROOT / f"events_{events}"
        if args.fresh and folder.exists():
            import shutil

            shutil.rmtree(folder)
        started = time.perf_counter()
        fresh = not (folder / "tree.yaml").exists()
        generate(events)
        made = f"{time.perf_counter() - started:.0f}" if fresh else "kept"
        mb = sum(p.stat().st_size for p in (folder / "events").iterdir()) / 2**20
        small = size == min(args.sizes)
        ours = run("duckdb", events, ROOT / "duckdb.parquet" if small else None)
        theirs = (
            run("pandas", events, ROOT / "pandas.parquet" if small else None)
            if size <= args.pandas_up_to
            else None
        )
        if small and theirs:
            a = pd.read_parquet(ROOT / "duckdb.parquet").sort_values(
                ["account_id", "period"], ignore_index=True
            )
            b = pd.read_parquet(ROOT / "pandas.parquet").sort_values(
                ["account_id", "period"], ignore_index=True
            )
            pd.testing.assert_frame_equal(a, b, check_dtype=False, check_exact=False, rtol=1e-12)
        budget = ""
        if events >= 100_000_000:
            ok = ours["wall"] < 120 and ours["peak_mb"] < 4096
            budget = f"< 120 s, < 4,096 MB: {'ok' if ok else 'MISSED'}"
        pandas_cols = f"{theirs['wall']:.1f} | {theirs['peak_mb']:,.0f}" if theirs else "not run | "
        print(
            f"| {events:,} | {mb:,.0f} | {made} | {ours['rows']:,} | {ours['wall']:.1f} | "
            f"{ours['cpu']:.1f} | {ours['peak_mb']:,.0f} | {pandas_cols} | {budget} |",
            flush=True,
        )
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
