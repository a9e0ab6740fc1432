"""Rank candidate models for a reader's own image classification task.

``rank_models(folder, models)`` extracts features (and, for classifiers, class probabilities)
of every candidate model on the images of an ImageFolder (one subfolder per class), once per
model and cached, computes the chosen transferability scores and returns them as a table,
best model first. ``transferlib rank`` is the command line of the same function.

Candidate models are given as strings:

- ``efficientnet_lite0``, ``efficientnet_lite1``, ``efficientnet_lite2``: the packaged
  ImageNet-pretrained networks (offline);
- ``ARCH=PATH``: a checkpoint of the torchvision architecture ``ARCH`` (a state dict, or a
  dict with a ``"state_dict"`` entry), e.g. ``resnet18=finetuned.pt``; a bare ``PATH`` works
  when the checkpoint is a dict that names its architecture under ``"arch"``;
- ``package.module:function``: a function returning a ``torch.nn.Module``.

Features are the input of the model's last ``nn.Linear`` layer (the penultimate
representation of a classifier), or, with ``layer``, the globally average-pooled output of
that layer (a name of :attr:`TransferModel.layers` for packaged models, of
``model.named_modules()`` otherwise). Class probabilities, which LEEP and NCE need, exist
when the model ends in a linear classifier (softmax of its output) or outputs rows that are
already distributions.
"""

from __future__ import annotations

import hashlib
import importlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from transferlib.cache import config_key, load_npz, load_or_build, save_npz
from transferlib.scores import SCORES
from transferlib.validation import check_choice, check_int

if TYPE_CHECKING:
    import pandas as pd
    import torch

__all__ = ["DEFAULT_SCORES", "ImageFolderTarget", "load_target", "rank_models", "write_report"]

#: Scores computed when none are chosen, the first ordering the table: the benchmark chapter's
#: three best at book scale by mean rank among the scores that never saturate
#: (:func:`transferlib.experiments.benchmark.never_saturated`; SFDA and the H-scores tie every
#: model when there are fewer images than feature dimensions). Its timing page checks that they
#: still agree. LEEP needs models that end in a classifier.
DEFAULT_SCORES = ("parc", "logme", "leep")
PACKAGED = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


# ----------------------------------------------------------------------------- target images
class ImageFolderTarget:
    """The images of ``root/<class>/<image>`` (lazily decoded), their labels and class names."""

    def __init__(self, root: Path, paths: list[str], labels: np.ndarray, classes: list[str]):
        self.root, self.paths, self.labels, self.classes = root, paths, labels, classes

    def images(self, image_size: int) -> Any:
        from transferlib.data.real import LazyImages

        return LazyImages(self.paths, image_size)

    def fingerprint(self) -> str:
        """Hash of every file's path (relative to the root), class and bytes."""
        digest = hashlib.blake2b(digest_size=16)
        for path, label in zip(self.paths, self.labels, strict=True):
            digest.update(f"{Path(path).relative_to(self.root)}|{self.classes[label]}|".encode())
            digest.update(Path(path).read_bytes())
        return digest.hexdigest()


def load_target(folder: str | Path) -> ImageFolderTarget:
    """Read an ImageFolder: one subfolder per class (at least two, sorted by name), images
    with the usual extensions inside. Every image is opened and checked before anything is
    computed; the error names the unreadable files."""
    from PIL import Image, UnidentifiedImageError

    from transferlib.data.real import IMAGE_EXTENSIONS

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"target folder {root} does not exist or is not a folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        paths += [str(p) for p in files]
        labels += [label] * len(files)
    counts = np.bincount(labels, minlength=len(classes)) if classes else np.zeros(0, int)
    if counts.sum() == 0:
        raise ValueError(
            f"target folder {root} holds no images in class subfolders "
            f"(expected {root}/<class>/<image>{{{','.join(IMAGE_EXTENSIONS)}}})"
        )
    populated = [c for c, k in zip(classes, counts, strict=True) if k > 0]
    if len(populated) < 2:
        raise ValueError(
            f"target folder {root} has images of {len(populated)} class(es) "
            f"({', '.join(populated)}); ranking needs at least two classes"
        )
    unreadable = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.verify()
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
            unreadable.append(f"{path} ({type(error).__name__})")
    if unreadable:
        shown = "; ".join(unreadable[:5]) + (" ..." if len(unreadable) > 5 else "")
        raise ValueError(f"{len(unreadable)} unreadable image(s) in {root}: {shown}")
    keep = [classes.index(c) for c in populated]
    remap = np.full(len(classes), -1)
    remap[keep] = np.arange(len(keep))
    return ImageFolderTarget(root, paths, remap[np.asarray(labels)], populated)


