"""The content of output files: plain JSON types, JSON text, and CSV safe in a spreadsheet.

:mod:`nsm_sim.files` writes every output through :func:`write_content`; import
:func:`to_jsonable` and :func:`dumps` from :mod:`nsm_sim.files`, where they are also named.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# numpy and pandas are imported where used: `nsm-sim --help` and plain-text outputs need neither

#: A text cell starting like this is run as a formula by spreadsheets.
_FORMULA = re.compile(r"^(?:[=@\t\r]|[+-](?![\d. ]|$))")


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
    >>> import numpy as np
    >>> to_jsonable({"a": np.float64(1.5), "b": [np.int64(2), float("nan")]})
    {'a': 1.5, 'b': [2, None]}
    """
    import numpy as np
    import pandas as pd

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


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Quote the text cells a spreadsheet would run as a formula (``=``, ``@``, ``+x``, ``-x``).

    Such a cell gets a leading apostrophe, which spreadsheets show as text; numbers such as
    ``-0.5`` or ``+5%`` and every other cell are left as they are.

    Parameters
    ----------
    frame : pandas.DataFrame

    Returns
    -------
    pandas.DataFrame
        ``frame`` itself when no cell needs quoting, else a copy.

    Examples
    --------
    >>> import pandas as pd
    >>> spreadsheet_safe(pd.DataFrame({"name": ["=1+1", "-0.5", "ok"]}))["name"].tolist()
    ["'=1+1", '-0.5', 'ok']
    """
    import pandas as pd

    quoted = {}
    for name in frame.columns:
        column = frame[name]
        if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
            continue
        risky = column.map(lambda v: isinstance(v, str) and bool(_FORMULA.match(v)))
        if risky.any():
            quoted[name] = column.where(~risky, "'" + column.astype(str))
    if not quoted:
        return frame
    return frame.assign(**{str(k): v for k, v in quoted.items()})


def _is_frame(obj: Any) -> bool:
    """Whether ``obj`` is a pandas DataFrame."""
    import pandas as pd

    return isinstance(obj, pd.DataFrame)


#: Resolution of every figure nsm_sim writes, as a file or on a page.
FIGURE_DPI = 120

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def figure_png(figure: Any, dpi: int = FIGURE_DPI) -> bytes:
    """Render a matplotlib figure as PNG bytes, without metadata (reproducible).

    Parameters
    ----------
    figure : matplotlib Figure or bytes
        The figure; PNG bytes are returned unchanged after checking their signature.
    dpi : int, default FIGURE_DPI
        Resolution.

    Returns
    -------
    bytes
        The PNG file.
    """
    if isinstance(figure, bytes | bytearray):
        data = bytes(figure)
        if not data.startswith(PNG_SIGNATURE):
            raise ValueError("figure bytes are not a PNG image")
        return data
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def drawn(files: Mapping[str, Any]) -> dict[str, Any]:
    """Render each figure among output files to PNG once, for its file and any page showing it.

    Parameters
    ----------
    files : mapping
        File name to content, as :func:`write_content` takes it.

    Returns
    -------
    dict
        The same files, each figure replaced by its :func:`figure_png` bytes.
    """
    return {name: figure_png(c) if hasattr(c, "savefig") else c for name, c in files.items()}


def write_content(target: Path, content: Any) -> None:
    """Write one output file's content to ``target`` in the format its type implies.

    Parameters
    ----------
    target : Path
        The file to write.
    content : Any
        A callable taking the path (it writes the file itself), bytes, text, a DataFrame
        (CSV, made :func:`spreadsheet_safe`), a figure (:func:`figure_png`), or anything else
        (JSON via :func:`dumps`).
    """
    if callable(content):
        content(target)
    elif isinstance(content, bytes):
        target.write_bytes(content)
    elif isinstance(content, str):
        target.write_text(content, encoding="utf-8")
    elif _is_frame(content):
        spreadsheet_safe(content).to_csv(target, index=False)
    elif hasattr(content, "savefig"):
        target.write_bytes(figure_png(content))
    else:
        target.write_text(dumps(content), encoding="utf-8")
