"""The top-level keys of a tree file that define metrics from events, apart from the tree.

Kept free of imports from the rest of the package so that the tree loader can split a
file without loading the event engine.
"""

from __future__ import annotations

from typing import Any

#: Keys of a tree file that belong to the metric definitions, not to the metric tree.
DEFINITION_KEYS = ("source", "calendar", "metrics", "exclude", "churn")


def tree_part(content: dict[str, Any]) -> dict[str, Any]:
    """Return the keys of a tree file's mapping that describe the metric tree itself.

    Parameters
    ----------
    content : dict
        The tree file as read from YAML.

    Returns
    -------
    dict
        ``content`` without the definition keys (``source``, ``calendar``, ``metrics``,
        ``exclude``, ``churn``).

    Examples
    --------
    >>> tree_part({"name": "t", "north_star": "n", "source": {"events": "e.parquet"}})
    {'name': 't', 'north_star': 'n'}
    """
    return {k: v for k, v in content.items() if k not in DEFINITION_KEYS}


def definitions_part(content: dict[str, Any]) -> dict[str, Any]:
    """Return the keys of a tree file's mapping that define metrics from events.

    Parameters
    ----------
    content : dict
        The tree file as read from YAML.

    Returns
    -------
    dict
        Only the definition keys of ``content``; empty when the file has none.
    """
    return {k: v for k, v in content.items() if k in DEFINITION_KEYS}
