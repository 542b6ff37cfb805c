"""The synthetic world as a raw event log: the demo that starts from events.

:func:`world_events` turns a :class:`nsm_sim.synth.World` into what a product has: an event
log, an accounts table, and a tree file whose metric definitions rebuild the world's panel
from them, column by column.

The world's metrics are amounts with three decimals (its model is log-normal), so each
metric is the ``sum`` of a property over its own event: every account-period with a value
gets one to three events of that name whose ``quantity`` (``amount`` for ``invoice_paid``,
the revenue) adds up to it exactly, stored as decimals. Events fall at random seconds inside
their week, by a user of the account. The accounts table holds the plan, ``created_at`` (the
start of the account's first week) and ``churned_at`` (the end of its last week, for those
that churned), and a few internal accounts whose events the definitions exclude.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from nsm_sim.files import dumps, write_files, write_parquet
from nsm_sim.numeric import name_key, stream
from nsm_sim.synth import World, generate_world

#: The event each metric of the demo tree sums, and the property it sums.
EVENTS = {
    "projects_completed": ("project_completed", "quantity"),
    "active_seats": ("seat_active", "quantity"),
    "boards_shared": ("board_shared", "quantity"),
    "integrations_connected": ("integration_connected", "quantity"),
    "invites_sent": ("invite_sent", "quantity"),
    "seats_activated": ("seat_activated", "quantity"),
    "logins": ("login", "quantity"),
    "revenue": ("invoice_paid", "amount"),
}
#: Most events one account-period's value is split into.
MAX_SPLIT = 3
#: Users per account the events are spread over.
USERS_PER_ACCOUNT = 8
#: Internal accounts (staff testing the product), excluded by the definitions.
INTERNAL_ACCOUNTS = 3
_WEEK_SECONDS = 7 * 86_400
_THOUSANDTHS = pa.scalar(Decimal("0.001"), pa.decimal128(4, 3))


@dataclass(frozen=True)
class EventLog:
    """A world as raw data.

    Attributes
    ----------
    events : pyarrow.Table
        ``timestamp`` (UTC), ``account_id``, ``user_id``, ``event``, ``quantity`` and
        ``amount`` (decimals, empty where the event has none), sorted by time.
    accounts : pyarrow.Table
        ``account_id``, ``plan``, ``created_at``, ``churned_at`` (empty while a customer),
        ``internal``.
    tree : dict
        The tree file's content: the world's tree and the metric definitions.
    """

    events: pa.Table
    accounts: pa.Table
    tree: dict[str, Any]


def _period_index(world: World) -> tuple[np.ndarray, pd.DatetimeIndex]:
    start = pd.Timestamp(world.truth["start"])
    dates = pd.DatetimeIndex(start + pd.to_timedelta(7 * np.arange(world.truth["periods"]), "D"))
    t = ((world.panel["period"] - start).dt.days // 7).to_numpy()
    return t, dates


def _split(thousandths: np.ndarray, parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split each amount into ``parts`` whole thousandths; return the row of each piece."""
    row = np.repeat(np.arange(len(thousandths)), parts)
    first = np.repeat(np.cumsum(parts) - parts, parts)
    piece = np.arange(len(row)) - first
    base, extra = np.divmod(thousandths[row], parts[row])
    return row, base + (piece < extra)


def _decimals(thousandths: np.ndarray, present: np.ndarray) -> pa.Array:
    whole = pa.array(thousandths, mask=~present).cast(pa.decimal128(19, 0))
    return pc.multiply(whole, _THOUSANDTHS).cast(pa.decimal128(18, 3))


