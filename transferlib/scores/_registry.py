"""The SCORES registry: one entry per transferability score, so experiments can loop."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from transferlib.scores.gbc import gbc
from transferlib.scores.hscore import h_score, h_score_transferability, shrinkage_h_score
from transferlib.scores.label_based import nce
from transferlib.scores.leep import leep
from transferlib.scores.logme import logme
from transferlib.scores.nleep import nleep
from transferlib.scores.transrate import transrate

__all__ = ["SCORES", "ScoreInfo"]

_NEEDS = ("labels", "probs", "features")
_KEYWORDS = {"labels": "source_labels", "probs": "source_probs", "features": "features"}


@dataclass(frozen=True)
class ScoreInfo:
    """How to call one score.

    ``needs`` says what the source side provides: ``"labels"`` (the source label
    sequence, ``function(source_labels, target_labels)``), ``"probs"`` (source-model
    probabilities, ``function(source_probs, target_labels)``) or ``"features"``
    (``function(features, target_labels)``): the source side first, the target labels
    last, for every score. :meth:`compute` hides the difference.
    """

    name: str
    function: Callable[..., float]
    needs: str
    reference: str
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        if self.needs not in _NEEDS:
            raise ValueError(f"needs must be one of {_NEEDS}, got {self.needs!r}")

    def compute(
        self,
        *,
        features: Any = None,
        source_probs: Any = None,
        source_labels: Any = None,
        target_labels: Any,
        **kwargs: Any,
    ) -> float:
        """Call the score with whichever source-side input it needs (the others are
        ignored, so one call site can serve every score); all arguments are keywords.

        Raises TypeError when the needed source-side input is missing; otherwise what
        the score raises.
        """
        given = {"labels": source_labels, "probs": source_probs, "features": features}
        source = given[self.needs]
        if source is None:
            raise TypeError(f"score {self.name!r} needs {_KEYWORDS[self.needs]}=...")
        return self.function(source, target_labels, **kwargs)


def _entries() -> dict[str, ScoreInfo]:
    table = [
        ("nce", nce, "labels", "Tran, Nguyen & Hassner, ICCV 2019"),
        ("leep", leep, "probs", "Nguyen, Hassner, Archambeau & Seeger, ICML 2020"),
        ("h_score", h_score, "features", "Bao et al., ICIP 2019"),
        ("shrinkage_h_score", shrinkage_h_score, "features", "Ibrahim et al., 2022"),
        ("h_score_transferability", h_score_transferability, "features", "Bao et al., ICIP 2019"),
        ("logme", logme, "features", "You, Liu, Wang & Long, ICML 2021"),
        ("nleep", nleep, "features", "Li et al., CVPR 2021"),
        ("gbc", gbc, "features", "Pandy et al., CVPR 2022"),
        ("transrate", transrate, "features", "Huang et al., ICML 2022"),
    ]
    return {name: ScoreInfo(name, fn, needs, ref) for name, fn, needs, ref in table}


SCORES: Mapping[str, ScoreInfo] = MappingProxyType(_entries())
