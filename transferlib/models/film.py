"""A simplified CNAPs (Requeima et al., NeurIPS 2019), the meta-transfer method of LEEP §5.4.

CNAPs adapts a frozen, pretrained feature extractor to a new task from the task's support set
alone: a set encoder turns the support set into a task representation, adaptation networks
turn that into FiLM parameters (a scale and a shift per channel) for the extractor's layers, and
a classifier is built from the adapted features of each class. Only the adaptation networks are
trained, by meta-learning on many episodes. :class:`SimplifiedCNAPs` keeps that structure and
simplifies its parts; what differs from Requeima et al.:

* **FiLM only above a cut point**: every batch normalisation after the cut gets
  ``gamma_c * bn(x)_c + beta_c`` per channel ``c`` (CNAPs: FiLM in every block of its
  ResNet-18). The layers below the cut are frozen and run once per image; with ``cut=None``
  every batch normalisation of the network is adapted.
* **Set encoder on frozen activations**: an MLP applied to each support example's pooled
  activation at the cut, averaged over the set (a DeepSets encoder), instead of CNAPs' separate
  convolutional encoder on the images.
* **Prototype classifier**: logits ``-||f(x) - mu_k||^2`` with ``mu_k`` the mean adapted
  feature of class ``k`` in the support set (as in ProtoNets and Simple CNAPs' Euclidean
  variant), instead of CNAPs' network that generates a linear classifier from the class means.
* **Meta-training** on episodes with a fixed number of classes and shots from a class pool of
  the same data set (CNAPs: Meta-Dataset, with varying ways and shots).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from transferlib._progress import tqdm
from transferlib.models.base import TransferModel

__all__ = ["SimplifiedCNAPs", "meta_train"]

Episode = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class SimplifiedCNAPs(nn.Module):
    """A frozen source network above ``cut``, FiLM-adapted per task from its support set.

    Parameters
    ----------
    source : TransferModel
        The pretrained network (left unmodified; its layers after ``cut`` are copied and frozen).
    cut : str or None
        Inputs are the source's activation maps after this cut point (None: preprocessed
        images).
    embedding_dim, hidden_dim : int
        Widths of the task embedding and of the set encoder.

    Examples
    --------
    >>> import torch
    >>> from transferlib.models import build_model
    >>> torch.manual_seed(0) and None
    >>> source = build_model("small_cnn", 3, width=4).eval()
    >>> cnaps = SimplifiedCNAPs(source, "block2")
    >>> support = torch.randn(6, 8, 8, 8)
    >>> cnaps(support, torch.tensor([0, 0, 1, 1, 2, 2]), torch.randn(4, 8, 8, 8)).shape
    torch.Size([4, 3])
    """

    def __init__(
        self,
        source: TransferModel,
        cut: str | None,
        embedding_dim: int = 64,
        hidden_dim: int = 128,
    ) -> None:
        super().__init__()
        self.__dict__["source"] = source  # not a submodule: only the copied units are kept
        self.cut = cut
        self.units = nn.ModuleList(copy.deepcopy([unit for _, unit in source.units_after(cut)]))
        self.units.requires_grad_(False)
        norms = [m for m in self.units.modules() if isinstance(m, nn.BatchNorm2d)]
        if not norms:
            raise ValueError(f"no batch normalisation after cut {cut!r} to adapt with FiLM")
        # the cut activation's channels: those the first convolution after the cut reads
        channels = next(m for m in self.units.modules() if isinstance(m, nn.Conv2d)).in_channels
        self.encoder = nn.Sequential(
            nn.Linear(channels, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU()
        )
        self.embed = nn.Linear(hidden_dim, embedding_dim)
        self.film = nn.ModuleList(nn.Linear(embedding_dim, 2 * n.num_features) for n in norms)
        for layer in self.film:  # start at the identity adaptation
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self._film_values: list[tuple[torch.Tensor, torch.Tensor]] = []
        for index, norm in enumerate(norms):
            norm.register_forward_hook(self._film_hook(index))

    def _film_hook(self, index: int) -> Callable[..., torch.Tensor]:
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
            gamma, beta = self._film_values[index]
            return output * (1.0 + gamma.view(1, -1, 1, 1)) + beta.view(1, -1, 1, 1)

        return hook

    def train(self, mode: bool = True) -> SimplifiedCNAPs:
        """Train mode for the adaptation networks; the frozen units stay in eval mode."""
        super().train(mode)
        self.units.eval()
        return self

    def adapt(self, support: torch.Tensor) -> None:
        """Set the FiLM parameters of every adapted layer from a support set (its inputs)."""
        pooled = support.mean(dim=(2, 3))
        task = self.embed(self.encoder(pooled).mean(dim=0))
        self._film_values = [layer(task).chunk(2) for layer in self.film]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Adapted penultimate features (call :meth:`adapt` first)."""
        for unit in self.units:
            x = unit(x)
        return x.mean(dim=(2, 3))

    def forward(
        self, support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor
    ) -> torch.Tensor:
        """Query logits ``-||f(x) - mu_k||^2`` of a task given by its support set."""
        self.adapt(support)
        support_features, query_features = self.features(support), self.features(query)
        way = int(support_labels.max()) + 1
        one_hot = F.one_hot(support_labels, way).to(support_features.dtype)
        prototypes = (one_hot.T @ support_features) / one_hot.sum(0)[:, None]
        return -torch.cdist(query_features, prototypes).square()

    def accuracy(
        self,
        inputs: torch.Tensor,
        support_rows: np.ndarray,
        support_labels: np.ndarray,
        query_rows: np.ndarray,
        query_labels: np.ndarray,
        *,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> float:
        """Query accuracy of one episode whose inputs are rows of ``inputs``."""
        prepare = transform or (lambda batch: batch)
        self.eval()
        with torch.no_grad():
            logits = self(
                prepare(inputs[torch.as_tensor(support_rows)]),
                torch.as_tensor(support_labels),
                prepare(inputs[torch.as_tensor(query_rows)]),
            )
        return float((logits.argmax(1).numpy() == np.asarray(query_labels)).mean())

    def adaptation_state(self) -> dict[str, torch.Tensor]:
        """The trained parameters (set encoder and FiLM generators), for caching."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("units.")}

    def load_adaptation_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load what :meth:`adaptation_state` returned."""
        missing, unexpected = self.load_state_dict(state, strict=False)
        if unexpected or any(not name.startswith("units.") for name in missing):
            raise ValueError(f"state does not match: missing {missing}, unexpected {unexpected}")


def meta_train(
    model: SimplifiedCNAPs,
    inputs: torch.Tensor,
    episodes: Sequence[Episode],
    *,
    lr: float,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    progress: bool = False,
) -> list[float]:
    """Meta-train the adaptation networks: one Adam step per episode on its query loss.

    Parameters
    ----------
    model : SimplifiedCNAPs
    inputs : torch.Tensor
        The pool the episodes' rows index (activation maps at the cut, or images).
    episodes : sequence of (support rows, support labels, query rows, query labels)
    lr : float
    transform : callable, optional
        Applied to each gathered batch (e.g. preprocessing of images).
    progress : bool

    Returns
    -------
    list of float
        The query cross-entropy of every episode, in order.
    """
    prepare = transform or (lambda batch: batch)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.Adam(trainable, lr=lr)
    model.train()
    losses = []
    for support, support_labels, query, query_labels in tqdm(
        episodes, desc="meta-train", disable=not progress, leave=False
    ):
        logits = model(
            prepare(inputs[torch.as_tensor(support)]),
            torch.as_tensor(support_labels),
            prepare(inputs[torch.as_tensor(query)]),
        )
        loss = F.cross_entropy(logits, torch.as_tensor(query_labels))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    model.eval()
    return losses
