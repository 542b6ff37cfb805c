"""The simulator's only model input: posterior draws of the fitted models, as plain arrays.

:class:`PosteriorDraws` holds the elasticities of the tree's edges and the churn hazard's
parameters per posterior draw; :func:`posterior_draws` reads them from a fit's
InferenceData and :func:`fixed_posterior` builds a one-draw posterior from constants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nsm_sim.errors import BundleError
from nsm_sim.spec import MetricTree, edge_label


@dataclass(frozen=True)
class PosteriorDraws:
    """Posterior draws of the fitted models, as plain arrays (the simulator's only input).

    Attributes
    ----------
    segments : tuple of str
        Segment labels, the last axis of the per-segment arrays.
    edges : tuple of tuple of str
        ``(parent, child)`` edges of the metric tree, in ``tree.edges`` order.
    elasticity : ndarray, shape (D, E, S)
        Elasticity of each edge (child to parent, on the ``log1p`` scale) per segment.
    churn_intercept, churn_slope : ndarray, shape (D, S)
        Churn hazard logit intercept and slope on ``log1p(north star)``.
    tenure_slope : ndarray, shape (D,)
        Slope of the logit on ``log1p(tenure)``.
    hinge_jump, hinge_tau : ndarray, shape (D,), or None
        The threshold term (``hinge_tau`` on the North Star's own scale); both ``None`` when
        the retention model has no hinge.
    """

    segments: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]
    elasticity: np.ndarray
    churn_intercept: np.ndarray
    churn_slope: np.ndarray
    tenure_slope: np.ndarray
    hinge_jump: np.ndarray | None = None
    hinge_tau: np.ndarray | None = None

    def __post_init__(self) -> None:
        d, e, s = np.shape(self.elasticity)
        problems = []
        if e != len(self.edges):
            problems.append(f"elasticity: {e} edges, expected {len(self.edges)}")
        if s != len(self.segments):
            problems.append(f"elasticity: {s} segments, expected {len(self.segments)}")
        for name, shape in [
            ("churn_intercept", (d, s)),
            ("churn_slope", (d, s)),
            ("tenure_slope", (d,)),
        ]:
            if np.shape(getattr(self, name)) != shape:
                problems.append(f"{name}: shape {np.shape(getattr(self, name))}, expected {shape}")
        if (self.hinge_jump is None) != (self.hinge_tau is None):
            problems.append("hinge_jump and hinge_tau: give both or neither")
        elif self.hinge_jump is not None:
            for name in ("hinge_jump", "hinge_tau"):
                if np.shape(getattr(self, name)) != (d,):
                    problems.append(
                        f"{name}: shape {np.shape(getattr(self, name))}, expected {(d,)}"
                    )
        if problems:
            raise BundleError("posterior draws", problems)

    @property
    def n_draws(self) -> int:
        """Number of posterior draws ``D``."""
        return int(np.shape(self.elasticity)[0])

    @property
    def north_star(self) -> str:
        """The root of the tree the edges describe."""
        children = {c for _, c in self.edges}
        return next(p for p, _ in self.edges if p not in children)

    def path_elasticity(self, node: str) -> np.ndarray:
        """Product of the elasticities on the path from ``node`` up to the North Star.

        Parameters
        ----------
        node : str
            A node of the tree (the North Star gives ones).

        Returns
        -------
        ndarray, shape (D, S)
            How much a log-change of ``node`` moves the North Star's log, per draw and segment.
        """
        parent = {c: p for p, c in self.edges}
        index = {edge: k for k, edge in enumerate(self.edges)}
        if node != self.north_star and node not in parent:
            raise KeyError(node)
        out = np.ones((self.n_draws, len(self.segments)))
        while node in parent:
            out = out * self.elasticity[:, index[(parent[node], node)], :]
            node = parent[node]
        return out


def posterior_draws(idata: Any, tree: MetricTree) -> PosteriorDraws:
    """Read the simulator's parameters from a fit's InferenceData.

    Parameters
    ----------
    idata : arviz.InferenceData
        A fit with the drivers and retention variables in its ``posterior`` group:
        ``elasticity`` ("edge", "segment"), ``churn_intercept`` ("segment",),
        ``churn_slope`` ("segment",), ``tenure_slope`` (scalar) and, with a hinge,
        ``hinge_jump`` and ``hinge_tau`` (scalars). Chains and draws are stacked.
    tree : MetricTree
        The tree the fit belongs to; its edges must be the fit's ``edge`` coordinates
        (``"parent<-child"``).

    Returns
    -------
    PosteriorDraws

    Raises
    ------
    BundleError
        When a variable is missing or the edges do not match the tree.
    """
    post = idata.posterior
    need = ["elasticity", "churn_intercept", "churn_slope", "tenure_slope"]
    missing = [v for v in need if v not in post]
    if missing:
        raise BundleError("fit", [f"posterior: variable {v!r} is missing" for v in missing])

    def stacked(name: str) -> Any:
        da = post[name].stack(sample=("chain", "draw"))
        return da.transpose("sample", ...)

    expected = [edge_label(p, c) for p, c in tree.edges]
    elast = stacked("elasticity")
    edges_have = [str(e) for e in elast.coords["edge"].values] if "edge" in elast.coords else None
    if edges_have is not None:
        if sorted(edges_have) != sorted(expected):
            raise BundleError(
                "fit",
                [
                    f"elasticity: edges {edges_have} do not match the tree "
                    f"{tree.name!r} (expected {expected})"
                ],
            )
        elast = elast.sel(edge=expected)
    segments = tuple(str(s) for s in elast.coords["segment"].values)
    intercept = stacked("churn_intercept")
    if "segment" in intercept.coords:
        churn_segments = tuple(str(s) for s in intercept.coords["segment"].values)
        if sorted(churn_segments) != sorted(segments):
            raise BundleError(
                "fit",
                [f"churn_intercept: segments {churn_segments} differ from elasticity's {segments}"],
            )
    order = list(segments)

    def per_segment(name: str) -> np.ndarray:
        da = stacked(name)
        if "segment" in da.coords:
            da = da.sel(segment=order)
        return np.asarray(da.values, dtype=float)

    hinge = "hinge_jump" in post and "hinge_tau" in post
    return PosteriorDraws(
        segments=segments,
        edges=tuple(tree.edges),
        elasticity=np.asarray(elast.transpose("sample", "edge", "segment").values, dtype=float),
        churn_intercept=per_segment("churn_intercept"),
        churn_slope=per_segment("churn_slope"),
        tenure_slope=np.asarray(stacked("tenure_slope").values, dtype=float).reshape(-1),
        hinge_jump=np.asarray(stacked("hinge_jump").values, float).reshape(-1) if hinge else None,
        hinge_tau=np.asarray(stacked("hinge_tau").values, float).reshape(-1) if hinge else None,
    )


def fixed_posterior(
    tree: MetricTree,
    segments: Sequence[str],
    *,
    elasticity: float | Mapping[Any, float] | np.ndarray = 0.5,
    churn_intercept: float | Sequence[float] = -3.0,
    churn_slope: float | Sequence[float] = -0.3,
    tenure_slope: float = 0.0,
    hinge_jump: float | None = None,
    hinge_tau: float | None = None,
) -> PosteriorDraws:
    """Build a one-draw posterior from constants (for tests, analytic checks, what-ifs).

    Parameters
    ----------
    tree : MetricTree
        Gives the edges.
    segments : sequence of str
        Segment labels.
    elasticity : float, mapping or ndarray
        One value for every edge and segment; a mapping from ``(parent, child)`` or
        ``"parent<-child"`` to a value (edges not named get 0.5); or an array of shape
        ``(E,)`` or ``(E, S)``.
    churn_intercept, churn_slope : float or sequence of float
        Per segment, or one value for all.
    tenure_slope : float
    hinge_jump, hinge_tau : float or None
        The threshold term; give both or neither.

    Returns
    -------
    PosteriorDraws
        With ``D = 1``.

    Examples
    --------
    >>> from nsm_sim.spec import MetricTree
    >>> tree = MetricTree(name="t", north_star="nsm", inputs={"a": [], "b": []})
    >>> post = fixed_posterior(tree, ["all"], elasticity={("nsm", "a"): 0.8})
    >>> post.elasticity[0, :, 0].tolist()
    [0.8, 0.5]
    """
    edges = tuple(tree.edges)
    n_e, n_s = len(edges), len(segments)
    if isinstance(elasticity, Mapping):
        el = np.full((n_e, n_s), 0.5)
        labels = [edge_label(p, c) for p, c in edges]
        for key, val in elasticity.items():
            k = edges.index(tuple(key)) if not isinstance(key, str) else labels.index(key)
            el[k, :] = val
    else:
        el = np.broadcast_to(
            np.asarray(elasticity, dtype=float).reshape(-1, 1)
            if np.ndim(elasticity) == 1
            else np.asarray(elasticity, float),
            (n_e, n_s),
        ).copy()
    hinge = hinge_jump is not None
    return PosteriorDraws(
        segments=tuple(segments),
        edges=edges,
        elasticity=el[None],
        churn_intercept=np.broadcast_to(np.asarray(churn_intercept, float), (n_s,))[None].copy(),
        churn_slope=np.broadcast_to(np.asarray(churn_slope, float), (n_s,))[None].copy(),
        tenure_slope=np.array([float(tenure_slope)]),
        hinge_jump=np.array([float(hinge_jump)]) if hinge else None,
        hinge_tau=np.array([float(hinge_tau)]) if hinge_tau is not None else None,
    )
