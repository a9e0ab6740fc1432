"""Real-dataset loaders on tiny files written in each dataset's official format."""

import gzip
import pickle

import numpy as np
import pytest
from PIL import Image

from transferlib.data import LazyImages, load_dataset
from transferlib.data.real import check_data_root

RNG = np.random.default_rng(0)


def _pickle(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj))


def _jpeg(path, size=(20, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(path)


def test_cifar10(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    for k in range(1, 6):
        _pickle(
            base / f"data_batch_{k}",
            {"data": np.full((2, 3072), k, np.uint8), "labels": [k % 10, 0], "batch_label": "x"},
        )
    _pickle(base / "test_batch", {"data": np.full((3, 3072), 9, np.uint8), "labels": [1, 2, 3]})
    _pickle(base / "batches.meta", {"label_names": [f"c{k}" for k in range(10)]})
    data = load_dataset("cifar10", data_root=tmp_path)
    assert data.images.shape == (13, 3, 32, 32) and data.images[2, 0, 0, 0] == 2
    assert len(data.splits["train"]) == 10 and len(data.splits["test"]) == 3
    assert data.labels["label"].tolist()[:2] == [1, 0] and data.label_names["label"][3] == "c3"


def test_cifar100_fine_and_coarse(tmp_path):
    base = tmp_path / "cifar-100-python"
    for part, n in (("train", 4), ("test", 2)):
        _pickle(
            base / part,
            {
                "data": RNG.integers(0, 255, (n, 3072), dtype=np.uint8),
                "fine_labels": list(range(n)),
                "coarse_labels": [7] * n,
            },
        )
    _pickle(
        base / "meta",
        {
            "fine_label_names": [f"f{k}" for k in range(100)],
            "coarse_label_names": [f"g{k}" for k in range(20)],
        },
    )
    data = load_dataset("cifar100", data_root=tmp_path, split="test")
    assert len(data) == 2 and data.labels["coarse"].tolist() == [7, 7]
    assert len(data.label_names["coarse"]) == 20 and data.label_names["label"][1] == "f1"


def _idx(path, array, compress):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_like_idx_files(tmp_path, name, folder):
    raw = tmp_path / folder / "raw"
    _idx(raw / "train-images-idx3-ubyte", RNG.integers(0, 255, (5, 28, 28)), compress=True)
    _idx(raw / "train-labels-idx1-ubyte", np.arange(5), compress=True)
    _idx(raw / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28)), compress=False)
    _idx(raw / "t10k-labels-idx1-ubyte", np.array([9, 8]), compress=False)
    data = load_dataset(name, data_root=tmp_path, image_size=32, channels=3)
    assert data.images.shape == (7, 3, 32, 32)
    assert data.labels["label"].tolist() == [0, 1, 2, 3, 4, 9, 8]
    assert len(data.label_names["label"]) == 10


def test_celeba(tmp_path):
    base = tmp_path / "celeba"
    files = [f"{k:06d}.jpg" for k in range(1, 5)]
    for f in files:
        _jpeg(base / "img_align_celeba" / f, (178, 218))
    names = ["Smiling", "Male"]
    rows = [f"{f} {' '.join(RNG.choice(['1', '-1'], 2))}" for f in files]
    (base / "list_attr_celeba.txt").write_text(f"4\n{' '.join(names)}\n" + "\n".join(rows))
    (base / "identity_CelebA.txt").write_text(
        "\n".join(f"{f} {i}" for f, i in zip(files, [10, 3, 10, 7]))
    )
    (base / "list_eval_partition.txt").write_text(
        "\n".join(f"{f} {p}" for f, p in zip(files, [0, 0, 1, 2]))
    )
    data = load_dataset("celeba", data_root=tmp_path, image_size=16)
    assert isinstance(data.images, LazyImages) and data.images.shape == (4, 3, 16, 16)
    assert data.images[np.array([0, 3])].shape == (2, 3, 16, 16)
    assert data.attributes == names and data.attribute_kinds["Male"] == "annotation"
    assert [data.label_names["identity"][c] for c in data.labels["identity"]] == [
        "10",
        "3",
        "10",
        "7",
    ]
    assert data.splits["valid"].tolist() == [2] and data.splits["test"].tolist() == [3]
    sub = data.subset(data.splits["train"])
    assert isinstance(sub.images, LazyImages) and len(sub) == 2


def test_cub200_certainty_threshold(tmp_path):
    base = tmp_path / "CUB_200_2011"
    (base / "attributes").mkdir(parents=True)
    paths = ["001.Albatross/a.jpg", "002.Auklet/b.jpg", "002.Auklet/c.jpg"]
    for p in paths:
        _jpeg(base / "images" / p)
    (base / "images.txt").write_text("\n".join(f"{i} {p}" for i, p in enumerate(paths, 1)))
    (base / "classes.txt").write_text("1 001.Albatross\n2 002.Auklet\n")
    (base / "image_class_labels.txt").write_text("1 1\n2 2\n3 2\n")
    (base / "train_test_split.txt").write_text("1 1\n2 0\n3 1\n")
    (tmp_path / "attributes.txt").write_text("1 has_bill_shape::curved\n2 has_wing_color::blue\n")
    (base / "attributes" / "image_attribute_labels.txt").write_text(
        # image attribute is_present certainty_id time (one row with the extra column)
        "1 1 1 4 2.5\n1 2 1 2 3.0\n2 1 0 4 1.0\n2 2 1 3 0 0.8\n3 1 1 3 1.1\n3 2 0 1 9.0\n"
    )
    data = load_dataset("cub200", data_root=tmp_path, image_size=8)
    assert data.labels["label"].tolist() == [0, 1, 1]
    assert data.labels["has_bill_shape::curved"].tolist() == [1, 0, 1]
    assert data.labels["has_wing_color::blue"].tolist() == [0, 1, 0]  # certainty 2 dropped
    loose = load_dataset("cub200", data_root=tmp_path, image_size=8, min_certainty=2)
    assert loose.labels["has_wing_color::blue"].tolist() == [1, 1, 0]
    assert data.splits["test"].tolist() == [1]
    assert data.images[0].shape == (3, 8, 8)


def test_awa2_class_level_attributes(tmp_path):
    base = tmp_path / "Animals_with_Attributes2"
    (base / "JPEGImages").mkdir(parents=True)
    (base / "classes.txt").write_text("1\tantelope\n2\tgrizzly+bear\n")
    (base / "predicates.txt").write_text("1\tblack\n2\twhite\n3\tstripes\n")
    (base / "predicate-matrix-binary.txt").write_text("0 1 0\n1 0 1\n")
    for cls, n in (("antelope", 3), ("grizzly+bear", 5)):
        for k in range(n):
            _jpeg(base / "JPEGImages" / cls / f"{cls}_{k}.jpg")
    data = load_dataset("awa2", data_root=tmp_path, image_size=8, test_fraction=0.4)
    assert data.labels["label"].tolist() == [0] * 3 + [1] * 5
    assert data.labels["stripes"].tolist() == [0] * 3 + [1] * 5
    assert len(data.splits["test"]) == 3  # round(0.4 * 3) + round(0.4 * 5)


def test_imagefolder_with_and_without_split_folders(tmp_path):
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            _jpeg(tmp_path / "split" / split / cls / "x.png")
    data = load_dataset("imagefolder", data_root=tmp_path / "split", image_size=8)
    assert data.label_names["label"] == ["cat", "dog"]
    assert len(data.splits["train"]) == 2 and len(data.splits["test"]) == 2
    for cls in ("cat", "dog"):
        for k in range(5):
            _jpeg(tmp_path / "flat" / cls / f"{k}.jpg")
    flat = load_dataset("imagefolder", data_root=tmp_path / "flat", image_size=8, test_fraction=0.2)
    assert len(flat.splits["test"]) == 2 and np.asarray(flat.images).shape == (10, 3, 8, 8)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("cifar10", "data_batch_1"),
        ("cifar100", "meta"),
        ("fashion_mnist", "t10k-images-idx3"),
        ("celeba", "list_attr_celeba.txt"),
        ("cub200", "image_class_labels.txt"),
        ("awa2", "predicate-matrix-binary.txt"),
    ],
)
def test_missing_files_are_named(tmp_path, name, expected):
    with pytest.raises(FileNotFoundError, match=expected) as error:
        load_dataset(name, data_root=tmp_path)
    assert str(tmp_path) in str(error.value)


