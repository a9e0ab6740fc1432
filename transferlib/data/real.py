"""Loaders for the real datasets of the papers, reading their official on-disk formats.

Nothing here touches the network unless the caller passes ``download=True`` (which
delegates to torchvision's downloader where one exists). :func:`check_data_root` tells, without
reading them, whether a folder holds a dataset's official files; a file that is present but cannot
be parsed is named in the error. The files are read directly
(CIFAR pickles, MNIST idx files, CelebA / CUB / AwA2 text tables, image folders) rather
than through torchvision's dataset classes, because those verify the md5 of the full
official files and so refuse partial copies and the tiny files the tests write.

Datasets whose images differ in size (CelebA, CUB, AwA2, image folders) return a
:class:`LazyImages` array: images are decoded, centre-cropped to a square and resized to
``image_size`` when indexed.
"""

from __future__ import annotations

import gzip
import pickle
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from transferlib.data.dataset import ImageDataset, stratified_split
from transferlib.data.digits import resize_images

__all__ = ["REAL_DATASETS", "LazyImages", "check_data_root", "load_real"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class LazyImages:
    """Array-like ``(N, 3, S, S)`` uint8 view of image files, decoded on indexing.

    Each file is converted to RGB, centre-cropped to a square and resized to ``S``.
    Integer indexing gives one ``(3, S, S)`` image; slices, integer arrays and boolean
    masks give a stacked ``(n, 3, S, S)`` array. :meth:`take` returns another lazy view.
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, paths: Sequence[str | Path], image_size: int):
        if image_size < 1:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.paths = np.asarray([str(p) for p in paths], dtype=object)
        self.image_size = int(image_size)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), 3, self.image_size, self.image_size)

    def __repr__(self) -> str:
        return f"LazyImages({len(self)} files, image_size={self.image_size})"

    def _decode(self, path: str) -> np.ndarray:
        with _reading(path), Image.open(path) as image:
            image = image.convert("RGB")
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            image = image.crop((left, top, left + side, top + side))
            image = image.resize((self.image_size, self.image_size), Image.BILINEAR)
            return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)

    def take(self, indices: np.ndarray) -> LazyImages:
        """Lazy view of the rows ``indices``."""
        return LazyImages(self.paths[np.asarray(indices)], self.image_size)

    def __getitem__(self, index: int | slice | np.ndarray) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return self._decode(self.paths[index])
        paths = self.paths[index]
        out = np.empty((len(paths), 3, self.image_size, self.image_size), dtype=np.uint8)
        for k, path in enumerate(paths):  # one file read per image is unavoidable
            out[k] = self._decode(path)
        return out

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        images = self[np.arange(len(self))]
        return images if dtype is None else images.astype(dtype)


def _locate(root: Path, candidates: Sequence[str], required: Sequence[str], name: str) -> Path:
    """First folder among ``root / candidate`` holding every required file."""
    tried = [(root / c, [f for f in required if not (root / c / f).exists()]) for c in candidates]
    for base, missing in tried:
        if not missing:
            return base
    base, missing = min(tried, key=lambda pair: len(pair[1]))
    partial = f" ({base} lacks {', '.join(missing)})" if len(missing) < len(required) else ""
    raise FileNotFoundError(
        f"{name} files not found under {root}: expected {', '.join(required)} in "
        + " or ".join(str(b) for b, _ in tried)
        + partial
    )


@contextmanager
def _reading(path: str | Path) -> Iterator[None]:
    """Name the file when an official file is present but cannot be parsed."""
    try:
        yield
    except Exception as error:  # whatever the parser raises, the file is what the user must fix
        raise ValueError(
            f"cannot read {path} ({type(error).__name__}: {error}); "
            "the file is corrupt or incomplete"
        ) from error


def _table(path: Path, **kwargs) -> pd.DataFrame:
    with _reading(path):
        return pd.read_csv(path, sep=r"\s+", header=None, **kwargs)


def _loadtxt(path: Path, **kwargs) -> np.ndarray:
    with _reading(path):
        return np.loadtxt(path, ndmin=2, **kwargs)


#: name -> (folders under data_root that may hold the files, required files)
_LAYOUTS: dict[str, tuple[list[str], list[str]]] = {
    "cifar10": (
        ["cifar-10-batches-py", "."],
        [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch", "batches.meta"],
    ),
    "cifar100": (["cifar-100-python", "."], ["train", "test", "meta"]),
    "celeba": (
        ["celeba", "."],
        [
            "list_attr_celeba.txt",
            "identity_CelebA.txt",
            "list_eval_partition.txt",
            "img_align_celeba",
        ],
    ),
    "cub200": (
        ["CUB_200_2011", "."],
        [
            "images.txt",
            "classes.txt",
            "image_class_labels.txt",
            "train_test_split.txt",
            "attributes/image_attribute_labels.txt",
            "images",
        ],
    ),
    "awa2": (
        ["Animals_with_Attributes2", "."],
        ["classes.txt", "predicates.txt", "predicate-matrix-binary.txt", "JPEGImages"],
    ),
}


def check_data_root(name: str, data_root: str | Path) -> Path:
    """Check that ``data_root`` holds the official files of dataset ``name``, without reading them.

    Parameters
    ----------
    name : str
        A name from :data:`REAL_DATASETS`.
    data_root : str or Path
        The folder passed as ``data_root``.

    Returns
    -------
    Path
        The folder that holds the files (``data_root`` or the official sub-folder in it).

    Raises
    ------
    ValueError
        If ``name`` is not a real dataset.
    FileNotFoundError
        If ``data_root`` is not a folder or lacks files; one line naming what is missing where.
    """
    if name not in REAL_DATASETS:
        raise ValueError(f"unknown real dataset {name!r}; choose one of {', '.join(REAL_DATASETS)}")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"data_root {str(data_root)!r} is not an existing folder")
    if name in _LAYOUTS:
        base = _locate(root, *_LAYOUTS[name], name)
        if name == "cub200":
            _cub_attribute_names(base)
        return base
    if name in ("mnist", "fashion_mnist"):
        return _mnist_files(root, *_MNIST[name])[_MNIST_STEMS[0]].parent
    _image_folder_parts(root)
    return root


# --------------------------------------------------------------------------- CIFAR
def _unpickle(path: Path) -> dict:
    with _reading(path), open(path, "rb") as handle:
        return pickle.load(handle, encoding="latin1")


def _load_cifar(root: Path, fine: bool) -> ImageDataset:
    parts = (
        (["train"], ["test"])
        if fine
        else ([f"data_batch_{k}" for k in range(1, 6)], ["test_batch"])
    )
    meta_file = "meta" if fine else "batches.meta"
    name = "cifar100" if fine else "cifar10"
    base = _locate(root, *_LAYOUTS[name], name)
    images, columns, sizes = [], {}, []
    for files in parts:
        batches = [_unpickle(base / f) for f in files]
        chunk = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches])
        images.append(chunk.reshape(-1, 3, 32, 32))
        sizes.append(len(chunk))
        keys = {"label": "fine_labels", "coarse": "coarse_labels"} if fine else {"label": "labels"}
        for column, key in keys.items():
            columns.setdefault(column, []).append(
                np.concatenate([np.asarray(b[key], dtype=np.int64) for b in batches])
            )
    meta = _unpickle(base / meta_file)
    label_names = (
        {"label": list(meta["fine_label_names"]), "coarse": list(meta["coarse_label_names"])}
        if fine
        else {"label": list(meta["label_names"])}
    )
    n_train = sizes[0]
    return ImageDataset(
        name=name,
        images=np.concatenate(images),
        labels=pd.DataFrame({k: np.concatenate(v) for k, v in columns.items()}),
        splits={"train": np.arange(n_train), "test": np.arange(n_train, sum(sizes))},
        label_names=label_names,
        metadata={"root": str(base), "identity_column": "label", "default_target": "label"},
    )


def _download_torchvision(cls_name: str, root: Path, **kwargs) -> None:
    import torchvision.datasets as tvd

    getattr(tvd, cls_name)(str(root), download=True, **kwargs)


# --------------------------------------------------------------------------- MNIST
def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with _reading(path):
        with opener(path, "rb") as handle:
            data = handle.read()
        if data[:2] != b"\x00\x00" or data[2] != 0x08:
            raise ValueError("not an unsigned-byte idx file")
        ndim = data[3]
        shape = tuple(int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
        return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


_MNIST_STEMS = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
#: name -> (torchvision's folder, name)
_MNIST = {"mnist": ("MNIST", "mnist"), "fashion_mnist": ("FashionMNIST", "fashion_mnist")}


def _mnist_files(root: Path, folder: str, name: str) -> dict[str, Path]:
    """Each idx file (plain or ``.gz``), looked up in torchvision's layout or ``root`` itself."""
    candidates = [f"{folder}/raw", "raw", "."]
    found = {}
    for stem in _MNIST_STEMS:
        for candidate in candidates:
            for path in (root / candidate / stem, root / candidate / f"{stem}.gz"):
                if stem not in found and path.exists():
                    found[stem] = path
    if len(found) < len(_MNIST_STEMS):
        _locate(root, candidates, _MNIST_STEMS, name)  # raises with the list of expected files
    return found


def _load_mnist(
    root: Path,
    folder: str,
    name: str,
    class_names: list[str],
    image_size: int | None,
    channels: int,
) -> ImageDataset:
    found = _mnist_files(root, folder, name)
    train_x, train_y, test_x, test_y = (_read_idx(found[s]) for s in _MNIST_STEMS)
    images = resize_images(np.concatenate([train_x, test_x])[:, None], image_size, channels)
    labels = np.concatenate([train_y, test_y]).astype(np.int64)
    return ImageDataset(
        name=name,
        images=images,
        labels=pd.DataFrame({"label": labels}),
        splits={"train": np.arange(len(train_y)), "test": np.arange(len(train_y), len(labels))},
        label_names={"label": class_names},
        metadata={
            "root": str(found[_MNIST_STEMS[0]].parent),
            "identity_column": "label",
            "default_target": "label",
        },
    )


FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


# --------------------------------------------------------------------------- CelebA
def _load_celeba(root: Path, image_size: int) -> ImageDataset:
    base = _locate(root, *_LAYOUTS["celeba"], "celeba")
    with _reading(base / "list_attr_celeba.txt"), open(base / "list_attr_celeba.txt") as handle:
        handle.readline()  # number of images
        attribute_names = handle.readline().split()
    attributes = _table(
        base / "list_attr_celeba.txt", skiprows=2, index_col=0, names=["file", *attribute_names]
    )
    identity = _table(base / "identity_CelebA.txt", index_col=0, names=["file", "identity"])
    partition = _table(base / "list_eval_partition.txt", index_col=0, names=["file", "split"])
    files = attributes.index.to_numpy()
    ids, identity_codes = np.unique(identity.loc[files, "identity"].to_numpy(), return_inverse=True)
    labels = pd.DataFrame((attributes.to_numpy() > 0).astype(np.int64), columns=attribute_names)
    labels["identity"] = identity_codes.astype(np.int64)
    split = partition.loc[files, "split"].to_numpy()
    return ImageDataset(
        name="celeba",
        images=LazyImages([base / "img_align_celeba" / f for f in files], image_size),
        labels=labels,
        splits={s: np.flatnonzero(split == k) for k, s in enumerate(("train", "valid", "test"))},
        label_names={
            "identity": [str(i) for i in ids],
            **{a: [f"not_{a}", a] for a in attribute_names},
        },
        attribute_kinds={a: "annotation" for a in attribute_names},
        metadata={"root": str(base), "identity_column": "identity", "default_target": "identity"},
    )


# --------------------------------------------------------------------------- CUB-200-2011
def _cub_attribute_names(base: Path) -> Path:
    """``attributes.txt``, which the official archive keeps beside the ``CUB_200_2011`` folder."""
    attribute_file = next(
        (
            p
            for p in (
                base / "attributes" / "attributes.txt",
                base / "attributes.txt",
                base.parent / "attributes.txt",
            )
            if p.exists()
        ),
        None,
    )
    if attribute_file is None:
        raise FileNotFoundError(
            f"cub200: attributes.txt not found in {base / 'attributes'}, {base} or {base.parent}"
        )
    return attribute_file


def _load_cub(root: Path, image_size: int, min_certainty: int) -> ImageDataset:
    base = _locate(root, *_LAYOUTS["cub200"], "cub200")
    attribute_file = _cub_attribute_names(base)
    images = _table(base / "images.txt", names=["id", "path"]).set_index("id")
    classes = _table(base / "classes.txt", names=["id", "name"])
    image_class = _table(base / "image_class_labels.txt", names=["id", "label"]).set_index("id")
    is_train = _table(base / "train_test_split.txt", names=["id", "train"]).set_index("id")
    attribute_names = _table(attribute_file, names=["id", "name"])["name"].tolist()
    # Some rows of the official file carry an extra column; only the first four matter
    # (image id, attribute id, is_present, certainty id).
    annotations = _loadtxt(
        base / "attributes" / "image_attribute_labels.txt", usecols=(0, 1, 2, 3), dtype=np.int64
    )
    ids = images.index.to_numpy()
    row = pd.Series(np.arange(ids.size), index=ids)
    positive = np.zeros((ids.size, len(attribute_names)), dtype=np.int64)
    keep = (annotations[:, 2] == 1) & (annotations[:, 3] >= min_certainty)
    positive[row.loc[annotations[keep, 0]].to_numpy(), annotations[keep, 1] - 1] = 1
    labels = pd.DataFrame(positive, columns=attribute_names)
    labels.insert(0, "label", image_class.loc[ids, "label"].to_numpy().astype(np.int64) - 1)
    train = is_train.loc[ids, "train"].to_numpy() == 1
    return ImageDataset(
        name="cub200",
        images=LazyImages([base / "images" / p for p in images["path"]], image_size),
        labels=labels,
        splits={"train": np.flatnonzero(train), "test": np.flatnonzero(~train)},
        label_names={
            "label": classes.sort_values("id")["name"].tolist(),
            **{a: [f"not_{a}", a] for a in attribute_names},
        },
        attribute_kinds={a: "annotation" for a in attribute_names},
        metadata={
            "root": str(base),
            "identity_column": "label",
            "default_target": "label",
            "min_certainty": min_certainty,
        },
    )


# --------------------------------------------------------------------------- AwA2
def _load_awa2(root: Path, image_size: int, test_fraction: float, seed: int) -> ImageDataset:
    base = _locate(root, *_LAYOUTS["awa2"], "awa2")
    class_names = _table(base / "classes.txt", names=["id", "name"])["name"].tolist()
    predicates = _table(base / "predicates.txt", names=["id", "name"])["name"].tolist()
    matrix = _loadtxt(base / "predicate-matrix-binary.txt", dtype=np.int64)
    if matrix.shape != (len(class_names), len(predicates)):
        raise ValueError(
            f"awa2: predicate matrix has shape {matrix.shape}, expected "
            f"({len(class_names)}, {len(predicates)})"
        )
    paths, label = [], []
    for k, cls in enumerate(class_names):
        found = sorted(
            p for p in (base / "JPEGImages" / cls).glob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
        )
        paths += found
        label += [k] * len(found)
    if not paths:
        raise FileNotFoundError(f"awa2: no images in {base / 'JPEGImages'}/<class>/")
    label = np.asarray(label, dtype=np.int64)
    labels = pd.DataFrame(matrix[label], columns=predicates)
    labels.insert(0, "label", label)
    return ImageDataset(
        name="awa2",
        images=LazyImages(paths, image_size),
        labels=labels,
        splits=stratified_split(label, test_fraction, seed),
        label_names={"label": class_names, **{a: [f"not_{a}", a] for a in predicates}},
        attribute_kinds={a: "class" for a in predicates},
        metadata={
            "root": str(base),
            "identity_column": "label",
            "default_target": "label",
            "test_fraction": test_fraction,
            "note": "attributes are class-level (85 predicates of the class)",
        },
    )


# --------------------------------------------------------------------------- image folder
def _image_folder_parts(root: Path) -> list[str]:
    """``["train", "test", ...]`` for a split image folder, ``["."]`` for ``root/<class>/*``."""
    if not root.is_dir() or not any(p.is_dir() for p in root.iterdir()):
        raise FileNotFoundError(f"imagefolder: {root} is not a folder of <class>/<image> files")
    split_dirs = [s for s in ("train", "valid", "val", "test") if (root / s).is_dir()]
    return split_dirs if {"train", "test"} <= set(split_dirs) else ["."]


def _load_imagefolder(root: Path, image_size: int, test_fraction: float, seed: int) -> ImageDataset:
    """``root/<class>/*`` (random stratified split) or ``root/{train,test}/<class>/*``."""
    from torchvision.datasets.folder import find_classes, make_dataset

    parts = _image_folder_parts(root)
    class_names, _ = find_classes(str(root / parts[0]))
    class_to_idx = {c: k for k, c in enumerate(class_names)}
    paths, label, split_of = [], [], []
    for part in parts:
        items = make_dataset(str(root / part), class_to_idx, extensions=IMAGE_EXTENSIONS)
        paths += [p for p, _ in items]
        label += [y for _, y in items]
        split_of += [part] * len(items)
    label = np.asarray(label, dtype=np.int64)
    split_of = np.asarray(split_of)
    splits = (
        stratified_split(label, test_fraction, seed)
        if parts == ["."]
        else {("valid" if s == "val" else s): np.flatnonzero(split_of == s) for s in parts}
    )
    return ImageDataset(
        name="imagefolder",
        images=LazyImages(paths, image_size),
        labels=pd.DataFrame({"label": label}),
        splits=splits,
        label_names={"label": list(class_names)},
        metadata={"root": str(root), "identity_column": "label", "default_target": "label"},
    )


def _cifar(root: Path, seed: int, fine: bool, download: bool = False) -> ImageDataset:
    if download:
        _download_torchvision("CIFAR100" if fine else "CIFAR10", root)
    return _load_cifar(root, fine)


def _mnist_like(
    root: Path,
    seed: int,
    fashion: bool,
    download: bool = False,
    image_size: int | None = None,
    channels: int = 1,
) -> ImageDataset:
    folder, name = _MNIST["fashion_mnist" if fashion else "mnist"]
    if download:
        _download_torchvision(folder, root)
    names = FASHION_CLASSES if fashion else [str(d) for d in range(10)]
    return _load_mnist(root, folder, name, names, image_size, channels)


def _no_download(name: str, url: str) -> None:
    raise ValueError(
        f"{name} cannot be downloaded automatically; get it from {url} "
        "and set data_root to its folder"
    )


def _celeba(root: Path, seed: int, download: bool = False, image_size: int = 64) -> ImageDataset:
    if download:
        _download_torchvision("CelebA", root, split="all")
    return _load_celeba(root, image_size)


def _cub(
    root: Path, seed: int, download: bool = False, image_size: int = 64, min_certainty: int = 3
) -> ImageDataset:
    if download:
        _no_download("cub200", "https://www.vision.caltech.edu/datasets/cub_200_2011/")
    return _load_cub(root, image_size, min_certainty)


def _awa2(
    root: Path, seed: int, download: bool = False, image_size: int = 64, test_fraction: float = 0.1
) -> ImageDataset:
    if download:
        _no_download("awa2", "https://cvml.ista.ac.at/AwA2/")
    return _load_awa2(root, image_size, test_fraction, seed)


def _imagefolder(
    root: Path, seed: int, download: bool = False, image_size: int = 64, test_fraction: float = 0.2
) -> ImageDataset:
    if download:
        _no_download("imagefolder", "your own image collection")
    return _load_imagefolder(root, image_size, test_fraction, seed)


#: name -> loader(root, seed, **options)
REAL_DATASETS: dict[str, Callable[..., ImageDataset]] = {
    "cifar10": lambda root, seed, **kw: _cifar(root, seed, fine=False, **kw),
    "cifar100": lambda root, seed, **kw: _cifar(root, seed, fine=True, **kw),
    "mnist": lambda root, seed, **kw: _mnist_like(root, seed, fashion=False, **kw),
    "fashion_mnist": lambda root, seed, **kw: _mnist_like(root, seed, fashion=True, **kw),
    "celeba": _celeba,
    "cub200": _cub,
    "awa2": _awa2,
    "imagefolder": _imagefolder,
}


def load_real(name: str, data_root: str | Path, seed: int = 0, **options) -> ImageDataset:
    """Load a real dataset from ``data_root`` (see :data:`REAL_DATASETS` for the names).

    Options per dataset: ``download`` (all; False by default), ``image_size`` (all but
    CIFAR; default 64 for the datasets with images of varying size, native 28 for
    MNIST-like), ``channels`` (MNIST-like: 1 or 3), ``min_certainty`` (CUB: an attribute
    is positive when annotated present with certainty id >= this, 3 = "probably"), and
    ``test_fraction`` (AwA2, image folders without a split: seeded stratified split).
    """
    return REAL_DATASETS[name](Path(data_root).expanduser(), seed, **options)