# ----------------------------------------------------------------------------------- models
def _torchvision_model(arch: str, path: Path) -> torch.nn.Module:
    import torch
    import torchvision

    builder = getattr(torchvision.models, arch, None)
    if arch.startswith("_") or not callable(builder):
        raise ValueError(f"model {arch}={path}: {arch!r} is not a torchvision architecture")
    state = _read_checkpoint(path)
    state = state.get("state_dict", state)
    heads = [v for k, v in state.items() if k.endswith("weight") and getattr(v, "ndim", 0) == 2]
    model = builder(weights=None, num_classes=int(heads[-1].shape[0]) if heads else 1000)
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError) as error:
        message = " ".join(str(error).split())[:300]
        raise ValueError(f"checkpoint {path} does not fit {arch}: {message}") from error
    return model.to(torch.float32)


def _read_checkpoint(path: Path) -> dict:
    import pickle

    import torch

    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, ValueError) as error:
        message = " ".join(str(error).split())[:200]
        raise ValueError(f"checkpoint {path} could not be loaded: {message}") from error
    if not isinstance(state, dict):
        raise TypeError(f"checkpoint {path} is not a state dict (got {type(state).__name__})")
    return state


def build_candidate(spec: str, image_size: int) -> tuple[torch.nn.Module, bool]:
    """The module a model string names, and whether it is a packaged TransferModel."""
    import torch

    if not isinstance(spec, str) or not spec:
        raise TypeError(f"models must be non-empty strings, got {spec!r}")
    if spec in PACKAGED:
        from transferlib.models import build_model

        return build_model(spec, input_size=image_size), True
    if "=" in spec:
        arch, path = spec.split("=", 1)
        return _torchvision_model(arch, Path(path).expanduser()), False
    if spec.endswith((".pt", ".pth", ".ckpt", ".bin")) or Path(spec).is_file():
        path = Path(spec).expanduser()
        arch = _read_checkpoint(path).get("arch")
        if not isinstance(arch, str):
            raise ValueError(
                f"checkpoint {path} does not name its architecture; give it as ARCH={path} "
                "(e.g. resnet18=...) with a torchvision architecture"
            )
        return _torchvision_model(arch, path), False
    if ":" in spec:
        module_name, function_name = spec.split(":", 1)
        try:
            function = getattr(importlib.import_module(module_name), function_name)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"model factory {spec} could not be imported: {error}") from error
        model = function()
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model factory {spec} returned {type(model).__name__}, not a Module")
        return model.float(), False
    raise ValueError(
        f"unknown model {spec!r}: give one of {', '.join(PACKAGED)}, ARCH=checkpoint.pt "
        "(a torchvision architecture) or package.module:function"
    )


