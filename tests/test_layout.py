"""The test tree itself: pytest's default import mode needs unique basenames."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_test_module_basenames_are_unique() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    duplicated = sorted(name for name, count in names.items() if count > 1)
    assert not duplicated, f"test modules sharing a basename cannot both be collected: {duplicated}"
