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
import pyarrow.parquet as pq
import yaml

from nsm_sim.files import dumps, write_files
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
        write_panel = lambda p: world.panel.to_parquet(p, index=False)  # noqa: E731
    files = {
        "events.parquet": lambda p: pq.write_table(log.events, p),
        "accounts.parquet": lambda p: pq.write_table(log.accounts, p),
        "tree.yaml": _tree_text(log.tree),
        panel_name: write_panel,
        "truth.json": dumps(world.truth) + "\n",
    }
    out = Path(out_dir)
    write_files(out, files)
    names = ("events", "accounts", "tree", "panel", "truth")
    return {key: out / name for key, name in zip(names, files, strict=True)}


__all__ = ["EVENTS", "EventLog", "world_events", "write_synthetic_events"]
