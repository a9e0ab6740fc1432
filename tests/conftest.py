"""Shared pytest setup: a non-interactive matplotlib backend and the repository root."""

from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """Root of the repository checkout (holds _config.yml, notebooks/, book/)."""
    return REPO_ROOT
