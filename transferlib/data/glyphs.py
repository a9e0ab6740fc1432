"""Glyphs: a procedurally rendered image dataset with many tasks on the same images.

Each image is one character (110 classes: Latin, digits, Greek, symbols) drawn with a
random font face among 21 faces shipped with matplotlib (DejaVu Sans / Serif / Sans
Mono, STIX, Computer Modern), random size, rotation, position, colours, background
gradient and pixel noise. Per image the dataset records the character, 30 binary
attributes of three kinds, multi-class factors and the foreground mask.

Attributes relate to the character (the "identity" label) in three graded ways, which
is what the NCE identity-to-attribute experiment needs:

* ``character`` attributes are functions of the character (``H(a | char) = 0``);
* ``font`` attributes and some ``appearance`` attributes are drawn independently of
  the character (``H(a | char) = H(a)``);
* the other ``appearance`` attributes are drawn with probabilities that depend on the
  character's group (case, script, vowel, closed loop), so ``H(a | char)`` lies in between;
  ``appearance_dependence`` scales that dependence from 0 (independent) to 1.

``metadata["attribute_descriptions"]`` states how each attribute is generated.

Rendering: every (character, face) pair is drawn once with PIL at twice the output
size and box-filtered down to an anti-aliased alpha mask (cached in memory per size);
all images are then produced in batches by one bilinear affine warp (``grid_sample``
on a separable grid), colour compositing, Gaussian noise and quantisation. The
foreground mask is ``alpha > 0.5``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import PIL
import torch
import torch.nn.functional as F
from matplotlib.colors import hsv_to_rgb
from PIL import Image, ImageDraw, ImageFont

from transferlib.cache import artifact_path, config_key, load_npz, load_or_build, save_npz
from transferlib.data import glyph_tables as tables
from transferlib.data.dataset import ImageDataset, stratified_split
from transferlib.provenance import code_version

__all__ = ["BOOK_N_IMAGES", "FACES", "GlyphsConfig", "load_glyphs", "render_glyphs"]

#: Default size: 60,000 images (50,000 train / 10,000 test, like CIFAR), 32x32 RGB,
#: 184 MB of pixels + 61 MB of masks in memory.
BOOK_N_IMAGES = 60_000
# Images per rendering batch at 32x32 (fewer for larger images); a function of the
# configuration only, because the noise stream depends on it.
_CHUNK_PIXELS = 1024 * 32 * 32


@dataclass(frozen=True)
class Face:
    """A font file and its typographic properties."""

    file: str
    family: str
    serif: bool
    monospace: bool
    bold: bool
    italic: bool

    @property
    def style(self) -> str:
        return {(0, 0): "regular", (1, 0): "bold", (0, 1): "italic", (1, 1): "bold_italic"}[
            (int(self.bold), int(self.italic))
        ]


def _dejavu(stem: str, family: str, serif: bool, mono: bool, italic_word: str) -> list[Face]:
    return [
        Face(f"{stem}.ttf", family, serif, mono, False, False),
        Face(f"{stem}-Bold.ttf", family, serif, mono, True, False),
        Face(f"{stem}-{italic_word}.ttf", family, serif, mono, False, True),
        Face(f"{stem}-Bold{italic_word}.ttf", family, serif, mono, True, True),
    ]


FACES: tuple[Face, ...] = tuple(
    _dejavu("DejaVuSans", "dejavu_sans", False, False, "Oblique")
    + _dejavu("DejaVuSerif", "dejavu_serif", True, False, "Italic")
    + _dejavu("DejaVuSansMono", "dejavu_mono", False, True, "Oblique")
    + [
        Face("STIXGeneral.ttf", "stix", True, False, False, False),
        Face("STIXGeneralBol.ttf", "stix", True, False, True, False),
        Face("STIXGeneralItalic.ttf", "stix", True, False, False, True),
        Face("STIXGeneralBolIta.ttf", "stix", True, False, True, True),
        Face("cmr10.ttf", "computer_modern", True, False, False, False),
        Face("cmb10.ttf", "computer_modern", True, False, True, False),
        Face("cmti10.ttf", "computer_modern", True, False, False, True),
        Face("cmss10.ttf", "computer_modern", False, False, False, False),
        Face("cmtt10.ttf", "computer_modern", False, True, False, False),
    ]
)
FAMILIES = ("dejavu_sans", "dejavu_serif", "dejavu_mono", "stix", "computer_modern")
STYLES = ("regular", "bold", "italic", "bold_italic")
# matplotlib's Computer Modern files use TeX encodings for symbols ("<" draws "¡"),
# so they are used for Latin letters and digits only.
_CM_CHARACTERS = tables.LATIN_UPPER + tables.LATIN_LOWER + tables.DIGITS

COLOURS = ("red", "orange", "yellow", "green", "teal", "blue", "violet", "magenta")
_HUES = np.array([0, 30, 55, 120, 175, 220, 270, 310]) / 360.0
_WARM = (0, 1, 2)
SIZE_BUCKETS = ("small", "medium", "large")
_SCALE_EDGES = np.array([0.7, 0.85, 1.0, 1.2])
POSITIONS = tuple(
    f"{row}_{col}" for row in ("top", "middle", "bottom") for col in ("left", "centre", "right")
)

# Group-dependent probabilities of appearance factors. With appearance_dependence = d
# an image uses base + d * (group value - base).
_SIZE_BASE = np.array([0.3, 0.4, 0.3])
# The strengths are chosen so that H(attribute | char) / H(attribute) spreads over
# (0, 1): about 0.2 (warm_background), 0.4 (gradient_background), 0.5
# (warm_foreground), 0.6 (large, small), 0.9 (low_contrast).
_SIZE_BY_CASE = {"upper": [0.05, 0.15, 0.8], "lower": [0.8, 0.15, 0.05], "none": [0.3, 0.4, 0.3]}
_WARM_BASE = 0.4
_WARM_BY_SCRIPT = {
    "latin_upper": 0.9,
    "latin_lower": 0.1,
    "digit": 0.95,
    "greek_upper": 0.1,
    "greek_lower": 0.05,
    "symbol": 0.5,
}
_WARM_HUES = (330 / 360, 70 / 360)  # background hues counted as warm (wrapping through 0)
_WARM_BG_BASE = (1 - _WARM_HUES[0]) + _WARM_HUES[1]  # share of the hue circle, 0.28
_WARM_BG_UPPER, _WARM_BG_OTHER = 0.97, 0.03
_GRADIENT_BASE, _GRADIENT_VOWEL, _GRADIENT_OTHER = 0.25, 0.95, 0.05
_LOW_CONTRAST_BASE, _LOW_CONTRAST_LOOP, _LOW_CONTRAST_OTHER = 0.15, 0.3, 0.08
_P_DARK, _P_NOISY = 0.5, 0.2
_NOISE_STD = (3.0 / 255, 14.0 / 255)
_CONTRAST_KEPT = 0.3  # low-contrast images keep this fraction of the fg-bg difference
_GRADIENT_AMPLITUDE = 0.2
_ATTRIBUTE_NOISE_STREAM = 1
_SPLIT_STREAM = 2


@dataclass(frozen=True)
class GlyphsConfig:
    """Every parameter that changes the rendered pixels (the cache key).

    Parameters
    ----------
    n_images : int
        Number of images.
    image_size : int
        Height and width in pixels (32 by default; 224 for ImageNet models).
    seed : int
        Seed of every random choice.
    max_rotation : float
        Rotation angle is uniform in ``[-max_rotation, max_rotation]`` degrees; small by
        default so that the sign (``tilt_left``) is balanced but hard to see.
    max_shift : float
        Translation is uniform in ``[-max_shift, max_shift]`` in units of half the image.
    appearance_dependence : float
        In ``[0, 1]``: how strongly group-dependent appearance attributes follow the
        character (0: independent of it).
    """

    n_images: int = BOOK_N_IMAGES
    image_size: int = 32
    seed: int = 0
    max_rotation: float = 8.0
    max_shift: float = 0.2
    appearance_dependence: float = 1.0

    def __post_init__(self) -> None:
        if self.n_images < 1:
            raise ValueError(f"n_images must be positive, got {self.n_images}")
        if self.image_size < 8:
            raise ValueError(f"image_size must be at least 8, got {self.image_size}")
        if not 0.0 <= self.appearance_dependence <= 1.0:
            raise ValueError(
                f"appearance_dependence must be in [0, 1], got {self.appearance_dependence}"
            )
        if not (0 <= self.max_rotation <= 180 and 0 <= self.max_shift <= 1):
            raise ValueError(
                f"max_rotation must be in [0, 180] and max_shift in [0, 1], got "
                f"{self.max_rotation}, {self.max_shift}"
            )


def _font_dir() -> Path:
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def _atlas_size(image_size: int) -> int:
    """Side of the pre-rendered masks: the output size, at most 256."""
    return int(min(256, image_size))


@lru_cache(maxsize=2)
def glyph_atlas(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Alpha masks of every (character, face) pair and whether the face can draw it.

    Returns
    -------
    atlas : numpy.ndarray
        ``(n_characters, n_faces, size, size)`` uint8; glyphs share a baseline and are
        centred horizontally, so case and descenders keep their typographic position.
    usable : numpy.ndarray
        ``(n_characters, n_faces)`` bool; False where the face lacks the glyph (empty
        or identical to the face's "missing glyph" box) or uses a non-Unicode encoding.
    """
    big = 2 * size  # drawn at twice the size, then 2x2 box-filtered (anti-aliasing)
    atlas = np.zeros((len(tables.CHARACTERS), len(FACES), size, size), dtype=np.uint8)
    usable = np.zeros(atlas.shape[:2], dtype=bool)
    for j, face in enumerate(FACES):
        font = ImageFont.truetype(str(_font_dir() / face.file), round(0.68 * big))

        def draw(char: str, font: ImageFont.FreeTypeFont = font) -> np.ndarray:
            canvas = Image.new("L", (big, big), 0)
            ImageDraw.Draw(canvas).text(
                (big / 2, 0.71 * big), char, fill=255, font=font, anchor="ms"
            )
            return np.asarray(canvas)

        missing = draw("\ue000")  # private-use code point: the face's missing-glyph box
        for i, char in enumerate(tables.CHARACTERS):
            mask = draw(char)
            atlas[i, j] = np.round(mask.reshape(size, 2, size, 2).mean(axis=(1, 3)))
            usable[i, j] = (
                mask.max() > 0
                and not np.array_equal(mask, missing)
                and (face.family != "computer_modern" or char in _CM_CHARACTERS)
            )
    return atlas, usable


