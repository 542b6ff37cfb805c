"""Outputs: rich tables in the terminal, JSON, and files written atomically.

A command that writes several files writes them all into a temporary folder beside the
target first and moves them in only when every one was written, so a failed run leaves no
half-written file behind.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table


def to_jsonable(obj: Any) -> Any:
    """Convert numpy, pandas and nested containers into plain JSON types (NaN becomes null).

    Parameters
    ----------
    obj : Any
        A scalar, array, DataFrame, mapping or sequence.

    Returns
    -------
    Any
        The same content made of dict, list, str, int, float, bool and None.
    """
    if isinstance(obj, pd.DataFrame):
        return [to_jsonable(r) for r in obj.to_dict(orient="records")]
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | pd.Index):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if obj is pd.NA or obj is pd.NaT:
        return None
    return obj


def dumps(obj: Any) -> str:
    """Serialise ``obj`` as indented JSON via :func:`to_jsonable`."""
    return json.dumps(to_jsonable(obj), indent=2)


def write_outputs(out_dir: str | Path, files: Mapping[str, Any]) -> list[Path]:
    """Write several files into ``out_dir`` atomically.

    Parameters
    ----------
    out_dir : str or Path
        Target folder, created if needed. Files already there and not named in ``files``
        are left alone.
    files : mapping of str to content
        File name to content: ``str`` or ``bytes`` as is, a DataFrame as CSV, a matplotlib
        figure as PNG, anything else as JSON.

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".nsm-sim-", dir=out))
    try:
        for name, content in files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            elif isinstance(content, str):
                target.write_text(content)
            elif isinstance(content, pd.DataFrame):
                content.to_csv(target, index=False)
            elif hasattr(content, "savefig"):
                content.savefig(target, dpi=120, bbox_inches="tight")
            else:
                target.write_text(dumps(content))
        written = []
        for name in files:
            final = out / name
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, final)
            written.append(final)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fmt(value: Any, digits: int = 3) -> str:
    """Format a number for a table: significant digits, thousands separators, '-' for missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        v = float(value)
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:,.{digits}g}" if abs(v) < 1e-3 else f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}"
    return str(value)


def table(
    frame: pd.DataFrame, title: str | None = None, *, columns: list[str] | None = None
) -> Table:
    """Render a DataFrame as a rich table (numbers right-aligned and formatted)."""
    cols = columns or list(frame.columns)
    tab = Table(title=title, title_justify="left", header_style="bold")
    for col in cols:
        numeric = pd.api.types.is_numeric_dtype(frame[col])
        tab.add_column(str(col), justify="right" if numeric else "left")
    for _, row in frame[cols].iterrows():
        tab.add_row(*(fmt(row[c]) for c in cols))
    return tab


def console(stderr: bool = False) -> Console:
    """Return a console for tables (stdout) or for messages and progress (stderr)."""
    return Console(stderr=stderr, highlight=False)