def test_no_download_for_datasets_without_a_downloader(tmp_path):
    with pytest.raises(ValueError, match="cannot be downloaded"):
        load_dataset("cub200", data_root=tmp_path, download=True)


# --------------------------------------------------------------------------- check_data_root
def _cifar10_files(base, content=None):
    batch = {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch", "batches.meta"]:
        _pickle(base / name, content if content is not None else batch)


@pytest.mark.parametrize("folder", ["cifar-10-batches-py", "."])
def test_check_data_root_finds_the_files_without_reading_them(tmp_path, folder):
    _cifar10_files(tmp_path / folder, content="not a CIFAR batch")
    assert check_data_root("cifar10", tmp_path) == tmp_path / folder


def test_check_data_root_of_each_layout(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    for stem in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        _idx(raw / stem, np.zeros(2), compress=True)
    assert check_data_root("mnist", tmp_path) == raw
    with pytest.raises(FileNotFoundError, match="fashion_mnist files not found"):
        check_data_root("fashion_mnist", tmp_path)
    (tmp_path / "CUB_200_2011" / "attributes").mkdir(parents=True)
    for name in (
        "images.txt",
        "classes.txt",
        "image_class_labels.txt",
        "train_test_split.txt",
        "attributes/image_attribute_labels.txt",
    ):
        (tmp_path / "CUB_200_2011" / name).write_text("")
    (tmp_path / "CUB_200_2011" / "images").mkdir()
    with pytest.raises(FileNotFoundError, match="attributes.txt not found"):
        check_data_root("cub200", tmp_path)
    (tmp_path / "attributes.txt").write_text("1 a\n")
    assert check_data_root("cub200", tmp_path) == tmp_path / "CUB_200_2011"
    with pytest.raises(FileNotFoundError, match="not a folder of <class>/<image> files"):
        check_data_root("imagefolder", tmp_path / "MNIST" / "raw")


def test_missing_files_are_named_in_one_line_without_an_option_the_cli_lacks(tmp_path):
    _pickle(tmp_path / "cifar-10-batches-py" / "data_batch_1", {})
    with pytest.raises(FileNotFoundError) as error:
        check_data_root("cifar10", tmp_path)
    message = str(error.value)
    assert "\n" not in message and "download" not in message
    assert "cifar-10-batches-py lacks data_batch_2" in message and "batches.meta" in message
    with pytest.raises(FileNotFoundError, match="is not an existing folder"):
        check_data_root("cifar10", tmp_path / "absent")


def test_a_corrupt_file_is_named(tmp_path):
    _cifar10_files(tmp_path / "cifar-10-batches-py")
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:100])  # truncated download
    with pytest.raises(ValueError, match=f"cannot read {batch} .*corrupt or incomplete"):
        load_dataset("cifar10", data_root=tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    for stem in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        _idx(raw / stem, np.zeros(2), compress=False)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(ValueError, match="cannot read .*train-images-idx3-ubyte.gz"):
        load_dataset("mnist", data_root=tmp_path)


def test_a_corrupt_image_is_named_when_it_is_decoded(tmp_path):
    _jpeg(tmp_path / "flat" / "cat" / "a.jpg")
    (tmp_path / "flat" / "dog").mkdir()
    (tmp_path / "flat" / "dog" / "b.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    images = load_dataset("imagefolder", data_root=tmp_path / "flat", image_size=8).images
    with pytest.raises(ValueError, match="cannot read .*b.jpg"):
        images[np.arange(len(images))]
