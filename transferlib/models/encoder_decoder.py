"""A small encoder with a spatial code, read out by a linear head or a dense decoder.

The task-transfer experiments of Bao et al. (2019, §4.2) use one encoder per task (Taskonomy's
encoder-decoder networks) and compare tasks through the encoders' codes. Dense targets need a
code that keeps *where* things are, so the representation here is the encoder's whole spatial
code, flattened (Taskonomy's 16 x 16 x 8 = 2,048 numbers; here ``code_channels x code_size^2``),
not a globally pooled vector. The same encoder serves classification tasks (a linear head on
the code) and dense tasks (a convolutional decoder that upsamples the code).
"""

from __future__ import annotations

import torch
from torch import nn

from transferlib.models.base import TransferModel

__all__ = ["EncoderDecoder"]


def _block(in_channels: int, out_channels: int, pool: bool) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2) if pool else nn.Identity(),
    )


def _decoder(code_channels: int, width: int, out_channels: int, upsamples: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(code_channels, 2 * width, 3, padding=1), nn.ReLU()]
    channels = 2 * width
    for _ in range(upsamples):
        layers += [
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(),
        ]
        channels = width
    layers.append(nn.Conv2d(channels, out_channels, 1))
    return nn.Sequential(*layers)


class _FlatCode(nn.Module):
    """The flattened code as a (B, C * H * W, 1, 1) map, so that pooling it (as
    :meth:`~transferlib.models.TransferModel.intermediate` does) is the identity and the
    features keep every position."""

    def __init__(self, code: nn.Conv2d) -> None:
        super().__init__()
        self.code = code

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.code(x).flatten(1)[:, :, None, None]


class EncoderDecoder(TransferModel):
    """Three conv-BN-ReLU blocks (the first ``downsamples`` of them halve the resolution), a
    linear 1x1 code, and a head or a decoder.

    Layers for :meth:`intermediate`: ``"block1"``, ``"block2"``, ``"block3"`` (pooled) and
    ``"code"``, the flattened spatial code (``feature_dim = code_channels * code_size^2``
    numbers with ``code_size = image_size / 2**downsamples``; = :meth:`features`).

    Parameters
    ----------
    num_classes : int
        Classes of the linear head, or, with ``dense=True``, output channels per pixel of the
        decoder.
    dense : bool
        Read the code out with a decoder (``forward`` returns ``(B, num_classes, R, R)`` maps,
        ``R = code_size * 2**upsamples``) instead of a linear head (``(B, num_classes)``
        logits).
    width : int
        Channels of the first block (then ``2 * width``); the decoder mirrors them.
    code_channels : int
        Channels of the spatial code.
    image_size : int
        Side of the input images, a multiple of ``2**downsamples``
        (:func:`~transferlib.models.preprocess` resizes other sizes to it).
    downsamples : int
        Blocks (from the first) that halve the resolution, 0 to 3.
    upsamples : int
        Doublings of resolution in the decoder.
    """

    layers = ("block1", "block2", "block3", "code")

    def __init__(
        self,
        num_classes: int,
        *,
        dense: bool = False,
        width: int = 16,
        code_channels: int = 16,
        image_size: int = 32,
        downsamples: int = 3,
        upsamples: int = 2,
    ) -> None:
        super().__init__()
        for name, value in (("width", width), ("code_channels", code_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(downsamples, int) or not 0 <= downsamples <= 3:
            raise ValueError(f"downsamples must be 0, 1, 2 or 3, got {downsamples!r}")
        if (
            not isinstance(image_size, int)
            or image_size < 2**downsamples
            or (image_size % 2**downsamples)
        ):
            raise ValueError(
                f"image_size must be a positive multiple of 2**downsamples = {2**downsamples}, "
                f"got {image_size!r}"
            )
        if not isinstance(upsamples, int) or upsamples < 0:
            raise ValueError(f"upsamples must be a non-negative integer, got {upsamples!r}")
        self.width, self.code_channels, self.upsamples = width, code_channels, upsamples
        self.input_size = image_size
        self.code_size = image_size // 2**downsamples
        self.blocks = nn.ModuleList(
            _block(c_in, c_out, pool=k < downsamples)
            for k, (c_in, c_out) in enumerate(
                [(3, width), (width, 2 * width), (2 * width, 2 * width)]
            )
        )
        self.code = nn.Conv2d(2 * width, code_channels, 1)
        self.feature_dim = code_channels * self.code_size**2
        self.head: nn.Module
        if dense:
            self.replace_decoder(num_classes)
        else:
            self.replace_head(num_classes)

    @property
    def dense(self) -> bool:
        """Whether the model ends in a decoder (dense maps) rather than a linear head."""
        return not isinstance(self.head, nn.Linear)

    @property
    def output_size(self) -> int:
        """Side of the decoder's output maps."""
        return self.code_size * 2**self.upsamples

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial code ``(B, code_channels, code_size, code_size)``."""
        for block in self.blocks:
            x = block(x)
        return self.code(x)

    def _build_units(self) -> list[tuple[str, nn.Module]]:
        return [*zip(self.layers[:3], self.blocks), ("code", _FlatCode(self.code))]

    def readout(self, code: torch.Tensor) -> torch.Tensor:
        """The head's output for a spatial code: logits, or the decoder's maps."""
        return self.head(code) if self.dense else self.head(code.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.encode(x))

    def replace_decoder(self, out_channels: int, width: int | None = None) -> nn.Module:
        """Put a freshly initialised decoder with ``out_channels`` maps in place of the head.

        ``width`` sets the decoder's channels (default: the encoder's ``width``); a narrow
        decoder is a cheap readout of a frozen code.
        """
        width = self.width if width is None else width
        for name, value in (("out_channels", out_channels), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        device = next(self.code.parameters()).device
        self.head = _decoder(self.code_channels, width, out_channels, self.upsamples).to(device)
        return self.head
