"""Glyph scenes: a small multi-task image world, every target computed exactly from the scene.

Bao et al. (2019, §4.2-4.3) rank source tasks for target tasks on Taskonomy, where one image
carries classification labels and dense per-pixel targets (depth, edges, keypoints, ...). This
module renders a world with the same structure from the Glyphs renderer's glyph masks
(:func:`transferlib.data.glyphs.glyph_atlas`): each image is a background of one of five
*scene* styles, a *back* glyph (any Glyphs character) and a *front* glyph (one of a few *object*
characters) that partly covers it. Both glyphs are embossed: their soft masks, blurred, form a
height map lit from the top left, so the picture shows the relief. From the scene description
(the two anti-aliased glyph masks, the height map and the clean picture before noise) every
target is computed exactly, with no annotator and no model:

classification (one label per image)
    ``object`` -- the front glyph's character; ``scene`` -- the background style.
2D dense targets (per pixel)
    ``segment`` -- visible layer (background 0, back glyph 0.5, front glyph 1);
    ``edge2d`` -- Sobel gradient magnitude of the clean picture's luminance;
    ``keypoint2d`` -- Harris corner response of the clean luminance.
3D dense targets (per pixel)
    ``depth`` -- distance to the nearest layer boundary (the "distance-to-edge" depth analogue);
    ``reshading`` -- Lambertian shading of the embossed height map under a fixed light;
    ``occlusion`` -- occlusion boundaries: where the front glyph's outline lies over the back
    glyph.

Dense targets are stored as uint8 maps of the image's size (``value * 255``, values in
[0, 1]); :meth:`GlyphScenes.target` returns them as floats, optionally averaged over square
super-pixels. Generation is deterministic in the configuration and cached like Glyphs, keyed by
the configuration and the code version of this module.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from matplotlib.colors import hsv_to_rgb

from transferlib.cache import config_key, load_npz, load_or_build, save_npz
from transferlib.data import glyph_tables as tables
from transferlib.data.dataset import ImageDataset, stratified_split
from transferlib.data.glyphs import FACES, glyph_atlas
from transferlib.provenance import code_version

__all__ = [
    "CLASSIFICATION_TASKS",
    "DENSE_TASKS",
    "OBJECT_CHARACTERS",
    "SCENES",
    "TASK_GROUPS",
    "GlyphScenes",
    "GlyphScenesConfig",
    "load_glyph_scenes",
]

#: Characters the front glyph ("object") is drawn from: capitals with straight strokes, curves
#: and corners in different proportions.
OBJECT_CHARACTERS = "ABEHKMRSWX"
#: Background styles ("scene" classes).
SCENES = ("flat", "horizontal_gradient", "vertical_gradient", "stripes", "checker")
CLASSIFICATION_TASKS = ("object", "scene")
DENSE_TASKS = ("segment", "edge2d", "keypoint2d", "depth", "reshading", "occlusion")
#: Taskonomy's grouping of the tasks: classification, 2D and 3D.
TASK_GROUPS: dict[str, str] = {
    "object": "classification",
    "scene": "classification",
    "segment": "2D",
    "edge2d": "2D",
    "keypoint2d": "2D",
    "depth": "3D",
    "reshading": "3D",
    "occlusion": "3D",
}
DESCRIPTIONS: dict[str, str] = {
    "object": "character of the front glyph ({n} classes)",
    "scene": f"background style ({len(SCENES)} classes: {', '.join(SCENES)})",
    "segment": "visible layer: background 0, back glyph 0.5, front glyph 1",
    "edge2d": "Sobel gradient magnitude of the clean luminance, divided by 2, clipped to 1",
    "keypoint2d": "Harris corner response of the clean luminance (structure tensor smoothed "
    "with a Gaussian of 1 px, k = 0.05), positive part, squashed by tanh(R / 0.0002)",
    "depth": "distance to the nearest boundary between visible layers, in units of a quarter "
    "of the image side, clipped to 1",
    "reshading": "Lambertian shading n.l of the embossed height map, light from the top left",
    "occlusion": "gradient magnitude of the front glyph's mask where the back glyph lies "
    "under it (occlusion boundaries), blurred with a Gaussian of 1 px, times 4, clipped to 1",
}

_LIGHT = np.array([-1.0, -1.0, 1.5]) / np.linalg.norm([-1.0, -1.0, 1.5])
_RELIEF = 0.25  # height-map slope gain per pixel of image side: how strongly glyphs stand out
_BLUR_SIGMA = 0.07  # bump profile, as a fraction of the image side
_HARRIS_K, _HARRIS_SCALE = 0.05, 0.0002
_CHUNK = 1024


@dataclass(frozen=True)
class GlyphScenesConfig:
    """Every parameter that changes the rendered scenes (the cache key).

    Parameters
    ----------
    n_images : int
        Number of scenes.
    image_size : int
        Height and width in pixels (at least 16).
    seed : int
        Seed of every random choice.
    n_objects : int
        Object classes: the first ``n_objects`` of :data:`OBJECT_CHARACTERS`.
    noise_std : float
        Standard deviation of the grey pixel noise, on the [0, 1] intensity scale.
    """

    n_images: int = 4_000
    image_size: int = 32
    seed: int = 0
    n_objects: int = 10
    noise_std: float = 0.02

    def __post_init__(self) -> None:
        if isinstance(self.n_images, bool) or not isinstance(self.n_images, int):
            raise TypeError(f"n_images must be an integer, got {self.n_images!r}")
        if self.n_images < 10:
            raise ValueError(f"n_images must be at least 10, got {self.n_images}")
        if not isinstance(self.image_size, int) or self.image_size < 16:
            raise ValueError(f"image_size must be an integer >= 16, got {self.image_size!r}")
        if not isinstance(self.n_objects, int) or not 2 <= self.n_objects <= len(OBJECT_CHARACTERS):
            raise ValueError(
                f"n_objects must be an integer in [2, {len(OBJECT_CHARACTERS)}], "
                f"got {self.n_objects!r}"
            )
        if not 0 <= self.noise_std < 0.5:
            raise ValueError(f"noise_std must be in [0, 0.5), got {self.noise_std}")


@dataclass(frozen=True)
class GlyphScenes:
    """A rendered world: images with classification labels, and dense per-pixel targets.

    Attributes
    ----------
    dataset : ImageDataset
        Images, the classification labels ``object`` and ``scene`` (and the scene factors
        ``back_character`` and ``face``), train/test splits, foreground masks.
    dense : dict of str to numpy.ndarray
        Every dense target of :data:`DENSE_TASKS` as uint8 ``(N, S, S)`` maps, ``value * 255``.
    config : GlyphScenesConfig
    from_cache : bool
    """

    dataset: ImageDataset
    dense: dict[str, np.ndarray]
    config: GlyphScenesConfig
    from_cache: bool = False

    @property
    def tasks(self) -> tuple[str, ...]:
        """Every task: classification first, then the dense ones."""
        return CLASSIFICATION_TASKS + DENSE_TASKS

    def target(self, name: str, rows: np.ndarray | None = None, superpixel: int = 1) -> np.ndarray:
        """Dense target ``name`` as float32 values in [0, 1], shape ``(n, S/p, S/p)``.

        ``superpixel`` ``p`` averages the map over ``p x p`` blocks (Bao et al. suggest
        super-pixels for large images); it must divide the image side.
        """
        if name not in self.dense:
            raise ValueError(f"no dense target {name!r}; valid: {list(self.dense)}")
        side = self.config.image_size
        if not isinstance(superpixel, int) or superpixel < 1 or side % superpixel:
            raise ValueError(f"superpixel must be a divisor of {side}, got {superpixel!r}")
        maps = self.dense[name] if rows is None else self.dense[name][np.asarray(rows)]
        values = maps.astype(np.float32) / 255.0
        if superpixel > 1:
            blocks = side // superpixel
            values = values.reshape(-1, blocks, superpixel, blocks, superpixel).mean(axis=(2, 4))
        return values

    def describe(self) -> pd.DataFrame:
        """One row per task: its group (classification, 2D, 3D) and how it is computed."""
        return pd.DataFrame(
            {
                "task": list(self.tasks),
                "group": [TASK_GROUPS[t] for t in self.tasks],
                "definition": [DESCRIPTIONS[t].format(n=self.config.n_objects) for t in self.tasks],
            }
        )


# ------------------------------------------------------------------------------------------
# Scene parameters
# ------------------------------------------------------------------------------------------


def _bold_faces_for(chars: np.ndarray, usable: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """A bold face that can draw each character (``draws`` uniform in [0, 1) picks which)."""
    bold = np.array([face.bold for face in FACES])
    allowed = usable[chars] & bold  # (n, faces)
    counts = allowed.sum(axis=1)
    pick = np.floor(draws * counts).astype(np.int64)
    return (np.cumsum(allowed, axis=1) > pick[:, None]).argmax(axis=1)


def _sample(config: GlyphScenesConfig, usable: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(config.seed)
    n = config.n_images
    object_codes = np.array([tables.CHARACTERS.index(c) for c in OBJECT_CHARACTERS])
    objects = rng.permutation(np.arange(n) % config.n_objects)  # balanced within one image
    scenes = rng.permutation(np.arange(n) % len(SCENES))
    front_char = object_codes[objects]
    back_char = rng.integers(len(tables.CHARACTERS), size=n)
    back_face = _bold_faces_for(back_char, usable, rng.random(n))
    front_face = _bold_faces_for(front_char, usable, rng.random(n))
    back_centre = rng.uniform(-0.25, 0.25, (n, 2))
    angle = rng.uniform(0, 2 * np.pi, n)
    separation = rng.uniform(0.25, 0.45, n)
    front_centre = np.clip(
        back_centre + separation[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1), -0.4, 0.4
    )
    hues = rng.random((n, 3))
    front_hue = (hues[:, 0] + rng.uniform(0.25, 0.75, n)) % 1.0  # away from the back glyph's
    colours = {
        "background": hsv_to_rgb(
            np.stack([hues[:, 2], rng.uniform(0.1, 0.4, n), rng.uniform(0.55, 0.85, n)], 1)
        ),
        "back_colour": hsv_to_rgb(
            np.stack([hues[:, 0], rng.uniform(0.5, 0.9, n), rng.uniform(0.3, 0.6, n)], 1)
        ),
        "front_colour": hsv_to_rgb(
            np.stack([front_hue, rng.uniform(0.5, 0.9, n), rng.uniform(0.7, 1.0, n)], 1)
        ),
    }
    return {
        "object": objects,
        "scene": scenes,
        "front_char": front_char,
        "back_char": back_char,
        "front_face": front_face,
        "back_face": back_face,
        "front_shift": front_centre,
        "back_shift": back_centre,
        "front_scale": rng.uniform(0.8, 0.95, n),
        "back_scale": rng.uniform(0.8, 0.95, n),
        "front_rotation": rng.uniform(-10, 10, n),
        "back_rotation": rng.uniform(-10, 10, n),
        "pattern_phase": rng.uniform(0, 2 * np.pi, n),
        **colours,
    }


# ------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------


def _warp(
    alpha: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, rotation: torch.Tensor, side: int
) -> torch.Tensor:
    """Place glyph masks (b, 1, A, A): output point p shows glyph point R(-angle)(p - shift)/scale.

    The same separable affine map as the Glyphs renderer (pixel-centre coordinates in [-1, 1]).
    """
    ramp = (torch.arange(side, dtype=torch.float32) + 0.5) / side * 2 - 1
    angle = (rotation * (math.pi / 180))[:, None, None, None]
    scale = scale[:, None, None, None]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    dx = ramp.view(1, 1, side, 1) - shift[:, 0, None, None, None]
    dy = ramp.view(1, side, 1, 1) - shift[:, 1, None, None, None]
    grid = torch.cat([cos, sin], -1) * dx + torch.cat([-sin, cos], -1) * dy
    return F.grid_sample(alpha, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _gaussian(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (b, 1, S, S) maps (reflecting borders)."""
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=x.dtype) / sigma) ** 2)
    taps = taps / taps.sum()
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), taps.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), taps.view(1, 1, -1, 1))


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel derivatives (d/dx, d/dy) of (b, 1, S, S) maps, per pixel, replicated borders."""
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return F.conv2d(padded, sobel.view(1, 1, 3, 3)), F.conv2d(padded, sobel.T.reshape(1, 1, 3, 3))


def _background(
    kind: torch.Tensor, colour: torch.Tensor, phase: torch.Tensor, side: int
) -> torch.Tensor:
    """(b, 3, S, S) backgrounds: a base colour times a pattern chosen by the scene class."""
    ramp = (torch.arange(side, dtype=torch.float32) + 0.5) / side * 2 - 1
    x, y = ramp.view(1, 1, 1, side), ramp.view(1, 1, side, 1)
    period = 2 * math.pi * side / 8  # stripes and checks 8 px wide
    phase = phase.view(-1, 1, 1, 1)
    patterns = torch.stack(
        [
            torch.zeros_like(x * y).expand(len(kind), 1, side, side),
            (0.25 * x).expand(len(kind), 1, side, side),
            (0.25 * y).expand(len(kind), 1, side, side),
            0.12 * torch.sign(torch.sin(period * (x + y) / 2 + phase)),
            0.12 * torch.sign(torch.sin(period * x / 2 + phase) * torch.sin(period * y / 2)),
        ]
    )
    pattern = patterns[kind, torch.arange(len(kind))]
    return colour[:, :, None, None] * (1 + pattern)


def _harris(luminance: torch.Tensor) -> torch.Tensor:
    gx, gy = _gradients(luminance)
    xx, yy, xy = (_gaussian(v, 1.0) for v in (gx * gx, gy * gy, gx * gy))
    response = xx * yy - xy * xy - _HARRIS_K * (xx + yy) ** 2
    return torch.tanh(response.clamp(min=0) / _HARRIS_SCALE)


def _layer_distance(segment: np.ndarray) -> np.ndarray:
    """Euclidean distance of every pixel to the nearest pixel of another visible layer."""
    from scipy.ndimage import distance_transform_edt

    distance = np.zeros(segment.shape, dtype=np.float32)
    for index, layers in enumerate(segment):  # scipy's transform is per image
        for value in np.unique(layers):
            inside = layers == value
            distance[index][inside] = distance_transform_edt(inside)[inside]
    return distance


def _render_chunk(
    p: dict[str, np.ndarray],
    atlas: torch.Tensor,
    config: GlyphScenesConfig,
    generator: torch.Generator,
) -> dict[str, np.ndarray]:
    side = config.image_size
    t = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in p.items()}

    def alpha(which: str) -> torch.Tensor:
        masks = atlas[torch.as_tensor(p[f"{which}_char"]), torch.as_tensor(p[f"{which}_face"])]
        return _warp(
            masks.unsqueeze(1).float().div_(255),
            t[f"{which}_shift"],
            t[f"{which}_scale"],
            t[f"{which}_rotation"],
            side,
        )

    back, front = alpha("back"), alpha("front")
    sigma = _BLUR_SIGMA * side
    height = (1 - front) * 0.5 * _gaussian(back, sigma) + front * (
        0.5 + 0.5 * _gaussian(front, sigma)
    )
    hx, hy = _gradients(height)
    gain = _RELIEF * side
    normal = torch.cat([-gain * hx, -gain * hy, torch.ones_like(hx)], 1)
    normal = normal / normal.norm(dim=1, keepdim=True)
    light = torch.as_tensor(_LIGHT, dtype=torch.float32).view(1, 3, 1, 1)
    shading = (normal * light).sum(1, keepdim=True).clamp(0, 1)

    picture = _background(torch.as_tensor(p["scene"]), t["background"], t["pattern_phase"], side)
    picture = picture * (1 - back) + t["back_colour"][:, :, None, None] * back
    picture = picture * (1 - front) + t["front_colour"][:, :, None, None] * front
    picture = (picture * (1 + 1.2 * (shading - float(_LIGHT[2])))).clamp(0, 1)
    luminance = (picture * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, True)
    gx, gy = _gradients(luminance)
    noise = torch.randn(luminance.shape, generator=generator) * config.noise_std
    images = (picture + noise).mul(255).round().clamp(0, 255).to(torch.uint8)

    segment = torch.where(front > 0.5, 2, torch.where(back > 0.5, 1, 0))[:, 0].numpy()
    fx, fy = _gradients(front)
    under = (_gaussian(back, 1.0) > 0.3).float()
    dense = {
        "segment": segment / 2.0,
        "edge2d": (2 * torch.sqrt(gx**2 + gy**2)).clamp(0, 1)[:, 0].numpy(),
        "keypoint2d": _harris(luminance)[:, 0].numpy(),
        "depth": np.clip(_layer_distance(segment) / (side / 4), 0, 1),
        "reshading": shading[:, 0].numpy(),
        "occlusion": (4 * _gaussian(torch.sqrt(fx**2 + fy**2) * under, 1.0))
        .clamp(0, 1)[:, 0]
        .numpy(),
    }
    return {
        "images": images.numpy(),
        "masks": segment > 0,
        **{name: np.round(value * 255).astype(np.uint8) for name, value in dense.items()},
    }


def render_glyph_scenes(config: GlyphScenesConfig, progress: bool = False) -> dict[str, np.ndarray]:
    """Render a world without caching: images, masks, dense targets and scene parameters."""
    from transferlib._progress import tqdm

    atlas, usable = glyph_atlas(min(256, config.image_size))
    params = _sample(config, usable)
    atlas_t = torch.from_numpy(atlas)
    generator = torch.Generator().manual_seed(config.seed)
    parts: list[dict[str, np.ndarray]] = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small element-wise batches: threads cost more than they save
    try:
        for start in tqdm(
            range(0, config.n_images, _CHUNK), disable=not progress, desc="rendering glyph scenes"
        ):
            chunk = {k: v[start : start + _CHUNK] for k, v in params.items()}
            parts.append(_render_chunk(chunk, atlas_t, config, generator))
    finally:
        torch.set_num_threads(threads)
    rendered = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    return {**rendered, **params}


def _cache_key(config: GlyphScenesConfig) -> str:
    return config_key(
        {
            "generator": "glyph_scenes",
            "code": code_version(__name__),
            **asdict(config),
            "torch": torch.__version__.split("+")[0],
        }
    )


def load_glyph_scenes(
    n_images: int = 4_000,
    image_size: int = 32,
    seed: int = 0,
    *,
    n_objects: int = 10,
    noise_std: float = 0.02,
    test_fraction: float = 0.25,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> GlyphScenes:
    """Load (render on first use, then read from the cache) a glyph-scenes world.

    Parameters
    ----------
    n_images, image_size, seed, n_objects, noise_std
        See :class:`GlyphScenesConfig`.
    test_fraction : float
        Fraction of each object class in the test split.
    cache_dir : str or Path, optional
        Cache root (default: :func:`transferlib.cache.cache_root`).
    progress : bool
        Progress bar while rendering.

    Returns
    -------
    GlyphScenes

    Examples
    --------
    >>> world = load_glyph_scenes(n_images=200, image_size=32)  # doctest: +SKIP
    >>> world.dataset.images.shape, world.target("reshading").shape  # doctest: +SKIP
    ((200, 3, 32, 32), (200, 32, 32))
    """
    config = GlyphScenesConfig(n_images, image_size, seed, n_objects, noise_std)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    data, from_cache = load_or_build(
        "data",
        f"glyph-scenes-{_cache_key(config)}",
        lambda: render_glyph_scenes(config, progress=progress),
        save=save_npz,
        load=load_npz,
        suffix=".npz",
        cache_dir=cache_dir,
        description=f"glyph scenes {config}",
    )
    return _build_world(data, config, test_fraction, from_cache)


def _build_world(
    data: dict[str, np.ndarray], config: GlyphScenesConfig, test_fraction: float, from_cache: bool
) -> GlyphScenes:
    labels = pd.DataFrame(
        {
            "object": data["object"].astype(np.int64),
            "scene": data["scene"].astype(np.int64),
            "back_character": data["back_char"].astype(np.int64),
            "face": data["front_face"].astype(np.int64),
        }
    )
    dataset = ImageDataset(
        name="glyph_scenes",
        images=data["images"],
        labels=labels,
        splits=stratified_split(data["object"], test_fraction, [config.seed, 2]),
        label_names={
            "object": list(OBJECT_CHARACTERS[: config.n_objects]),
            "scene": list(SCENES),
            "back_character": list(tables.CHARACTERS),
            "face": [f.file.removesuffix(".ttf") for f in FACES],
        },
        masks=data["masks"],
        metadata={
            "generator": "glyph_scenes",
            "code_version": code_version(__name__),
            "config": asdict(config),
            "default_target": "object",
            "descriptions": {t: DESCRIPTIONS[t].format(n=config.n_objects) for t in TASK_GROUPS},
        },
    )
    dense = {name: data[name] for name in DENSE_TASKS}
    return GlyphScenes(dataset=dataset, dense=dense, config=config, from_cache=from_cache)