def world_events(world: World, seed: int) -> EventLog:
    """Turn a synthetic world into an event log, an accounts table and a tree file.

    Parameters
    ----------
    world : World
        From :func:`nsm_sim.synth.generate_world`.
    seed : int
        Seed of the event times, splits and users (streams keyed by metric).

    Returns
    -------
    EventLog
    """
    panel = world.panel
    t, dates = _period_index(world)
    accounts = panel["account_id"].to_numpy()
    pieces: list[pd.DataFrame] = []
    internal = [f"internal_{i}" for i in range(INTERNAL_ACCOUNTS)]
    for metric in world.tree.metrics:
        event, prop = EVENTS[metric]
        rng = stream(seed, name_key("events"), name_key(metric))
        thousandths = np.rint(panel[metric].to_numpy() * 1000).astype(np.int64)
        parts = np.minimum(rng.integers(1, MAX_SPLIT + 1, len(panel)), thousandths)
        row, amount = _split(thousandths, parts)
        staff = np.repeat(np.arange(INTERNAL_ACCOUNTS), len(dates))
        owner = np.concatenate([accounts[row], np.asarray(internal)[staff]])
        period = np.concatenate([t[row], np.tile(np.arange(len(dates)), INTERNAL_ACCOUNTS)])
        amount = np.concatenate([amount, np.full(len(staff), 1000)])
        seconds = rng.integers(0, _WEEK_SECONDS, len(owner))
        users = rng.integers(0, USERS_PER_ACCOUNT, len(owner)).astype(str)
        pieces.append(
            pd.DataFrame(
                {
                    "timestamp": dates[period] + pd.to_timedelta(seconds, "s"),
                    "account_id": owner,
                    "user_id": np.char.add(np.char.add(owner.astype(str), "-u"), users),
                    "event": event,
                    "prop": prop,
                    "thousandths": amount,
                }
            )
        )
    frame = pd.concat(pieces, ignore_index=True).sort_values(
        ["timestamp", "account_id", "event"], kind="stable", ignore_index=True
    )
    stamps = pd.DatetimeIndex(frame["timestamp"]).tz_localize("UTC").as_unit("us")
    events = pa.table(
        {
            "timestamp": pa.array(stamps),
            "account_id": pa.array(frame["account_id"].to_numpy(), pa.string()),
            "user_id": pa.array(frame["user_id"].to_numpy(), pa.string()),
            "event": pa.array(frame["event"].to_numpy(), pa.string()),
            **{
                prop: _decimals(frame["thousandths"].to_numpy(), frame["prop"].eq(prop).to_numpy())
                for prop in ("quantity", "amount")
            },
        }
    )
    return EventLog(events=events, accounts=_accounts(world, t, dates), tree=_tree(world, dates))


def _accounts(world: World, t: np.ndarray, dates: pd.DatetimeIndex) -> pa.Table:
    panel = world.panel
    rows = pd.DataFrame({"account_id": panel["account_id"], "t": t, "churned": panel["churned"]})
    first = rows.groupby("account_id", sort=True).agg(
        first=("t", "min"), last=("t", "max"), churned=("churned", "max")
    )
    plan = panel.groupby("account_id", sort=True)[world.tree.segment].first()
    week = pd.Timedelta(days=7)
    created = dates[first["first"].to_numpy()]
    churned_at = pd.Series(dates[first["last"].to_numpy()] + week).where(
        first["churned"].to_numpy() == 1
    )
    staff = [f"internal_{i}" for i in range(INTERNAL_ACCOUNTS)]
    utc = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "account_id": pa.array([*first.index, *staff], pa.string()),
            "plan": pa.array([*plan.to_numpy(), *["enterprise"] * len(staff)], pa.string()),
            "created_at": pa.array(
                pd.DatetimeIndex([*created, *[dates[0]] * len(staff)]).tz_localize("UTC"), utc
            ),
            "churned_at": pa.array(
                pd.DatetimeIndex([*churned_at, *[pd.NaT] * len(staff)]).tz_localize("UTC"), utc
            ),
            "internal": pa.array([False] * len(first) + [True] * len(staff)),
        }
    )


def _tree(world: World, dates: pd.DatetimeIndex) -> dict[str, Any]:
    tree = {k: v for k, v in world.tree.model_dump(mode="json").items() if v != []}
    metrics = {}
    for metric in world.tree.metrics:
        event, prop = EVENTS[metric]
        metrics[metric] = {
            "description": f"sum of {prop} over {event} events per account and week",
            "owner": "growth" if metric != "revenue" else "finance",
            "event": event,
            "aggregate": "sum",
            "column": prop,
        }
    last_day = (dates[-1] + pd.Timedelta(days=6)).date()
    return {
        **tree,
        "source": {
            "events": "events.parquet",
            "columns": {
                "timestamp": "timestamp",
                "account_id": "account_id",
                "user_id": "user_id",
                "event": "event",
            },
            "accounts": "accounts.parquet",
            "account_columns": {
                "account_id": "account_id",
                "segment": "plan",
                "started_at": "created_at",
                "churned_at": "churned_at",
            },
        },
        "calendar": {
            "timezone": "UTC",
            "week_start": "monday",
            "start": dates[0].date(),
            "end": last_day,
        },
        "metrics": metrics,
        "exclude": {"accounts_where": "internal"},
        "churn": {"rule": "end_date"},
    }


