"""Limits on the sizes a user can type, checked before any work.

Each check estimates the memory and the time of what a command is asked to do and refuses
it with an :class:`~nsm_sim.errors.InputError` naming the option (exit code 2) when a size
is beyond its hard limit, when the memory would exceed what the machine has available, or
when the time would exceed :data:`MAX_SECONDS`. The message gives the limit, the estimate and
what to change. The estimates are rough (within a factor of a few, erring on the large side)
and come from the measurements in ``benchmarks/RESULTS.md``: generating the synthetic world
(about 20 microseconds and 1 kB per account-period), sampling a fit (about 5 ms of CPU per
iteration of a chain, whatever the panel's size) and simulating (about 5 ns per
simulation x cell x period x projection).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from nsm_sim.errors import InputError

#: Longest run a command may be asked for.
MAX_SECONDS = 12 * 3600

#: Hard limits: beyond any use, whatever the machine.
MAX_ACCOUNTS = 10_000_000
MAX_GENERATED_PERIODS = 520
MAX_DRAWS = 100_000
MAX_TUNE = 100_000
MAX_CHAINS = 64
MAX_SIMULATIONS = 2_000_000

#: Rates of the estimates (see the module docstring).
SECONDS_PER_ROW_GENERATED = 20e-6
BYTES_PER_ROW_GENERATED = 1_000
BYTES_PER_EVENT_ROW = 3_000
SECONDS_PER_CHAIN_ITERATION = 5e-3
SECONDS_PER_PROJECTED_CELL_PERIOD = 5e-9
SECONDS_PER_PANEL_ROW = 5e-6
BYTES_PER_PANEL_ROW = 600
BASE_BYTES = 400 * 2**20
SIMULATION_CHUNK_BYTES = 64 * 2**20

#: Memory assumed when the system does not say how much is available.
FALLBACK_MEMORY = 4 * 2**30


@dataclass(frozen=True)
class Estimate:
    """Memory and time a piece of work is expected to take.

    Attributes
    ----------
    what : str
        The work, in words (``"4 chains x 1,000 iterations"``).
    bytes : float
        Peak memory.
    seconds : float
        Wall time.
    """

    what: str
    bytes: float
    seconds: float

    def __add__(self, other: Estimate) -> Estimate:
        return Estimate(
            f"{self.what}, then {other.what}",
            max(self.bytes, other.bytes),
            self.seconds + other.seconds,
        )


def available_memory() -> int:
    """Return the memory available to a new process, in bytes.

    Returns
    -------
    int
        ``MemAvailable`` of ``/proc/meminfo`` where there is one, else the physical memory,
        else :data:`FALLBACK_MEMORY`.
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return FALLBACK_MEMORY


def _size(n_bytes: float) -> str:
    for unit, scale in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:,.1f} {unit}"
    return f"{n_bytes / 2**10:,.0f} kB"


def _duration(seconds: float) -> str:
    if seconds >= 86_400:
        return f"{seconds / 86_400:,.1f} days"
    if seconds >= 3_600:
        return f"{seconds / 3_600:,.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:,.0f} min"
    return f"{seconds:,.0f} s"


def at_most(flag: str, value: int, limit: int, advice: str = "") -> None:
    """Refuse ``value`` above a hard limit.

    Parameters
    ----------
    flag : str
        The option (``"--draws"``).
    value, limit : int
    advice : str, optional
        Appended to the message.

    Raises
    ------
    InputError
    """
    if value > limit:
        extra = f"; {advice}" if advice else ""
        raise InputError(flag, [f"{value:,} is above the limit of {limit:,}{extra}"])


def check_estimate(flag: str, estimate: Estimate, advice: str) -> None:
    """Refuse work whose memory exceeds what is available or whose time exceeds the limit.

    Parameters
    ----------
    flag : str
        The option(s) that set the size, for the message.
    estimate : Estimate
    advice : str
        How to get under the limit (``"lower --draws or --chains"``).

    Raises
    ------
    InputError
        Saying the estimate, the limit and ``advice``.
    """
    memory = available_memory()
    if estimate.bytes > memory:
        raise InputError(
            flag,
            [
                f"{estimate.what} needs about {_size(estimate.bytes)} of memory and "
                f"{_size(memory)} is available; {advice}"
            ],
        )
    if estimate.seconds > MAX_SECONDS:
        raise InputError(
            flag,
            [
                f"{estimate.what} would take about {_duration(estimate.seconds)}, beyond the "
                f"limit of {_duration(MAX_SECONDS)}; {advice}"
            ],
        )