def _fallback_faces() -> np.ndarray:
    """For each face, the DejaVu face with the same serif/monospace/bold/italic flags."""
    dejavu = {
        (f.serif, f.monospace, f.bold, f.italic): k
        for k, f in enumerate(FACES)
        if f.family.startswith("dejavu")
    }
    return np.array([dejavu[(f.serif, f.monospace, f.bold, f.italic)] for f in FACES])


def _blend(base: np.ndarray | float, group: np.ndarray, dependence: float) -> np.ndarray:
    return base + dependence * (group - base)


def _sample_parameters(config: GlyphsConfig, usable: np.ndarray) -> dict[str, np.ndarray]:
    """Draw every per-image choice (vectorised, deterministic in ``config.seed``)."""
    rng = np.random.default_rng(config.seed)
    n, d = config.n_images, config.appearance_dependence
    chars = np.array(list(tables.CHARACTERS))
    n_classes = len(chars)
    char = rng.permutation(np.arange(n) % n_classes)  # classes balanced to within one image
    script = np.array([tables.script_of(c) for c in chars])[char]
    case = np.array([tables.case_of(c) for c in chars])[char]
    vowel = np.isin(chars, list(tables.VOWELS))[char]
    loop = np.isin(chars, list(tables.CLOSED_LOOPS))[char]

    requested = rng.integers(len(FACES), size=n)
    face = np.where(usable[char, requested], requested, _fallback_faces()[requested])

    size_p = _blend(_SIZE_BASE, np.array([_SIZE_BY_CASE[c] for c in case]), d)
    size_bucket = (rng.random(n)[:, None] > np.cumsum(size_p, axis=1)[:, :-1]).sum(axis=1)
    low, high = _SCALE_EDGES[size_bucket], _SCALE_EDGES[size_bucket + 1]
    scale = low + (high - low) * rng.random(n)
    rotation = rng.uniform(-config.max_rotation, config.max_rotation, n)
    shift = rng.uniform(-config.max_shift, config.max_shift, (n, 2))

    warm = rng.random(n) < _blend(_WARM_BASE, np.vectorize(_WARM_BY_SCRIPT.get)(script), d)
    cool_choices = np.setdiff1d(np.arange(len(COLOURS)), _WARM)
    colour = np.where(
        warm,
        np.asarray(_WARM)[rng.integers(len(_WARM), size=n)],
        cool_choices[rng.integers(cool_choices.size, size=n)],
    )
    dark = rng.random(n) < _P_DARK
    fg_hsv = np.stack(
        [
            (_HUES[colour] + rng.uniform(-8, 8, n) / 360) % 1.0,
            rng.uniform(0.6, 1.0, n),
            np.where(dark, rng.uniform(0.75, 1.0, n), rng.uniform(0.25, 0.6, n)),
        ],
        1,
    )
    warm_bg = rng.random(n) < _blend(
        _WARM_BG_BASE, np.where(case == "upper", _WARM_BG_UPPER, _WARM_BG_OTHER), d
    )
    # hue uniform within the warm arc or within the rest of the circle
    bg_hue = (
        np.where(
            warm_bg,
            _WARM_HUES[0] + rng.random(n) * _WARM_BG_BASE,
            _WARM_HUES[1] + rng.random(n) * (1 - _WARM_BG_BASE),
        )
        % 1.0
    )
    bg_hsv = np.stack(
        [
            bg_hue,
            rng.uniform(0.05, 0.35, n),
            np.where(dark, rng.uniform(0.05, 0.3, n), rng.uniform(0.75, 0.97, n)),
        ],
        1,
    )
    low_contrast = rng.random(n) < _blend(
        _LOW_CONTRAST_BASE, np.where(loop, _LOW_CONTRAST_LOOP, _LOW_CONTRAST_OTHER), d
    )
    gradient = rng.random(n) < _blend(
        _GRADIENT_BASE, np.where(vowel, _GRADIENT_VOWEL, _GRADIENT_OTHER), d
    )
    gradient_angle = rng.uniform(0, 2 * np.pi, n)
    noisy = rng.random(n) < _P_NOISY

    background = hsv_to_rgb(bg_hsv)
    foreground = hsv_to_rgb(fg_hsv)
    foreground = np.where(
        low_contrast[:, None], background + _CONTRAST_KEPT * (foreground - background), foreground
    )
    return {
        "char": char,
        "face": face,
        "size_bucket": size_bucket,
        "scale": scale,
        "rotation": rotation,
        "shift_x": shift[:, 0],
        "shift_y": shift[:, 1],
        "colour": colour,
        "dark_background": dark,
        "foreground": foreground,
        "background": background,
        "warm_background": warm_bg,
        "low_contrast": low_contrast,
        "gradient": gradient,
        "gradient_angle": gradient_angle,
        "noise_std": np.where(noisy, _NOISE_STD[1], _NOISE_STD[0]),
    }


