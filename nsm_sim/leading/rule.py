"""Rule: each metric's evidence read into a verdict, the metrics ranked, the summary.

Verdict rule
------------
The effects are on the logit of the churn hazard per unit of ``log1p(M)``; an effect is *clear*
when its 99 % interval excludes 0 (``|mean| > 2.58 sd``; the tables show 90 % intervals). A
within effect *backs up* the between effect when it is clear, has the same sign (or the
between effect is not clear) and is at least ``vanity_ratio`` (default 1/4) of it in absolute
size. A metric is *predictive* when its out-of-sample skill is at least ``min_skill`` (default
0.5 %). Metric A *precedes* metric B when A's past predicts B's present (Granger p-value below
``alpha``, default 0.001) and that direction dominates the reverse (its F statistic is at
least ``dominance`` times, default 2, the reverse one). The first rule that applies gives the
verdict:

1. **NO SIGNAL**: neither the within nor the between effect is clear, and the skill is below
   ``min_skill``.
2. **LAGGING**: a predictive metric precedes M, and M precedes none of the others.
3. **VANITY**: the between effect is clear and the within effect does not back it up: M tells
   accounts apart, but its movements within an account say nothing (or the opposite) about
   churn.
4. **LEADING**: the within effect is clear (with the between effect's sign when that is
   clear), no predictive metric precedes M, and M is predictive (out-of-sample skill at
   least ``min_skill``): a clear effect that does not forecast later churn leads nothing.
5. **COINCIDENT**: everything else (a signal that moves together with, or in feedback with,
   another predictive metric, predictive power without a clear effect, or a clear effect
   without predictive power).

A *static* metric (it never moves within an account: a trait such as plan size at signup)
has no within effect and no timing test; its verdict is VANITY when its between effect is
clear (it tells kinds of accounts apart and cannot be moved), else COINCIDENT when it is
predictive, else NO SIGNAL, and the reason says that it cannot be tested within accounts.

Metrics are ranked by out-of-sample log-loss (lower first), ties broken by elpd (higher first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from nsm_sim.leading.timing import LAG_CONVENTION

VERDICTS = ("LEADING", "COINCIDENT", "LAGGING", "VANITY", "NO SIGNAL")

#: Correlation of account levels with the North Star's from which a metric tracks size.
SIZE_CORRELATION = 0.5


# --------------------------------------------------------------------------- verdict rule


@dataclass(frozen=True)
class Effect:
    """An effect on the churn logit: posterior mean and standard deviation (Gaussian).

    Attributes
    ----------
    mean, sd : float
    """

    mean: float
    sd: float

    def interval(self, prob: float = 0.9) -> tuple[float, float]:
        """Return the central ``prob`` interval ``(low, high)``."""
        half = float(stats.norm.ppf(0.5 + prob / 2)) * self.sd
        return self.mean - half, self.mean + half

    def clear(self, prob: float = 0.99) -> bool:
        """Whether the central ``prob`` interval excludes 0."""
        low, high = self.interval(prob)
        return bool(low > 0.0 or high < 0.0)

    def to_dict(self, prob: float = 0.9) -> dict[str, float]:
        """Return ``{"mean", "low", "high", "sd"}`` with the ``prob`` interval."""
        low, high = self.interval(prob)
        return {"mean": float(self.mean), "low": low, "high": high, "sd": float(self.sd)}


@dataclass(frozen=True)
class VerdictRule:
    """The thresholds of the verdict rule (see the module docstring).

    Attributes
    ----------
    clear_prob : float
        An effect is clear when its central interval of this probability excludes 0
        (0.99: ``|mean| > 2.58 sd``; the tables show 90 % intervals).
    min_skill : float
        Relative out-of-sample log-loss improvement over the segment + tenure baseline from
        which a metric counts as predictive.
    vanity_ratio : float
        A within effect smaller than this fraction of the between effect (absolute sizes)
        does not back the between effect up.
    alpha : float
        Granger p-value below which a direction counts.
    dominance : float
        A direction precedes only when its F statistic is at least this multiple of the
        reverse direction's.
    """

    clear_prob: float = 0.99
    min_skill: float = 0.005
    vanity_ratio: float = 0.25
    alpha: float = 0.001
    dominance: float = 2.0


@dataclass(frozen=True)
class Verdict:
    """A metric's verdict and the sentence that explains it.

    Attributes
    ----------
    label : str
        One of :data:`VERDICTS`.
    why : str
        Plain-language reason, quoting the numbers behind it.
    """

    label: str
    why: str


def _fmt(e: Effect) -> str:
    low, high = e.interval(0.9)
    return f"{e.mean:+.2f} [{low:+.2f}, {high:+.2f}]"


def verdict(
    *,
    within: Effect,
    between: Effect,
    skill: float,
    precedes: Sequence[str] = (),
    preceded_by: Sequence[str] = (),
    rule: VerdictRule | None = None,
    static: bool = False,
    level_corr: float = float("nan"),
) -> Verdict:
    """Apply the verdict rule of the module docstring to one metric's numbers.

    Parameters
    ----------
    within, between : Effect
        Effects on the churn logit per unit ``log1p(metric)``: deviation from the account's
        mean, and the account mean.
    skill : float
        ``1 - log_loss / baseline_log_loss`` out of sample.
    precedes : sequence of str
        Metrics this one precedes (see :func:`precedence`).
    preceded_by : sequence of str
        *Predictive* metrics that precede this one.
    rule : VerdictRule, optional
        Thresholds; the defaults when omitted.
    static : bool, default False
        The metric never moves within an account (``within`` is then not used).
    level_corr : float, optional
        Correlation of the metric's account levels with the North Star's; when at least
        :data:`SIZE_CORRELATION` in size, a VANITY reason says the metric tracks account size.

    Returns
    -------
    Verdict
        The label and a plain-language reason (effects quoted with 90 % intervals).

    Examples
    --------
    >>> verdict(within=Effect(-0.6, 0.1), between=Effect(-0.8, 0.05), skill=0.03).label
    'LEADING'
    >>> verdict(within=Effect(-0.6, 0.1), between=Effect(-0.8, 0.05), skill=0.0).label
    'COINCIDENT'
    >>> verdict(within=Effect(0.02, 0.1), between=Effect(-0.8, 0.05), skill=0.02).label
    'VANITY'
    >>> verdict(within=Effect(0.02, 0.1), between=Effect(0.01, 0.05), skill=0.0).label
    'NO SIGNAL'
    """
    rule = rule or VerdictRule()
    if static:
        return _static_verdict(between, skill, rule, level_corr)
    w, b = within, between
    w_clear, b_clear = w.clear(rule.clear_prob), b.clear(rule.clear_prob)
    agrees = w_clear and (not b_clear or np.sign(w.mean) == np.sign(b.mean))
    predictive = skill >= rule.min_skill
    effects = f"within-account effect {_fmt(w)}, between-account effect {_fmt(b)}"
    skill_txt = _skill_text(skill)
    if not w_clear and not b_clear and not predictive:
        return Verdict(
            "NO SIGNAL",
            f"Neither its level across accounts nor its changes within an account tell churn "
            f"apart ({effects}) and it predicts later churn no better than segment and tenure "
            f"({skill_txt}).",
        )
    if preceded_by and not precedes:
        return Verdict(
            "LAGGING",
            f"It moves after {', '.join(preceded_by)} (their past predicts its present, not "
            f"the reverse) and moves before no other metric: what it says about churn it says "
            f"late ({effects}; {skill_txt}).",
        )
    if b_clear and (not agrees or abs(w.mean) < rule.vanity_ratio * abs(b.mean)):
        how = "nothing" if not w_clear else ("the opposite" if not agrees else "little")
        return Verdict(
            "VANITY",
            f"Accounts differ on it, but its movements within an account say {how} about "
            f"churn ({effects}): {_apart_text(level_corr)}.",
        )
    if agrees and not preceded_by and predictive:
        after = f", and it moves before {', '.join(precedes)}" if precedes else ""
        return Verdict(
            "LEADING",
            f"When it moves within an account, churn risk moves with it ({effects}); no other "
            f"predictive metric moves before it{after}; {skill_txt}.",
        )
    if preceded_by:
        reason = (
            f"it moves after {', '.join(preceded_by)} and also before {', '.join(precedes)} "
            f"(feedback)"
        )
    elif agrees:
        reason = (
            f"it predicts later churn no better than segment and tenure (needs a skill of at "
            f"least {100 * rule.min_skill:.1f}%)"
        )
    else:
        reason = "its movements within an account are not clearly tied to churn"
    return Verdict(
        "COINCIDENT",
        f"It carries signal ({effects}; {skill_txt}) but {reason}: it moves with churn risk "
        f"rather than ahead of it.",
    )


def _skill_text(skill: float) -> str:
    return f"out-of-sample skill {100 * skill:+.1f}% over segment and tenure"


def _apart_text(level_corr: float) -> str:
    if abs(level_corr) >= SIZE_CORRELATION:
        return (
            f"it tracks account size (its account levels correlate {level_corr:+.2f} with "
            f"the North Star's)"
        )
    return "it tells accounts apart, not when an account is at risk"


def _static_verdict(between: Effect, skill: float, rule: VerdictRule, level_corr) -> Verdict:
    """Return the verdict of a metric that never moves within an account (module docstring)."""
    b_clear = between.clear(rule.clear_prob)
    lead = (
        "It never changes within an account, so whether moving it changes churn cannot be "
        "tested within accounts (no within effect, no timing test)"
    )
    skill_txt = _skill_text(skill)
    if b_clear:
        more = "more" if between.mean > 0 else "less"
        size = f"; {_apart_text(level_corr)}" if abs(level_corr) >= SIZE_CORRELATION else ""
        return Verdict(
            "VANITY",
            f"{lead}. Accounts with higher values churn {more} (between-account effect "
            f"{_fmt(between)}): a difference between kinds of accounts, not the effect of a "
            f"change{size}; a trait to segment by, not a metric to move ({skill_txt}).",
        )
    label = "COINCIDENT" if skill >= rule.min_skill else "NO SIGNAL"
    return Verdict(
        label,
        f"{lead}, and accounts with higher and lower values do not clearly differ in churn "
        f"(between-account effect {_fmt(between)}; {skill_txt}).",
    )


def precedence(
    timing: pd.DataFrame, predictive: Sequence[str], rule: VerdictRule | None = None
) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Read who precedes whom from a Granger table.

    Parameters
    ----------
    timing : pandas.DataFrame
        The output of :func:`nsm_sim.leading.granger` (columns ``cause``, ``effect``,
        ``F``, ``p_value``).
    predictive : sequence of str
        The metrics that count as predictive (skill at least ``rule.min_skill``).
    rule : VerdictRule, optional
        ``alpha`` and ``dominance``.

    Returns
    -------
    dict
        ``{metric: (precedes, preceded_by)}``, ``preceded_by`` restricted to predictive
        metrics, each sorted.
    """
    rule = rule or VerdictRule()
    f = {(r.cause, r.effect): (r.F, r.p_value) for r in timing.itertuples(index=False)}
    metrics = sorted(set(timing["cause"]) | set(timing["effect"]))

    def prec(a: str, c: str) -> bool:
        fa, pa = f[(a, c)]
        fr, _ = f[(c, a)]
        return bool(pa < rule.alpha and fa >= rule.dominance * fr)

    out = {}
    for m in metrics:
        others = [o for o in metrics if o != m and (m, o) in f]
        out[m] = (
            tuple(o for o in others if prec(m, o)),
            tuple(o for o in others if o in predictive and prec(o, m)),
        )
    return out