def generate_estimate(accounts: int, periods: int, *, events: bool = False) -> Estimate:
    """Estimate generating the synthetic world (and its event log).

    Parameters
    ----------
    accounts, periods : int
    events : bool, default False
        The event log too (``generate --events``).

    Returns
    -------
    Estimate
    """
    rows = float(accounts) * periods
    per_row = BYTES_PER_ROW_GENERATED + (BYTES_PER_EVENT_ROW if events else 0)
    return Estimate(
        f"a world of {accounts:,} accounts x {periods:,} periods",
        BASE_BYTES + rows * per_row,
        rows * SECONDS_PER_ROW_GENERATED * (3 if events else 1),
    )


def check_generate(accounts: int, periods: int, *, events: bool = False) -> None:
    """Refuse a synthetic world too large to generate here.

    Parameters
    ----------
    accounts, periods : int
    events : bool, default False

    Raises
    ------
    InputError
    """
    at_most("--accounts", accounts, MAX_ACCOUNTS)
    at_most("--periods", periods, MAX_GENERATED_PERIODS, "ten years of weeks")
    check_estimate(
        "--accounts, --periods",
        generate_estimate(accounts, periods, events=events),
        "lower --accounts or --periods",
    )


def fit_estimate(draws: int, tune: int, chains: int, rows: int = 0, scalars: int = 200) -> Estimate:
    """Estimate a fit: reading and reducing the panel, then sampling.

    Parameters
    ----------
    draws, tune, chains : int
        Sampler settings.
    rows : int, default 0
        Account-periods of the panel (0 before it is read).
    scalars : int, default 200
        Posterior values per draw (elasticities per edge and segment, churn terms).

    Returns
    -------
    Estimate
    """
    iterations = float(draws + tune) * chains
    cores = max(1, min(chains, os.cpu_count() or 1))
    return Estimate(
        f"{chains:,} chain(s) x {draws + tune:,} iterations",
        BASE_BYTES + rows * BYTES_PER_PANEL_ROW + float(draws) * chains * scalars * 8 * 4,
        rows * SECONDS_PER_PANEL_ROW + iterations * SECONDS_PER_CHAIN_ITERATION / cores,
    )


def check_fit(draws: int, tune: int, chains: int, rows: int = 0, scalars: int = 200) -> None:
    """Refuse sampler settings beyond their limits or beyond this machine.

    Parameters
    ----------
    draws, tune, chains : int
    rows : int, default 0
    scalars : int, default 200

    Raises
    ------
    InputError
    """
    at_most("--draws", draws, MAX_DRAWS, "a few thousand draws give every interval")
    at_most("--tune", tune, MAX_TUNE)
    at_most("--chains", chains, MAX_CHAINS)
    check_estimate(
        "--draws, --tune, --chains",
        fit_estimate(draws, tune, chains, rows, scalars),
        "lower --draws, --tune or --chains",
    )


def simulation_estimate(
    simulations: int, horizon: int, initiatives: int, cells: int, runs: int = 1
) -> Estimate:
    """Estimate a simulation: every initiative alone, the baseline and the portfolio.

    Parameters
    ----------
    simulations, horizon, initiatives, cells : int
        Monte Carlo simulations, periods projected, initiatives, population cells.
    runs : int, default 1
        Simulations of this size in the command (``compare`` runs two).

    Returns
    -------
    Estimate
    """
    projections = initiatives + 3
    work = float(simulations) * cells * horizon * projections * runs
    results = float(simulations) * (projections * 4 + horizon * 3) * 8 * runs
    return Estimate(
        f"{simulations:,} simulations x {initiatives} initiatives x {horizon} periods x "
        f"{cells:,} cells",
        BASE_BYTES + SIMULATION_CHUNK_BYTES + results,
        work * SECONDS_PER_PROJECTED_CELL_PERIOD,
    )


def check_simulation(
    simulations: int, horizon: int, initiatives: int, cells: int, runs: int = 1
) -> None:
    """Refuse a simulation beyond its limits or beyond this machine.

    Parameters
    ----------
    simulations, horizon, initiatives, cells, runs : int
        As in :func:`simulation_estimate`.

    Raises
    ------
    InputError
    """
    at_most("--simulations", simulations, MAX_SIMULATIONS, "10,000 give every interval")
    check_estimate(
        "--simulations",
        simulation_estimate(simulations, horizon, initiatives, cells, runs),
        "lower --simulations, or shorten the scenario's horizon",
    )


__all__ = [
    "MAX_ACCOUNTS",
    "MAX_CHAINS",
    "MAX_DRAWS",
    "MAX_GENERATED_PERIODS",
    "MAX_SECONDS",
    "MAX_SIMULATIONS",
    "MAX_TUNE",
    "Estimate",
    "at_most",
    "available_memory",
    "check_estimate",
    "check_fit",
    "check_generate",
    "check_simulation",
    "fit_estimate",
    "generate_estimate",
    "simulation_estimate",
]
