"""deploy.require_improvement: does a new version beat the serving one on the same held-out records?

The trainer scored both on the eval records (MLOPS_BASELINE in the trainer contract: the serving
version's metrics come back as baseline_<metric>); evaluate compares them here and deploy releases
the candidate only when it improved on every metric require_improvement names, each by more than
zero and by at least its min_delta, in the direction the metric's gate gives it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops.contract import BASELINE_PREFIX


class NotComparable(Exception):
    """The trainer did not report the serving version's metrics the comparison needs."""


@dataclass(frozen=True)
class Comparison:
    candidate: int | None
    serving: int | None  # None: nothing served when the candidate trained, so there is nothing to beat
    improved: bool
    lines: tuple[str, ...]  # one per metric: "roc_auc 0.9100 <= serving 0.9300"

    @property
    def summary(self) -> str:
        if self.serving is None:
            return f"candidate {self.candidate}: no version served when it trained, nothing to beat"
        verdict = "beats" if self.improved else "does not beat"
        return f"candidate {self.candidate} {verdict} serving {self.serving}: {'; '.join(self.lines)}"

    def metadata(self) -> dict[str, Any]:
        return {
            "improved": self.improved,
            "compared_with": self.serving if self.serving is not None else "none",
            "comparison": self.summary,
        }


def compare(
    rules: Mapping[str, Mapping[str, Any]], trained: Mapping[str, Any], candidate: int | None, serving: int | None
) -> Comparison:
    """The candidate's metrics (trained[metric]) against the serving version's (trained[baseline_metric])."""
    if serving is None:
        return Comparison(candidate, None, True, ())
    lines, improved = [], True
    for metric, rule in sorted(rules.items()):
        mine, theirs = trained.get(metric), trained.get(BASELINE_PREFIX + metric)
        if not _number(mine) or not _number(theirs):
            missing = metric if not _number(mine) else BASELINE_PREFIX + metric
            raise NotComparable(
                f"the trainer reported no {missing} for comparing with serving version {serving}: with"
                " deploy.require_improvement a trainer scores $MLOPS_BASELINE on the eval records too"
                " (mlops.runtime.training.trainer.baseline_metrics)"
            )
        higher = bool(rule.get("higher_is_better", True))
        delta = float(rule.get("min_delta") or 0.0)
        gain = (mine - theirs) if higher else (theirs - mine)
        ok = gain > 0 and gain >= delta
        improved = improved and ok
        sign = (">" if gain > 0 else "<=") if higher else ("<" if gain > 0 else ">=")
        need = f" (better by {gain:.4f}, under min_delta {delta:g})" if gain > 0 and not ok else ""
        lines.append(f"{metric} {mine:.4f} {sign} serving {theirs:.4f}{need}")
    return Comparison(candidate, serving, improved, tuple(lines))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