def _tree_text(tree: dict[str, Any]) -> str:
    header = (
        "# The synthetic world's metric tree and the definitions that build its panel from\n"
        "# events.parquet and accounts.parquet: `nsm-sim build tree.yaml --out panel.parquet`.\n"
    )
    return header + yaml.safe_dump(tree, sort_keys=False, width=100)


def write_synthetic_events(
    out_dir: str | Path,
    accounts: int = 5000,
    periods: int = 52,
    seed: int = 0,
    fmt: Literal["csv", "parquet"] = "csv",
) -> dict[str, Path]:
    """Write the synthetic world as events: what ``nsm-sim generate --events`` writes.

    ``events.parquet``, ``accounts.parquet``, ``tree.yaml`` (the tree with its metric
    definitions), the world's own panel (``panel.csv`` or ``panel.parquet``) and
    ``truth.json``, all at once (nothing is written when a step fails).

    Parameters
    ----------
    out_dir : str or Path
        Created if missing.
    accounts : int, default 5000
        Accounts in the world.
    periods : int, default 52
        Weekly periods.
    seed : int, default 0
        Seed of the world and of its events.
    fmt : {"csv", "parquet"}
        Format of the world's panel.

    Returns
    -------
    dict
        ``events``, ``accounts``, ``tree``, ``panel``, ``truth``: the paths written.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', got {fmt!r}")
    world = generate_world(accounts=accounts, periods=periods, seed=seed)
    log = world_events(world, seed)
    panel_name = f"panel.{fmt}"
    if fmt == "csv":
        write_panel = lambda p: world.panel.to_csv(p, index=False, date_format="%Y-%m-%d")  # noqa: E731
    else:
        write_panel = lambda p: write_parquet(world.panel, p)  # noqa: E731
    files = {
        "events.parquet": lambda p: write_parquet(log.events, p),
        "accounts.parquet": lambda p: write_parquet(log.accounts, p),
        "tree.yaml": _tree_text(log.tree),
        panel_name: write_panel,
        "truth.json": dumps(world.truth) + "\n",
    }
    out = Path(out_dir)
    write_files(out, files)
    names = ("events", "accounts", "tree", "panel", "truth")
    return {key: out / name for key, name in zip(names, files, strict=True)}


def _pieces_per_value(thousandths: np.ndarray, events: int) -> float:
    """Return the Poisson mean ``m`` such that values split into ``min(1 + Poisson(m), th)``.

    pieces add up to about ``events`` (by bisection on the expected count, with each piece
    at least a thousandth).
    """
    present = thousandths[thousandths > 0]
    low, high = 0.0, float(max(events, 1))
    for _ in range(60):
        mean = (low + high) / 2
        expected = np.minimum(present, 1 + mean).sum()
        low, high = (mean, high) if expected < events else (low, mean)
    return (low + high) / 2


def write_scaled_events(
    out_dir: str | Path,
    events: int,
    accounts: int = 5000,
    periods: int = 52,
    seed: int = 0,
    chunk_events: int = 20_000_000,
) -> dict[str, Path]:
    """Write a synthetic world as about ``events`` events, in Parquet files written one by one.

    The world's panel is the same as :func:`write_synthetic_events`'s (same accounts,
    periods and seed), its values split into many more events: each value into
    ``min(1 + Poisson(m), thousandths)`` pieces, ``m`` set for the total, at random
    microseconds of their week, by one of the account's users. Memory stays at one chunk of
    about ``chunk_events`` events, so the log can be far larger than memory; the tree file
    reads ``events/*.parquet`` and rebuilds the world's panel exactly (the pieces add up to
    the values in decimals), so a fit on it recovers the world's truth as on the panel.

    Parameters
    ----------
    out_dir : str or Path
        Created if missing; gets ``events/part-NNNNN.parquet``, ``accounts.parquet``,
        ``tree.yaml`` and ``truth.json``.
    events : int
        About how many events to write.
    accounts, periods, seed : int
        The world's size and seed.
    chunk_events : int, default 20,000,000
        About how many events per file.

    Returns
    -------
    dict
        ``tree``, ``events`` (the folder), ``accounts``, ``truth``: the paths written, and
        ``written`` (int): the events written.
    """
    out = Path(out_dir)
    world = generate_world(accounts=accounts, periods=periods, seed=seed)
    panel = world.panel
    t, dates = _period_index(world)
    tree = _tree(world, dates)
    tree["source"]["events"] = "events/*.parquet"
    metrics = list(world.tree.metrics)
    values = np.stack([np.rint(panel[m].to_numpy() * 1000).astype(np.int64) for m in metrics])
    mean = _pieces_per_value(values.ravel(), events)
    starts = pa.array(pd.DatetimeIndex(dates).as_unit("us").asi8)
    ids = np.asarray(panel["account_id"].to_numpy(), dtype=str)
    codes, names = pd.factorize(ids)
    users = pa.array([f"{a}-u{u}" for a in names for u in range(USERS_PER_ACCOUNT)], pa.string())
    events_dir = out / "events"
    events_dir.mkdir(parents=True, exist_ok=True)
    per_row = np.minimum(values, 1 + mean).sum(axis=0)
    bounds = np.searchsorted(
        np.cumsum(per_row), np.arange(chunk_events, per_row.sum(), chunk_events)
    )
    written = 0
    for k, rows in enumerate(np.split(np.arange(len(panel)), bounds)):
        pieces = []
        for i, metric in enumerate(metrics):
            event, prop = EVENTS[metric]
            rng = stream(seed, name_key("scaled events"), name_key(metric), k)
            th = values[i, rows]
            parts = np.minimum(1 + rng.poisson(mean, len(rows)), th)
            row, amount = _split(th, parts)
            at = rows[row]
            micros = rng.integers(0, _WEEK_SECONDS * 1_000_000, len(at))
            who = codes[at]
            stamps = pc.add(starts.take(pa.array(t[at])), pa.array(micros))
            decimals = _decimals(amount, np.ones(len(amount), dtype=bool))
            empty = pa.nulls(len(amount), decimals.type)
            pieces.append(
                pa.table(
                    {
                        "timestamp": stamps.cast(pa.timestamp("us", tz="UTC")),
                        "account_id": pa.DictionaryArray.from_arrays(
                            pa.array(who, pa.int32()), pa.array(names, pa.string())
                        ),
                        "user_id": pa.DictionaryArray.from_arrays(
                            pa.array(
                                who * USERS_PER_ACCOUNT
                                + rng.integers(0, USERS_PER_ACCOUNT, len(at)),
                                pa.int32(),
                            ),
                            users,
                        ),
                        "event": pa.array(np.full(len(at), event), pa.string()),
                        "quantity": decimals if prop == "quantity" else empty,
                        "amount": decimals if prop == "amount" else empty,
                    }
                )
            )
        table = pa.concat_tables(pieces)
        written += table.num_rows
        write_parquet(table, events_dir / f"part-{k:05d}.parquet")
    staff = world_events(world, seed)
    internal = staff.events.filter(pc.starts_with(staff.events["account_id"], "internal_"))
    write_parquet(internal, events_dir / "part-internal.parquet")
    files = {
        "accounts.parquet": lambda p: write_parquet(staff.accounts, p),
        "tree.yaml": _tree_text(tree),
        "truth.json": dumps(world.truth) + "\n",
    }
    write_files(out, files)
    return {
        "tree": out / "tree.yaml",
        "events": events_dir,
        "accounts": out / "accounts.parquet",
        "truth": out / "truth.json",
        "written": written + internal.num_rows,
    }


__all__ = [
    "EVENTS",
    "EventLog",
    "world_events",
    "write_scaled_events",
    "write_synthetic_events",
]