def _model_fingerprint(model: torch.nn.Module) -> str:
    """Content hash of the class and every parameter and buffer."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{type(model).__module__}.{type(model).__qualname__}".encode())
    for name, tensor in model.state_dict().items():
        array = tensor.detach().cpu().contiguous()
        digest.update(f"{name}{array.dtype}{tuple(array.shape)}".encode())
        digest.update(array.numpy().tobytes() if array.dtype.is_floating_point else b"")
    return digest.hexdigest()


def _extract(
    model: torch.nn.Module,
    packaged: bool,
    images: Any,
    layer: str | None,
    device: str,
    progress: bool,
    label: str,
) -> dict[str, np.ndarray]:
    """Features, and probabilities when the model's output is a class distribution."""
    import torch
    import torch.nn.functional as F

    from transferlib._progress import tqdm
    from transferlib.models import preprocess
    from transferlib.training import inference_batch_size, memory_layout, resolve_device

    dev = resolve_device(device)
    layout = memory_layout(dev)
    model = model.to(dev, memory_format=layout).eval()
    batch_size = inference_batch_size(dev, getattr(model, "input_size", None) or images.shape[-1])
    modules = dict(model.named_modules())
    if packaged:
        names = model.layers
    else:
        names = [n for n in modules if n]
    if layer is not None and layer not in names:
        raise ValueError(f"model {label}: unknown layer {layer!r}; choose from {list(names)}")
    linears = [m for m in modules.values() if isinstance(m, torch.nn.Linear)]
    captured: dict[str, torch.Tensor] = {}

    def keep(slot: str, use_input: bool) -> Any:
        def hook(_module: Any, inputs: tuple, output: Any) -> None:
            captured[slot] = inputs[0] if use_input else output

        return hook

    hooks = []
    if not packaged and layer is not None:
        hooks.append(modules[layer].register_forward_hook(keep("features", False)))
    elif not packaged and linears:
        hooks.append(linears[-1].register_forward_hook(keep("features", True)))
    if not packaged and linears:
        hooks.append(linears[-1].register_forward_hook(keep("head", False)))
    mean = torch.tensor(_IMAGENET_MEAN, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(_IMAGENET_STD, device=dev).view(1, 3, 1, 1)
    features, outputs = [], []
    try:
        with torch.inference_mode():
            for start in tqdm(
                range(0, len(images), batch_size), desc=label, disable=not progress, leave=False
            ):
                batch = torch.from_numpy(np.asarray(images[start : start + batch_size])).to(dev)
                if packaged:
                    x = preprocess(model, batch).contiguous(memory_format=layout)
                    pooled = model.pooled(x, [layer or model.layers[-1], model.layers[-1]])
                    features.append(pooled[layer or model.layers[-1]].float().cpu())
                    outputs.append(model.head(pooled[model.layers[-1]]).float().cpu())
                    continue
                x = ((batch.float() / 255.0 - mean) / std).contiguous(memory_format=layout)
                output = model(x)
                feature = captured.get("features", output)
                if feature.ndim == 4:
                    feature = F.adaptive_avg_pool2d(feature, 1)
                features.append(feature.flatten(1).float().cpu())
                is_head = captured.get("head") is output
                outputs.append(
                    output.float().cpu() if is_head or _is_distribution(output) else None
                )
                captured.clear()
    finally:
        for hook in hooks:
            hook.remove()
    result = {"features": torch.cat(features).numpy()}
    if all(o is not None for o in outputs) and outputs[0].ndim == 2 and outputs[0].shape[1] > 1:
        joined = torch.cat(outputs)
        probs = joined if _is_distribution(joined) else joined.softmax(dim=1)
        result["probs"] = probs.double().numpy()
    return result


def _is_distribution(output: Any) -> bool:
    import torch

    if not isinstance(output, torch.Tensor) or output.ndim != 2:
        return False
    return bool((output >= 0).all()) and bool(((output.sum(1) - 1).abs() < 1e-4).all())


def _extraction_version() -> str:
    """Version of the code that turns images into features: the model and image modules
    and the extraction functions here (not the scores, which are recomputed on every call,
    so a change to a score does not discard extracted features)."""
    import inspect
    import textwrap

    from transferlib.provenance import code_version, source_fingerprint

    functions = (_torchvision_model, _read_checkpoint, build_candidate, _extract)
    source = "\n".join(textwrap.dedent(inspect.getsource(f)) for f in functions)
    modules = code_version(
        "transferlib.models", "transferlib.data.real", "transferlib.training.device"
    )
    return f"{modules}-{source_fingerprint(source)[:16]}"


# ------------------------------------------------------------------------------------ ranking
def rank_models(
    target_folder: str | Path,
    models: Sequence[str],
    scores: Sequence[str] = DEFAULT_SCORES,
    layer: str | None = None,
    image_size: int = 128,
    device: str = "auto",
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Score every candidate model on a target ImageFolder; best model first.

    Parameters
    ----------
    target_folder : path
        ``target_folder/<class>/<image>``: at least two classes.
    models : sequence of str
        Candidate models (see the module docstring): packaged names, ``ARCH=checkpoint``,
        ``package.module:function``.
    scores : sequence of str
        Keys of :data:`transferlib.scores.SCORES`; default :data:`DEFAULT_SCORES`. Scores
        that need class probabilities (``leep``) or source labels (``nce``: the argmax of
        the probabilities) need models that end in a classifier.
    layer : str, optional
        Layer whose globally pooled output is used as features (default: the penultimate
        representation).
    image_size : int
        Images are centre-cropped and resized to this many pixels (>= 32).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    cache_dir : path, optional
        Cache root (default ``$TRANSFERLIB_CACHE``); features are cached per model content,
        image files, layer, image size and code version.
    progress : bool
        Progress bars while extracting.

    Returns
    -------
    pandas.DataFrame
        One row per model (index: the model string), one column per score, a ``rank``
        column by the first score (1 = best) and ``seconds`` (extraction, 0 when cached);
        sorted by the first score.

    Raises
    ------
    ValueError, TypeError, FileNotFoundError
        Empty or one-class folder, unreadable images, unknown score, model or layer, a
        checkpoint that does not load, a score needing probabilities for a model whose
        output is not a class distribution. Checked before any extraction where possible.
    """
    import pandas as pd

    if isinstance(models, str) or not models:
        raise ValueError("models must be a non-empty list of model strings")
    if isinstance(scores, str) or not scores:
        raise ValueError("scores must be a non-empty list of score names")
    for name in scores:
        check_choice(name, "scores", sorted(SCORES))
    check_int(image_size, "image_size", minimum=32)
    if len(set(models)) != len(models):
        raise ValueError("models lists a model twice")
    target = load_target(target_folder)
    images = target.images(image_size)
    images_key = target.fingerprint()
    version = _extraction_version()
    rows = {}
    needs_probs = [name for name in scores if SCORES[name].needs != "features"]

    def check_probs(outputs: dict[str, np.ndarray], spec: str) -> dict[str, np.ndarray]:
        if needs_probs and "probs" not in outputs:
            raise ValueError(
                f"score(s) {needs_probs} need the class probabilities of model {spec}, whose "
                "output is not a class distribution (it does not end in a linear classifier); "
                "choose feature-based scores for it"
            )
        return outputs

    for spec in models:
        model, packaged = build_candidate(spec, image_size)

        def build(model: Any = model, packaged: bool = packaged, spec: str = spec) -> Any:
            # two images first, so a model without probabilities fails before extraction
            check_probs(_extract(model, packaged, images[:2], layer, device, False, spec), spec)
            return _extract(model, packaged, images, layer, device, progress, spec)

        started = time.perf_counter()
        key = config_key(
            {
                "model": _model_fingerprint(model),
                "images": images_key,
                "layer": layer,
                "image_size": image_size,
                "code": version,
            }
        )
        outputs, cached = load_or_build(
            "features",
            f"rank-{key}",
            build,
            save=save_npz,
            load=load_npz,
            suffix=".npz",
            cache_dir=cache_dir,
            description={"what": "transferlib rank features", "model": spec, "layer": layer},
        )
        seconds = 0.0 if cached else time.perf_counter() - started
        check_probs(outputs, spec)
        row = {}
        for name in scores:
            probs = outputs.get("probs")
            row[name] = SCORES[name].compute(
                features=outputs["features"],
                source_probs=probs,
                source_labels=None if probs is None else probs.argmax(1),
                target_labels=target.labels,
            )
        rows[spec] = {**row, "seconds": seconds}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    first = scores[0]
    table.insert(0, "rank", table[first].rank(ascending=False, method="min").astype(int))
    return table.sort_values("rank")


def write_report(table: pd.DataFrame, out: str | Path, title: str = "") -> list[Path]:
    """Write ``ranking.csv`` and ``ranking.png`` (one dot-plot panel per score) into ``out``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv = out / "ranking.csv"
    table.to_csv(csv)
    score_names = [c for c in table.columns if c not in ("rank", "seconds")]
    width = 2.8 * len(score_names) + 0.08 * max(len(str(m)) for m in table.index)
    fig, axes = plt.subplots(
        1,
        len(score_names),
        figsize=(width, 0.45 * len(table) + 1.6),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    labels = table.index.astype(str)
    for ax, name in zip(axes[0], score_names, strict=True):
        # dots, not bars: scores are often negative, and a bar from 0 would make the better
        # (less negative) score look smaller
        ax.hlines(labels, table[name].min(), table[name], color="#bbbbbb", linewidth=1)
        ax.plot(table[name], labels, "o", color="#4477aa")
        ax.set_title(name)
        ax.set_xlabel("score (higher is better)")
        ax.margins(x=0.15, y=0.2)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].invert_yaxis()  # best model on top
    fig.suptitle(title or "Transferability of the candidate models")
    png = out / "ranking.png"
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return [csv, png]
