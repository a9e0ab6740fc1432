"""Verdicts on a paper's claims, computed by stated rules instead of typed by hand.

Each chapter's "What we found" page lists the paper's claims beside our measurements, with a
verdict from one of three words, :data:`VERDICTS`, chosen by a rule the page states:

* :func:`correlation_verdict` -- a claimed correlation: right sign and significant, and (when a
  control is given, e.g. the target's entropy alone) better than the control by a margin;
* :func:`difference_verdict` -- a claimed difference (A beats B): its sign, against a margin and
  the spread over seeds;
* :func:`equivalence_verdict` -- a claimed closeness (A is about B): the size of the difference
  against a margin and the spread over seeds;
* :func:`share_verdict` -- a claim about how often something holds (a bound, a pick).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

__all__ = [
    "VERDICTS",
    "Claim",
    "claims_table",
    "correlation_verdict",
    "difference_verdict",
    "equivalence_verdict",
    "share_verdict",
]

HOLDS, PARTLY, NOT_REPRODUCED = "holds", "partly", "not reproduced"
VERDICTS = (HOLDS, PARTLY, NOT_REPRODUCED)


@dataclass(frozen=True)
class Claim:
    """One row of a findings table."""

    claim: str
    paper: str
    ours: str
    verdict: str
    rule: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


def claims_table(claims: Sequence[Claim]) -> pd.DataFrame:
    """The findings table: claim, the paper's number, ours, verdict, rule."""
    return pd.DataFrame([asdict(c) for c in claims])


def correlation_verdict(
    r: float,
    p: float,
    *,
    sign: int = 1,
    alpha: float = 0.05,
    control_r: float | None = None,
    margin: float = 0.05,
) -> str:
    """Verdict on "x correlates with y" (with the expected ``sign``).

    * holds: ``sign * r > 0``, ``p < alpha`` and, with a control, ``sign * (r - control_r) >=
      margin`` (the claimed predictor beats the control by at least ``margin``);
    * partly: right sign, but not significant or not better than the control;
    * not reproduced: wrong sign (or no correlation at all).
    """
    if sign not in (-1, 1):
        raise ValueError(f"sign must be 1 or -1, got {sign!r}")
    if not (np.isfinite(r) and np.isfinite(p)):
        return NOT_REPRODUCED
    if sign * r <= 0:
        return NOT_REPRODUCED
    beats_control = control_r is None or sign * (r - control_r) >= margin
    return HOLDS if p < alpha and beats_control else PARTLY


def difference_verdict(difference: float, spread: float = 0.0, *, margin: float = 0.0) -> str:
    """Verdict on "A is larger than B", given ``difference = A - B`` and its spread over seeds.

    * holds: ``difference > max(margin, 2 * spread)``;
    * partly: ``difference > 0`` but within that threshold (not distinguishable from noise);
    * not reproduced: ``difference <= 0``.
    """
    if not np.isfinite(difference):
        return NOT_REPRODUCED
    if difference > max(margin, 2.0 * spread):
        return HOLDS
    return PARTLY if difference > 0 else NOT_REPRODUCED


def equivalence_verdict(difference: float, spread: float = 0.0, *, margin: float) -> str:
    """Verdict on "A is about as large as B", given ``difference = A - B`` and its seed spread.

    * holds: ``|difference| + 2 * spread <= margin`` (within the margin, noise included);
    * partly: ``|difference| <= 2 * margin``;
    * not reproduced: a larger difference, in either direction.
    """
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")
    if not np.isfinite(difference):
        return NOT_REPRODUCED
    spread = 0.0 if not np.isfinite(spread) else spread
    if abs(difference) + 2.0 * spread <= margin:
        return HOLDS
    return PARTLY if abs(difference) <= 2.0 * margin else NOT_REPRODUCED


def share_verdict(count: int, total: int, *, partly_at: float = 0.5) -> str:
    """Verdict on "this holds in every case": all (holds), at least ``partly_at`` (partly)."""
    if total <= 0:
        raise ValueError(f"total must be positive, got {total}")
    if count == total:
        return HOLDS
    return PARTLY if count >= partly_at * total else NOT_REPRODUCED
