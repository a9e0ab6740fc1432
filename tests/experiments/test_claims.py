"""Verdict rules of the findings pages."""

import pytest

from transferlib.experiments.claims import (
    Claim,
    claims_table,
    correlation_verdict,
    difference_verdict,
    equivalence_verdict,
    share_verdict,
)


@pytest.mark.parametrize(
    "r, p, kwargs, verdict",
    [
        (0.6, 0.001, {}, "holds"),
        (0.6, 0.2, {}, "partly"),
        (-0.6, 0.001, {}, "not reproduced"),
        (-0.6, 0.001, {"sign": -1}, "holds"),
        (0.6, 0.001, {"control_r": 0.58}, "partly"),  # no better than the control
        (0.6, 0.001, {"control_r": 0.50}, "holds"),
        (float("nan"), 0.001, {}, "not reproduced"),
    ],
)
def test_correlation_verdict(r, p, kwargs, verdict):
    assert correlation_verdict(r, p, **kwargs) == verdict


def test_difference_and_share_verdicts():
    assert difference_verdict(0.05, spread=0.01) == "holds"
    assert difference_verdict(0.05, spread=0.03) == "partly"  # within two spreads
    assert difference_verdict(0.01, margin=0.02) == "partly"
    assert difference_verdict(-0.01) == "not reproduced"
    assert share_verdict(10, 10) == "holds"
    assert share_verdict(6, 10) == "partly" and share_verdict(2, 10) == "not reproduced"
    with pytest.raises(ValueError, match="total"):
        share_verdict(0, 0)


def test_equivalence_verdict_is_two_sided():
    assert equivalence_verdict(0.01, spread=0.002, margin=0.02) == "holds"
    assert equivalence_verdict(-0.01, spread=0.002, margin=0.02) == "holds"
    assert equivalence_verdict(0.01, spread=0.01, margin=0.02) == "partly"  # noise too large
    assert equivalence_verdict(0.03, margin=0.02) == "partly"
    assert equivalence_verdict(-0.05, margin=0.02) == "not reproduced"
    assert equivalence_verdict(0.05, margin=0.02) == "not reproduced"
    with pytest.raises(ValueError, match="margin"):
        equivalence_verdict(0.0, margin=0.0)


def test_claims_table_rejects_unknown_verdicts():
    row = Claim("A beats B", "0.9 vs 0.8", "0.85 vs 0.84", "partly", "difference > 2 spreads")
    assert list(claims_table([row]).columns) == ["claim", "paper", "ours", "verdict", "rule"]
    with pytest.raises(ValueError, match="verdict"):
        Claim("x", "y", "z", "probably", "r")
