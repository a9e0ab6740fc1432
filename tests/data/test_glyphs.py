"""Glyphs: determinism, label correctness, caching, options."""

import numpy as np
import pandas as pd
import pytest

from transferlib.data import glyph_tables as tables
from transferlib.data import glyphs as glyphs_module
from transferlib.data import load_dataset, load_glyphs


def test_size_classes_attributes(glyphs):
    assert glyphs.images.shape == (3300, 3, 32, 32) and glyphs.images.dtype == np.uint8
    assert glyphs.masks.shape == (3300, 32, 32) and glyphs.masks.dtype == bool
    assert len(glyphs.label_names["char"]) >= 100
    assert len(glyphs.attributes) >= 30
    assert set(glyphs.attribute_kinds.values()) == {"character", "font", "appearance"}
    for factor in (
        "char",
        "script",
        "case",
        "font_family",
        "font_face",
        "style",
        "colour",
        "size_bucket",
        "position",
    ):
        assert factor in glyphs.factors
    assert set(glyphs.metadata["attribute_descriptions"]) == set(glyphs.attributes)
    assert np.all(np.isin(glyphs.labels[glyphs.attributes].to_numpy(), [0, 1]))


def test_characters_are_balanced(glyphs):
    counts = np.bincount(glyphs.column("char"))
    assert counts.max() - counts.min() <= 1
    test_counts = np.bincount(glyphs.column("char")[glyphs.splits["test"]])
    assert test_counts.max() - test_counts.min() <= 1
    assert np.intersect1d(glyphs.splits["train"], glyphs.splits["test"]).size == 0
    assert len(glyphs.splits["train"]) + len(glyphs.splits["test"]) == len(glyphs)


def test_same_seed_same_bytes_other_seed_differs():
    a = load_glyphs(n_images=300, seed=3, use_cache=False)
    b = load_glyphs(n_images=300, seed=3, use_cache=False)
    c = load_glyphs(n_images=300, seed=4, use_cache=False)
    assert a.images.tobytes() == b.images.tobytes()
    assert np.array_equal(a.masks, b.masks)
    pd.testing.assert_frame_equal(a.labels, b.labels)
    assert a.images.tobytes() != c.images.tobytes()
    assert not a.labels.equals(c.labels)


def test_character_attributes_are_functions_of_char(glyphs):
    for name in (a for a in glyphs.attributes if glyphs.attribute_kinds[a] == "character"):
        assert glyphs.labels.groupby("char")[name].nunique().max() == 1, name


def test_character_attributes_match_the_characters(glyphs):
    chars = np.array(glyphs.label_names["char"])[glyphs.column("char")]
    upper = np.array([c.isupper() for c in chars])
    lower = np.array([c.islower() for c in chars])
    assert np.array_equal(glyphs.column("uppercase") == 1, upper)
    assert np.array_equal(glyphs.column("lowercase") == 1, lower)
    assert np.array_equal(glyphs.column("digit") == 1, np.char.isdigit(chars.astype(str)))
    greek = np.array([0x370 <= ord(c) <= 0x3FF for c in chars])
    assert np.array_equal(glyphs.column("greek") == 1, greek)
    assert np.array_equal(
        glyphs.column("vowel") == 1,
        np.isin(chars, list("aeiouAEIOU")) | (greek & np.isin(chars, list(tables.VOWELS))),
    )


def test_font_attributes_follow_the_face(glyphs):
    faces = glyphs.metadata["faces"]
    face = glyphs.column("font_face")
    for flag in ("serif", "monospace", "bold", "italic"):
        assert np.array_equal(glyphs.column(flag), faces[flag].to_numpy()[face].astype(int))
    # Computer Modern is never used for the characters its files encode differently.
    cm = glyphs.column("font_family") == glyphs.label_names["font_family"].index("computer_modern")
    chars = np.array(glyphs.label_names["char"])[glyphs.column("char")]
    assert np.isin(chars[cm], list(tables.LATIN_UPPER + tables.LATIN_LOWER + tables.DIGITS)).all()


def test_appearance_attributes_match_the_pixels(glyphs):
    params = glyphs.metadata["render_params"]
    assert np.array_equal(glyphs.column("tilt_left") == 1, params["rotation_deg"] > 0)
    assert np.array_equal(glyphs.column("shifted_up") == 1, params["shift_y"] < -0.2 / 3)
    # dark background: the glyph's pixels are brighter (max channel) than the background's
    value = glyphs.images.max(axis=1).astype(float)
    mask = glyphs.masks
    assert mask.sum(axis=(1, 2)).min() > 0
    inside = (value * mask).sum((1, 2)) / mask.sum((1, 2))
    outside = (value * ~mask).sum((1, 2)) / (~mask).sum((1, 2))
    assert np.array_equal(inside > outside, glyphs.column("dark_background") == 1)
    # large glyphs cover more pixels than small ones
    area = mask.sum((1, 2))
    assert area[glyphs.column("large") == 1].mean() > 1.5 * area[glyphs.column("small") == 1].mean()