def _render(
    params: dict[str, np.ndarray], atlas: np.ndarray, image_size: int, seed: int, progress: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Warp, composite and quantise all images in batches of ``_CHUNK_PIXELS`` pixels."""
    from transferlib._progress import tqdm

    n = len(params["char"])
    images = np.empty((n, 3, image_size, image_size), dtype=np.uint8)
    masks = np.empty((n, image_size, image_size), dtype=bool)
    atlas_t = torch.from_numpy(atlas)
    generator = torch.Generator().manual_seed(seed)
    # pixel-centre coordinates in [-1, 1]: output grid (gradient) and the 2x sampling grid
    ramp = (torch.arange(image_size, dtype=torch.float32) + 0.5) / image_size * 2 - 1
    side = image_size
    step = max(1, _CHUNK_PIXELS // image_size**2)
    for start in tqdm(range(0, n, step), disable=not progress, desc="rendering glyphs"):
        rows = slice(start, min(start + step, n))
        chunk = {
            key: torch.as_tensor(value[rows], dtype=torch.float32)[:, None, None, None]
            for key, value in params.items()
            if value.ndim == 1
        }
        alpha = (
            atlas_t[torch.as_tensor(params["char"][rows]), torch.as_tensor(params["face"][rows])]
            .unsqueeze(1)
            .float()
            .div_(255)
        )
        # Output point p shows glyph point R(-angle) (p - shift) / scale, so a positive
        # angle turns the glyph counter-clockwise on screen (rows grow downwards). The
        # affine map is separable in x and y: one broadcast add builds the whole grid
        # (several times faster on CPU than affine_grid or a batched matmul).
        angle = chunk["rotation"] * (math.pi / 180)
        cos, sin = torch.cos(angle) / chunk["scale"], torch.sin(angle) / chunk["scale"]
        dx = ramp.view(1, 1, side, 1) - chunk["shift_x"]  # (b, 1, side, 1)
        dy = ramp.view(1, side, 1, 1) - chunk["shift_y"]  # (b, side, 1, 1)
        grid = torch.cat([cos, sin], -1) * dx + torch.cat([-sin, cos], -1) * dy
        alpha = F.grid_sample(
            alpha, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        gradient = (_GRADIENT_AMPLITUDE * chunk["gradient"]) * (
            torch.cos(chunk["gradient_angle"]) * ramp[None, None, None, :]
            + torch.sin(chunk["gradient_angle"]) * ramp[None, None, :, None]
        )
        background = torch.as_tensor(params["background"][rows], dtype=torch.float32)
        foreground = torch.as_tensor(params["foreground"][rows], dtype=torch.float32)
        # bg + gradient outside the glyph, fg inside: bg + (fg - bg) a + gradient (1 - a)
        image = (foreground - background)[:, :, None, None] * alpha
        image += background[:, :, None, None]
        image += gradient * (1 - alpha)
        # grey (luminance) noise, the same in the three channels
        noise = torch.randn(alpha.shape, generator=generator)
        image += noise.mul_(chunk["noise_std"])
        images[rows] = image.mul_(255).round_().clamp_(0, 255).to(torch.uint8).numpy()
        masks[rows] = (alpha[:, 0] > 0.5).numpy()
    return images, masks


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run torch single-threaded: the batches are small element-wise passes, for which
    thread synchronisation costs more than it saves, badly so on a shared machine
    (measured: 15,000 images/s on one thread vs 3,200 on two at load 7 on 2 cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def render_glyphs(config: GlyphsConfig, progress: bool = False) -> dict[str, np.ndarray]:
    """Render a Glyphs set without caching: images, masks and every per-image parameter."""
    atlas, usable = glyph_atlas(_atlas_size(config.image_size))
    params = _sample_parameters(config, usable)
    with _one_torch_thread():
        images, masks = _render(params, atlas, config.image_size, config.seed, progress)
    return {"images": images, "masks": masks, "usable": usable, **params}


def _cache_key(config: GlyphsConfig) -> str:
    return config_key(
        {
            "generator": "glyphs",
            "code": code_version(__name__),
            **asdict(config),
            "faces": [f.file for f in FACES],
            "characters": tables.CHARACTERS,
            "pillow": PIL.__version__,
            "torch": torch.__version__.split("+")[0],
        }
    )


def _attribute_table(
    p: dict[str, np.ndarray], config: GlyphsConfig
) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, str]]:
    """Binary attribute columns, their kinds and how each is generated."""
    chars = np.array(list(tables.CHARACTERS))
    faces = [FACES[k] for k in range(len(FACES))]
    values: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    text: dict[str, str] = {}
    for name, (positive, description) in tables.CHARACTER_ATTRIBUTES.items():
        values[name] = np.isin(chars, list(positive))[p["char"]]
        kinds[name] = "character"
        text[name] = f"{description}; a function of the character (H(a|char) = 0)"
    for flag, description in (
        ("serif", "face from a serif family (DejaVu Serif, STIX, CM Roman)"),
        ("monospace", "monospaced face (DejaVu Sans Mono, CM Typewriter)"),
        ("bold", "bold face"),
        ("italic", "italic or oblique face"),
    ):
        values[flag] = np.array([getattr(f, flag) for f in faces])[p["face"]]
        kinds[flag] = "font"
        text[flag] = (
            f"{description}; face drawn uniformly from {len(FACES)} faces, "
            "independent of the character (a face lacking the glyph is replaced by "
            "the DejaVu face with the same serif/monospace/bold/italic flags)"
        )
    d = config.appearance_dependence
    third = config.max_shift / 3
    shift_x, shift_y = p["shift_x"], p["shift_y"]
    independent = "independent of the character"
    by_group = f"(appearance_dependence {d:g} scales the dependence on the character)"
    appearance = {
        "dark_background": p["dark_background"],
        "warm_foreground": np.isin(p["colour"], _WARM),
        "warm_background": p["warm_background"],
        "large": p["size_bucket"] == 2,
        "small": p["size_bucket"] == 0,
        "shifted_up": shift_y < -third,
        "shifted_left": shift_x < -third,
        "centred": (np.abs(shift_x) <= third) & (np.abs(shift_y) <= third),
        "tilt_left": p["rotation"] > 0,
        "noisy": p["noise_std"] > _NOISE_STD[0],
        "low_contrast": p["low_contrast"],
        "gradient_background": p["gradient"],
    }
    descriptions = {
        "dark_background": f"light glyph on a dark background; P = {_P_DARK}, {independent}. "
        "VISUALLY TRIVIAL, balanced",
        "warm_foreground": f"glyph colour red, orange or yellow; P by script {_WARM_BY_SCRIPT}, "
        f"base {_WARM_BASE} {by_group}",
        "warm_background": "background hue between pink-red and yellow on a weakly "
        f"saturated background; P = {_WARM_BG_UPPER} for capitals, "
        f"{_WARM_BG_OTHER} otherwise, base {_WARM_BG_BASE:.2f} {by_group}. "
        "SUBTLE but nearly determined by the character",
        "large": f"size bucket 'large'; P(small, medium, large) by case {_SIZE_BY_CASE} {by_group}",
        "small": f"size bucket 'small'; depends on case like 'large' {by_group}",
        "shifted_up": f"moved up by over a third of max_shift; P = 1/3, {independent}",
        "shifted_left": f"moved left by over a third of max_shift; P = 1/3, {independent}",
        "centred": "within a third of max_shift of the centre in both directions; "
        f"P = 1/9, {independent}",
        "tilt_left": f"rotated counter-clockwise (angle uniform in +-{config.max_rotation:g} "
        f"degrees); P = 1/2, {independent}. VISUALLY HARD, balanced",
        "noisy": f"strong grey pixel noise (std {_NOISE_STD[1] * 255:.0f} instead of "
        f"{_NOISE_STD[0] * 255:.0f} grey levels); P = {_P_NOISY}, {independent}",
        "low_contrast": f"glyph keeps {_CONTRAST_KEPT:.0%} of its contrast with the "
        f"background; P = {_LOW_CONTRAST_LOOP} with a closed loop, "
        f"{_LOW_CONTRAST_OTHER} without {by_group}",
        "gradient_background": "linear brightness gradient across the background; "
        f"P = {_GRADIENT_VOWEL} for vowels, {_GRADIENT_OTHER} otherwise "
        f"{by_group}",
    }
    for name, value in appearance.items():
        values[name] = value
        kinds[name] = "appearance"
        text[name] = descriptions[name]
    return values, kinds, text


def load_glyphs(
    n_images: int = BOOK_N_IMAGES,
    image_size: int = 32,
    seed: int = 0,
    *,
    max_rotation: float = 8.0,
    max_shift: float = 0.2,
    appearance_dependence: float = 1.0,
    attribute_noise: float = 0.0,
    test_fraction: float = 1 / 6,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = False,
) -> ImageDataset:
    """Load (render on first use, then read from the cache) a Glyphs dataset.

    Parameters
    ----------
    n_images, image_size, seed, max_rotation, max_shift, appearance_dependence
        Rendering parameters, see :class:`GlyphsConfig`.
    attribute_noise : float
        Probability of flipping each attribute label (independently per image and
        attribute, seeded), like the noisy annotator labels of CUB. The clean labels are
        kept in ``metadata["clean_attributes"]``. Images are unaffected.
    test_fraction : float
        Fraction of each character's images in the test split.
    cache_dir : str or Path, optional
        Cache root (default: :func:`transferlib.cache.cache_root`).
    use_cache : bool
        Read and write the cache; False renders in memory only.
    progress : bool
        Show a progress bar while rendering.

    Returns
    -------
    ImageDataset
        ``labels`` has ``char``, 30 binary attributes and the factors ``script``,
        ``case``, ``font_family``, ``font_face``, ``style``, ``colour``, ``size_bucket``
        and ``position``; ``masks`` are the foreground masks.
    """
    config = GlyphsConfig(
        n_images, image_size, seed, max_rotation, max_shift, appearance_dependence
    )
    if not 0.0 <= attribute_noise < 0.5:
        raise ValueError(f"attribute_noise must be in [0, 0.5), got {attribute_noise}")
    path, from_cache = None, False
    if use_cache:

        def render_packed() -> dict[str, np.ndarray]:
            rendered = render_glyphs(config, progress=progress)
            return {"packed_masks": np.packbits(rendered.pop("masks"), axis=-1), **rendered}

        key = _cache_key(config)
        path = artifact_path("data", key, ".npz", cache_dir)
        data, from_cache = load_or_build(
            "data",
            key,
            render_packed,
            save=save_npz,
            load=load_npz,
            suffix=".npz",
            cache_dir=cache_dir,
            description=f"Glyphs {config}",
        )
        data["masks"] = np.unpackbits(data.pop("packed_masks"), axis=-1, count=image_size)
        data["masks"] = data["masks"].astype(bool)
    else:
        data = render_glyphs(config, progress=progress)
    return _build_dataset(
        data,
        config,
        attribute_noise,
        test_fraction,
        {"cache_path": None if path is None else str(path), "from_cache": from_cache},
    )


def _build_dataset(
    data: dict[str, np.ndarray],
    config: GlyphsConfig,
    attribute_noise: float,
    test_fraction: float,
    extra: dict,
) -> ImageDataset:
    chars = list(tables.CHARACTERS)
    scripts = np.array([tables.SCRIPTS.index(tables.script_of(c)) for c in chars])
    cases = ("upper", "lower", "none")
    case_codes = np.array([cases.index(tables.case_of(c)) for c in chars])
    values, kinds, text = _attribute_table(data, config)
    clean = pd.DataFrame({k: v.astype(np.int64) for k, v in values.items()})
    observed = clean
    if attribute_noise > 0:
        rng = np.random.default_rng([config.seed, _ATTRIBUTE_NOISE_STREAM])
        flips = rng.random(clean.shape) < attribute_noise
        observed = pd.DataFrame(clean.to_numpy() ^ flips, columns=clean.columns)
    face = data["face"]
    row = np.digitize(data["shift_y"], [-config.max_shift / 3, config.max_shift / 3])
    col = np.digitize(data["shift_x"], [-config.max_shift / 3, config.max_shift / 3])
    factors = {
        "script": (scripts[data["char"]], list(tables.SCRIPTS)),
        "case": (case_codes[data["char"]], list(cases)),
        "font_family": (np.array([FAMILIES.index(f.family) for f in FACES])[face], list(FAMILIES)),
        "font_face": (face, [f.file.removesuffix(".ttf") for f in FACES]),
        "style": (np.array([STYLES.index(f.style) for f in FACES])[face], list(STYLES)),
        "colour": (data["colour"], list(COLOURS)),
        "size_bucket": (data["size_bucket"], list(SIZE_BUCKETS)),
        "position": (3 * row + col, list(POSITIONS)),
    }
    labels = pd.concat(
        [
            pd.DataFrame({"char": data["char"].astype(np.int64)}),
            observed,
            pd.DataFrame({k: v.astype(np.int64) for k, (v, _) in factors.items()}),
        ],
        axis=1,
    )
    label_names = {
        "char": chars,
        **{k: [f"not_{k}", k] for k in values},
        **{k: names for k, (_, names) in factors.items()},
    }
    usable = data["usable"]
    render_params = pd.DataFrame(
        {
            "rotation_deg": data["rotation"],
            "scale": data["scale"],
            "shift_x": data["shift_x"],
            "shift_y": data["shift_y"],
            "noise_std": data["noise_std"],
            **{f"fg_{c}": data["foreground"][:, i] for i, c in enumerate("rgb")},
            **{f"bg_{c}": data["background"][:, i] for i, c in enumerate("rgb")},
        }
    )
    metadata = {
        "generator": "glyphs",
        "code_version": code_version(__name__),
        "config": asdict(config),
        "attribute_noise": attribute_noise,
        "test_fraction": test_fraction,
        "identity_column": "char",
        "default_target": "char",
        "attribute_descriptions": text,
        # Balanced attributes whose difficulty is visual, not statistical (same entropy).
        "visual_difficulty": {"dark_background": "trivial", "tilt_left": "hard"},
        "clean_attributes": clean if attribute_noise > 0 else None,
        "faces": pd.DataFrame(
            [
                {**asdict(f), "characters_drawn": int(usable[:, k].sum())}
                for k, f in enumerate(FACES)
            ]
        ),
        "render_params": render_params,
        "per_image_keys": ("render_params", "clean_attributes"),
        **extra,
    }
    return ImageDataset(
        name="glyphs",
        images=data["images"],
        labels=labels,
        splits=stratified_split(data["char"], test_fraction, [config.seed, _SPLIT_STREAM]),
        label_names=label_names,
        attribute_kinds=kinds,
        masks=data["masks"],
        metadata=metadata,
    )
