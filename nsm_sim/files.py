"""Files: the one JSON converter and the one atomic writer every stage uses.

Every output of nsm_sim (CSV, JSON, PNG, HTML, netCDF, the world, the fit bundle) is
written through :func:`write_files`: into a staging folder beside the target first, then
moved into place, so a failed run leaves no half-written file. JSON is always made of plain
types by :func:`to_jsonable` (NaN and infinities become ``null``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


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

    Examples
    --------
    >>> to_jsonable({"a": np.float64(1.5), "b": [np.int64(2), float("nan")]})
    {'a': 1.5, 'b': [2, None]}
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
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return str(obj)


def dumps(obj: Any) -> str:
    """Serialise ``obj`` as indented JSON via :func:`to_jsonable`.

    Parameters
    ----------
    obj : Any

    Returns
    -------
    str
    """
    return json.dumps(to_jsonable(obj), indent=2)


def _write_one(target: Path, content: Any) -> None:
    if callable(content):
        content(target)
    elif isinstance(content, bytes):
        target.write_bytes(content)
    elif isinstance(content, str):
        target.write_text(content, encoding="utf-8")
    elif isinstance(content, pd.DataFrame):
        content.to_csv(target, index=False)
    elif hasattr(content, "savefig"):
        content.savefig(target, dpi=120, bbox_inches="tight")
    else:
        target.write_text(dumps(content), encoding="utf-8")


def write_files(
    out_dir: str | os.PathLike,
    files: Mapping[str, Any],
    *,
    last: tuple[str, ...] = (),
) -> list[Path]:
    """Write several files into ``out_dir`` atomically.

    Everything is written into a staging folder first: beside a new ``out_dir``, which is
    then created by one rename; inside an existing one, from where each file is moved by
    ``os.replace`` (``last`` in the end). Files already there and not named are left
    alone. A failure while writing leaves ``out_dir`` as it was.

    Parameters
    ----------
    out_dir : str or path
        Target folder, created if needed.
    files : mapping of str to content
        File name (may contain ``/``) to content: ``str`` or ``bytes`` as is, a DataFrame
        as CSV, a matplotlib figure as PNG, a callable as ``content(path)``, anything else
        as JSON.
    last : tuple of str, default ()
        Names moved into an existing folder after all others (e.g. a bundle's card).

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(out_dir)
    fresh = not out.exists()
    out.parent.mkdir(parents=True, exist_ok=True)
    where = out.parent if fresh else out
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.nsm-sim-", dir=where))
    try:
        for name, content in files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_one(target, content)
        if fresh:
            os.rename(staging, out)
            return [out / name for name in files]
        order = [n for n in files if n not in last] + [n for n in last if n in files]
        for name in order:
            final = out / name
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, final)
        return [out / name for name in files]
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def write_file(path: str | os.PathLike, content: Any | Callable[[Path], None]) -> Path:
    """Write one file atomically (a temporary file beside it, then a rename).

    Parameters
    ----------
    path : str or path
        The file.
    content : Any
        As for :func:`write_files`.

    Returns
    -------
    Path
    """
    path = Path(path)
    return write_files(path.parent, {path.name: content})[0]


__all__ = ["dumps", "to_jsonable", "write_file", "write_files"]
