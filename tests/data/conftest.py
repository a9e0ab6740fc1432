"""Fixtures of the data tests: a private cache and small rendered Glyphs sets."""

import pytest

from transferlib.data import load_glyphs


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Never read or write the user's cache."""
    monkeypatch.setenv("TRANSFERLIB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def glyphs():
    """3,300 images (30 per character), rendered in memory once per session."""
    return load_glyphs(n_images=3300, seed=0, use_cache=False)
