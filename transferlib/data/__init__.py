"""Datasets and transfer tasks.

Two datasets are embedded and run anywhere without files or network: Glyphs (rendered
characters with 30 attributes, several factors and masks; :mod:`transferlib.data.glyphs`)
and scikit-learn's digits. The papers' real datasets load from their official files
through the same :func:`load_dataset` call. :mod:`transferlib.data.tasks` builds the
target tasks of each paper as :class:`TaskSpec` lists.

Examples
--------
>>> from transferlib.data import load_dataset, as_task
>>> glyphs = load_dataset("glyphs", n_images=2000, seed=0)  # doctest: +SKIP
>>> train, test = as_task(glyphs, "uppercase")               # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from transferlib.data.dataset import (
    CONSTANT,
    MASK,
    ImageDataset,
    TaskData,
    TaskSpec,
    as_task,
    make_task_data,
    stratified_split,
)
from transferlib.data.digits import load_digits
from transferlib.data.glyph_scenes import GlyphScenes, GlyphScenesConfig, load_glyph_scenes
from transferlib.data.glyphs import BOOK_N_IMAGES, GlyphsConfig, load_glyphs
from transferlib.data.real import REAL_DATASETS, LazyImages
from transferlib.data.show import attribute_table, show_grid
from transferlib.data.tasks import (
    attribute_tasks,
    class_split,
    few_shot_episodes,
    identity_task,
    imbalanced_binary_tasks,
    k_class_tasks,
    multi_task_set,
    p2l_domains,
    p2l_targets,
    random_class_subsets,
    small_balanced_tasks,
    trivial_task,
)

__all__ = [
    "BOOK_N_IMAGES",
    "CONSTANT",
    "DATASETS",
    "EMBEDDED_DATASETS",
    "MASK",
    "GlyphScenes",
    "GlyphScenesConfig",
    "GlyphsConfig",
    "ImageDataset",
    "LazyImages",
    "TaskData",
    "TaskSpec",
    "as_task",
    "attribute_table",
    "attribute_tasks",
    "class_split",
    "few_shot_episodes",
    "identity_task",
    "imbalanced_binary_tasks",
    "k_class_tasks",
    "load_dataset",
    "load_digits",
    "load_glyph_scenes",
    "load_glyphs",
    "make_task_data",
    "multi_task_set",
    "p2l_domains",
    "p2l_targets",
    "random_class_subsets",
    "show_grid",
    "small_balanced_tasks",
    "stratified_split",
    "trivial_task",
]

EMBEDDED_DATASETS = ("glyphs", "digits")
DATASETS = EMBEDDED_DATASETS + tuple(REAL_DATASETS)


def load_dataset(
    name: str,
    data_root: str | Path | None = None,
    split: str | None = None,
    seed: int = 0,
    **options,
) -> ImageDataset:
    """Load a dataset by name.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`: ``"glyphs"``, ``"digits"`` (embedded), ``"cifar10"``,
        ``"cifar100"``, ``"mnist"``, ``"fashion_mnist"``, ``"celeba"``, ``"cub200"``,
        ``"awa2"``, ``"imagefolder"`` (read from ``data_root``).
    data_root : str or Path, optional
        Folder holding a real dataset in its official layout; unused for embedded ones.
    split : str, optional
        Return only this split (``"train"``, ``"test"``, ...); default: everything, with
        the split indices in ``dataset.splits``.
    seed : int
        Seed of generation (Glyphs) and of random splits.
    **options
        Passed to the loader: :func:`~transferlib.data.glyphs.load_glyphs` (``n_images``,
        ``image_size``, ``attribute_noise``, ``cache_dir``, ...),
        :func:`~transferlib.data.digits.load_digits` (``image_size``, ``channels``),
        :func:`~transferlib.data.real.load_real` (``download``, ``image_size``, ...).

    Returns
    -------
    ImageDataset
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    if name == "glyphs":
        dataset = load_glyphs(seed=seed, **options)
    elif name == "digits":
        dataset = load_digits(seed=seed, **options)
    else:
        if data_root is None:
            raise ValueError(
                f"{name} is not embedded: pass data_root= (the folder with its "
                f"official files) or use one of {EMBEDDED_DATASETS}"
            )
        from transferlib.data.real import load_real

        dataset = load_real(name, data_root, seed=seed, **options)
    if split is None:
        return dataset
    if split not in dataset.splits:
        raise ValueError(f"{name} has no split {split!r}; valid: {list(dataset.splits)}")
    return dataset.subset(dataset.splits[split])