def rank_and_judge(
    scores: pd.DataFrame,
    effects: pd.DataFrame,
    timing: pd.DataFrame,
    rule: VerdictRule | None = None,
) -> pd.DataFrame:
    """Join the evidence per metric, apply :func:`verdict` and rank.

    Parameters
    ----------
    scores : pandas.DataFrame
        :attr:`nsm_sim.leading.PredictivePower.scores` (``metric``, ``log_loss``,
        ``skill``, ``elpd_loo``...).
    effects : pandas.DataFrame
        :func:`nsm_sim.leading.within_between`.
    timing : pandas.DataFrame
        :func:`nsm_sim.leading.granger` (may be empty for a single metric).
    rule : VerdictRule, optional

    Returns
    -------
    pandas.DataFrame
        The metrics table of :class:`nsm_sim.leading.Validation`, ranked by out-of-sample
        log-loss (lower first), ties by ``elpd_loo`` (higher first).
    """
    rule = rule or VerdictRule()
    table = scores.merge(effects, on="metric")
    if "elpd_loo" not in table:
        table["elpd_loo"] = np.nan
    table["elpd_diff"] = table["elpd_loo"].max() - table["elpd_loo"]
    predictive = list(table.loc[table["skill"] >= rule.min_skill, "metric"])
    prec = precedence(timing, predictive, rule) if len(timing) else {}
    labels, whys, pre, preby = [], [], [], []
    for r in table.itertuples(index=False):
        precedes, preceded_by = prec.get(r.metric, ((), ()))
        v = verdict(
            within=Effect(r.within_mean, r.within_sd),
            between=Effect(r.between_mean, r.between_sd),
            skill=r.skill,
            precedes=precedes,
            preceded_by=preceded_by,
            rule=rule,
            static=bool(getattr(r, "static", False)),
            level_corr=float(getattr(r, "level_corr", np.nan)),
        )
        labels.append(v.label)
        whys.append(v.why)
        pre.append(", ".join(precedes))
        preby.append(", ".join(preceded_by))
    table["verdict"] = labels
    table["precedes"] = pre
    table["preceded_by"] = preby
    table["why"] = whys
    table = table.sort_values(["log_loss", "elpd_loo"], ascending=[True, False])
    table["rank"] = np.arange(1, len(table) + 1)
    first = ["metric", "verdict", "rank", "log_loss", "brier", "auc", "skill", "elpd_loo"]
    return table[first + [c for c in table.columns if c not in first]].reset_index(drop=True)


def summary_text(north_star: str, table: pd.DataFrame, threshold: dict) -> str:
    """Return the plain-language summary of a validation.

    Parameters
    ----------
    north_star : str
    table : pandas.DataFrame
        :func:`rank_and_judge`.
    threshold : dict
        :func:`nsm_sim.leading.threshold` (its ``sentence``).

    Returns
    -------
    str
        The North Star's verdict, one line per metric, the threshold and the lag convention.
    """
    ns, thr = north_star, threshold
    v = table.set_index("metric")
    lines = [f"North Star {ns}: {v.loc[ns, 'verdict']}."] if ns in v.index else []
    for r in table.itertuples(index=False):
        lines.append(
            f"{r.rank}. {r.metric}: {r.verdict} (log-loss {r.log_loss:.4f}, AUC {r.auc:.3f}, "
            f"skill {100 * r.skill:+.1f}%). {r.why}"
        )
    lines.append(thr["sentence"])
    lines.append(f"Cross-correlation lags: {LAG_CONVENTION}.")
    return "\n".join(lines)
