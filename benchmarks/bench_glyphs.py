"""Glyphs rendering speed: batched renderer vs a naive per-image PIL loop, and cache reads.

Usage (2 cores, polite on a shared machine)::

    nice .venv/bin/python benchmarks/bench_glyphs.py --threads 2

Prints images/s of :func:`transferlib.data.glyphs.render_glyphs` (everything after the
glyph masks are built: parameter sampling, warping, compositing, noise, quantisation;
best of ``--repeats``), of the first uncached :func:`load_glyphs` call (glyph masks +
rendering + writing the cache), of a cached load, and of a naive loop that draws every
image with PIL (font objects cached, same kinds of randomness). ``--threads`` sets
torch's thread count for the process (the renderer itself runs on one thread, see
``glyphs._one_torch_thread``). Results also go to ``benchmarks/results/bench_glyphs.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from transferlib.data import glyph_tables as tables
from transferlib.data import glyphs


def naive_render(n_images: int, image_size: int, seed: int) -> np.ndarray:
    """Reference: one PIL draw + rotate + resize per image (the obvious implementation)."""
    rng = np.random.default_rng(seed)
    fonts: dict[tuple[int, int], ImageFont.FreeTypeFont] = {}
    big = 2 * image_size
    out = np.empty((n_images, 3, image_size, image_size), dtype=np.uint8)
    dejavu = [k for k, f in enumerate(glyphs.FACES) if f.family.startswith("dejavu")]
    for i in range(n_images):
        char = tables.CHARACTERS[rng.integers(len(tables.CHARACTERS))]
        face = dejavu[rng.integers(len(dejavu))]
        size = int(big * rng.uniform(0.45, 0.8))
        font = fonts.get((face, size))
        if font is None:
            font = fonts[(face, size)] = ImageFont.truetype(
                str(glyphs._font_dir() / glyphs.FACES[face].file), size
            )
        alpha = Image.new("L", (big, big), 0)
        shift = rng.uniform(-0.1, 0.1, 2) * big
        ImageDraw.Draw(alpha).text(
            (big / 2 + shift[0], 0.71 * big + shift[1]), char, fill=255, font=font, anchor="ms"
        )
        alpha = alpha.rotate(rng.uniform(-8, 8), resample=Image.BILINEAR)
        background = Image.new("RGB", (big, big), tuple(rng.integers(0, 255, 3).tolist()))
        foreground = Image.new("RGB", (big, big), tuple(rng.integers(0, 255, 3).tolist()))
        image = Image.composite(foreground, background, alpha).resize(
            (image_size, image_size), Image.BILINEAR
        )
        pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 3, (image_size, image_size, 3))
        out[i] = np.clip(pixels.round(), 0, 255).astype(np.uint8).transpose(2, 0, 1)
    return out


def timed(function, repeats: int) -> float:
    """Best wall-clock time of ``repeats`` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=20_000)
    parser.add_argument("--naive-images", type=int, default=2_000)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    config = glyphs.GlyphsConfig(n_images=args.n_images, image_size=args.image_size)
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        glyphs.load_glyphs(n_images=args.n_images, image_size=args.image_size, cache_dir=cache)
        first_load = time.perf_counter() - start  # includes building the glyph masks
        render = timed(lambda: glyphs.render_glyphs(config), args.repeats)
        cached = timed(
            lambda: glyphs.load_glyphs(
                n_images=args.n_images, image_size=args.image_size, cache_dir=cache
            ),
            args.repeats,
        )
    naive = timed(lambda: naive_render(args.naive_images, args.image_size, 0), 1)
    results = {
        "image_size": args.image_size,
        "threads": args.threads,
        "n_images": args.n_images,
        "batched_images_per_s": args.n_images / render,
        "first_uncached_load_images_per_s": args.n_images / first_load,
        "cached_load_images_per_s": args.n_images / cached,
        "naive_pil_images_per_s": args.naive_images / naive,
    }
    results["speedup_vs_naive"] = (
        results["batched_images_per_s"] / results["naive_pil_images_per_s"]
    )
    for key, value in results.items():
        print(f"{key:34s} {value:,.1f}" if isinstance(value, float) else f"{key:34s} {value}")
    out = Path(__file__).parent / "results" / "bench_glyphs.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