def test_balanced_hard_and_trivial_attributes(glyphs):
    for name in ("tilt_left", "dark_background"):
        assert abs(glyphs.labels[name].mean() - 0.5) < 0.05
        assert "balanced" in glyphs.metadata["attribute_descriptions"][name]
    rates = glyphs.labels[glyphs.attributes].mean()
    assert rates.min() < 0.2 and rates.max() > 0.45


def _rate_spread(dataset, attribute):
    rates = dataset.labels.groupby("script")[attribute].mean()
    return rates.max() - rates.min()


def test_appearance_dependence_controls_the_link_to_the_character(glyphs):
    independent = load_glyphs(n_images=3300, seed=0, appearance_dependence=0.0, use_cache=False)
    assert _rate_spread(glyphs, "warm_foreground") > 0.5  # digits 0.85 vs Greek lower 0.1
    assert _rate_spread(independent, "warm_foreground") < 0.2
    # font attributes never depend on the character
    assert _rate_spread(glyphs, "bold") < 0.2


def test_attribute_noise_flips_labels_at_the_requested_rate():
    clean = load_glyphs(n_images=2000, seed=1, use_cache=False)
    noisy = load_glyphs(n_images=2000, seed=1, attribute_noise=0.1, use_cache=False)
    assert noisy.images.tobytes() == clean.images.tobytes()
    attrs = clean.attributes
    pd.testing.assert_frame_equal(noisy.metadata["clean_attributes"], clean.labels[attrs])
    flipped = (noisy.labels[attrs].to_numpy() != clean.labels[attrs].to_numpy()).mean()
    assert 0.09 < flipped < 0.11
    assert noisy.metadata["attribute_noise"] == 0.1
    assert noisy.labels["char"].equals(clean.labels["char"])


def test_cache_reuse_does_not_render_again(private_cache, monkeypatch):
    first = load_glyphs(n_images=200, seed=0)
    assert not first.metadata["from_cache"]
    assert first.metadata["cache_path"].startswith(str(private_cache))

    def fail(*args, **kwargs):
        raise AssertionError("rendered although cached")

    monkeypatch.setattr(glyphs_module, "render_glyphs", fail)
    second = load_glyphs(n_images=200, seed=0)
    assert second.metadata["from_cache"]
    assert second.images.tobytes() == first.images.tobytes()
    assert np.array_equal(second.masks, first.masks)
    pd.testing.assert_frame_equal(second.labels, first.labels)
    with pytest.raises(AssertionError, match="rendered"):
        load_glyphs(n_images=200, seed=0, max_rotation=5.0)  # another key


def test_image_size_and_registry():
    big = load_dataset("glyphs", n_images=120, image_size=64, use_cache=False)
    assert big.images.shape == (120, 3, 64, 64) and big.masks.shape == (120, 64, 64)
    train = load_dataset("glyphs", split="train", n_images=220, use_cache=False)
    assert len(train) == len(train.splits["train"]) and "test" in train.splits


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_images": 0}, "n_images"),
        ({"image_size": 4}, "image_size"),
        ({"appearance_dependence": 1.5}, "appearance_dependence"),
        ({"attribute_noise": 0.7}, "attribute_noise"),
        ({"test_fraction": 1.0}, "test_fraction"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_glyphs(**{"n_images": 50, "use_cache": False, **kwargs})


def test_every_face_draws_every_glyph_it_is_used_for():
    atlas, usable = glyphs_module.glyph_atlas(64)
    assert usable[:, [f.family != "computer_modern" for f in glyphs_module.FACES]].all()
    ink = atlas.reshape(*atlas.shape[:2], -1).max(-1)
    assert (ink[usable] > 0).all()


def test_subset_keeps_per_image_metadata_aligned():
    data = load_glyphs(n_images=400, seed=2, attribute_noise=0.2, use_cache=False)
    rows = np.array([5, 17, 300])
    sub = data.subset(rows)
    params = data.metadata["render_params"]
    assert np.array_equal(
        sub.metadata["render_params"]["rotation_deg"], params["rotation_deg"].to_numpy()[rows]
    )
    assert np.array_equal(
        sub.metadata["clean_attributes"].to_numpy(),
        data.metadata["clean_attributes"].to_numpy()[rows],
    )


def _entropy(counts):
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def test_identity_to_attribute_entropy_spreads_from_zero_to_full(glyphs):
    """H(a | char) / H(a): 0 for character attributes, ~1 for independent ones, between
    for the group-dependent appearance attributes (the NCE identity case study)."""
    ratios = {}
    for name in glyphs.attributes:
        joint = pd.crosstab(glyphs.labels["char"], glyphs.labels[name]).to_numpy()
        conditional = _entropy(joint.ravel()) - _entropy(joint.sum(axis=1))
        ratios[name] = conditional / _entropy(joint.sum(axis=0))
    for name, kind in glyphs.attribute_kinds.items():
        if kind == "character":
            assert ratios[name] == pytest.approx(0.0, abs=1e-9)
    for name in ("serif", "bold", "dark_background", "tilt_left", "noisy"):
        assert ratios[name] > 0.9, name
    partial = [
        ratios[n]
        for n in (
            "warm_background",
            "gradient_background",
            "warm_foreground",
            "large",
            "low_contrast",
        )
    ]
    assert all(0.1 < r < 0.95 for r in partial) and max(partial) - min(partial) > 0.5
