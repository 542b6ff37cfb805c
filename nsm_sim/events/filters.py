"""The ``where`` filters of metric definitions: SQL conditions parsed into SQLGlot trees.

A filter is written as a SQL condition (``plan = 'team' AND amount >= 10``), parsed once
by SQLGlot and kept as an expression tree; it is never pasted into a query as text. Only
comparisons, boolean logic, ``IN``, ``BETWEEN``, ``IS [NOT] NULL``, ``LIKE``, arithmetic,
literals and column names are allowed, so a filter can read columns but do nothing else.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

#: The SQL dialect filters are written in and queries are printed in.
DIALECT = "duckdb"

#: Node types a filter's top may be: a condition.
_CONDITIONS = (
    exp.Column,
    exp.Boolean,
    exp.And,
    exp.Or,
    exp.Not,
    exp.Paren,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.In,
    exp.Between,
    exp.Is,
    exp.Like,
    exp.ILike,
)
#: Node types anywhere in a filter: conditions and the operands they compare.
_ALLOWED = (
    *_CONDITIONS,
    exp.Identifier,
    exp.Literal,
    exp.Null,
    exp.Neg,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Cast,
    exp.DataType,
    exp.Tuple,
)


def parse_filter(text: str) -> exp.Expression:
    """Parse a ``where`` filter into a SQLGlot condition, with every column name quoted.

    Parameters
    ----------
    text : str
        A SQL condition on the columns of one table, such as ``"plan = 'team'"``.

    Returns
    -------
    sqlglot.exp.Expression

    Raises
    ------
    ValueError
        When the text is not a condition, or uses anything but columns, literals,
        comparisons, boolean logic and arithmetic (no functions, no subqueries).

    Examples
    --------
    >>> parse_filter("amount >= 10 AND NOT internal").sql("duckdb")
    '"amount" >= 10 AND NOT "internal"'
    """
    try:
        tree = sqlglot.parse_one(text, dialect=DIALECT)
    except ParseError as err:
        first = err.errors[0]["description"] if err.errors else str(err)
        raise ValueError(f"not a SQL condition: {first}") from None
    if tree is None or not isinstance(tree, _CONDITIONS):
        raise ValueError(f"expected a condition such as \"plan = 'team'\", got {text!r}")
    for node in tree.walk():
        if not isinstance(node, _ALLOWED):
            raise ValueError(
                f"{node.sql(DIALECT)!r} is not allowed in a filter; use columns, literals, "
                "comparisons, AND/OR/NOT, IN, BETWEEN, IS NULL, LIKE and arithmetic"
            )
        if isinstance(node, exp.Column) and node.table:
            raise ValueError(f"{node.sql(DIALECT)!r}: name the column alone, without a table")
    return tree.transform(_quote)


def _quote(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Column):
        return exp.column(node.name, quoted=True)
    return node


def filter_columns(condition: exp.Expression) -> list[str]:
    """Return the column names a parsed filter reads, in order of first use.

    Parameters
    ----------
    condition : sqlglot.exp.Expression
        From :func:`parse_filter`.

    Returns
    -------
    list of str
    """
    return list(dict.fromkeys(c.name for c in condition.find_all(exp.Column)))
