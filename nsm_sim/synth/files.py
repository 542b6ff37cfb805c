"""Writing a synthetic world to files."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from nsm_sim.files import dumps, write_files, write_parquet
from nsm_sim.spec import dump_tree
from nsm_sim.synth.world import World


def write_world(
    world: World, out_dir: str | Path, fmt: Literal["csv", "parquet"] = "csv"
) -> dict[str, Path]:
    """Write a world as ``panel.csv`` (or ``panel.parquet``), ``tree.yaml`` and ``truth.json``.

    Written with :func:`nsm_sim.files.write_files`, so a failed run leaves no half-written
    file.

    Parameters
    ----------
    world : World
        From :func:`generate_world`.
    out_dir : str or Path
        Created if missing.
    fmt : {"csv", "parquet"}
        Format of the panel.

    Returns
    -------
    dict
        ``{"panel": Path, "tree": Path, "truth": Path}``.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', got {fmt!r}")
    out = Path(out_dir)
    panel_name = f"panel.{fmt}"
    if fmt == "csv":
        write_panel = lambda p: world.panel.to_csv(p, index=False, date_format="%Y-%m-%d")  # noqa: E731
    else:
        write_panel = lambda p: write_parquet(world.panel, p)  # noqa: E731
    write_files(
        out,
        {
            panel_name: write_panel,
            "tree.yaml": lambda p: dump_tree(world.tree, p),
            "truth.json": dumps(world.truth) + "\n",
        },
    )
    paths = {"panel": out / panel_name, "tree": out / "tree.yaml", "truth": out / "truth.json"}
    return paths
