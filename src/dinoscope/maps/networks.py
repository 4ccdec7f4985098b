"""The learned maps' networks and how they are trained, placed with and saved (PyTorch).

Every learned map is a `MapNet` that *chooses a cell of its teacher's map*: the teacher's coordinates are cut into
k-means cells (`map_cells`), the network scores every cell and returns the likeliest one's centre plus an offset of
that cell's own. A network regressing the coordinates directly is a smooth function and puts new points between the
clusters a map separates (5-6 points of held-out 10-NN accuracy under the peers' `transform`, benchmarks/place.py);
choosing a cell is a classification, and an MLP classifier generalises as a k-NN one does. `maps.parametric` holds
the estimators that train one. Saved as TorchScript (`save_torchscript`), a network takes float32 embeddings (N, D)
and returns float32 coordinates (N, 2): the learned-map file format, `models/<name>.pt`, that placing, export and the
service read.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..compute import resolve_device
from ..errors import DinoscopeError
from ..geometry import EPS, ball
from .training import optimise

_BATCH = 8192  # rows per forward pass when placing points
# Width of the soft cell targets, in units of the cells' RMS radius: a point's target is spread over the cells near
# it (exp(-d^2 / 2 w^2)), so that choosing a neighbouring cell costs little. Held-out 10-NN accuracy on digits
# (benchmarks/place.py's split, 64 cells, 2 x 128 units): 0.960 / 0.970 (t-SNE / UMAP map) with hard targets,
# 0.970 / 0.967 at 1, 0.955 / 0.958 at 2; on Fashion-MNIST 20k the same within 0.1 point at 0 and 1.
SOFTNESS = 1.0


class MapNet(nn.Module):
    """Embeddings → 2-D coordinates by choosing a cell of the map: fixed input standardisation, an MLP, a score per
    cell and a 2-D offset per cell; the output is the best-scored cell's centre plus its offset (for the disk a
    tangent vector at the origin, sent in by the exponential map and clipped at radius 1 - eps)."""

    def __init__(self, center: torch.Tensor, spread: torch.Tensor, centres: torch.Tensor, hidden: int, layers: int,
                 normalize: bool, out_scale: float, disk: bool, eps: float = EPS):
        super().__init__()
        sizes = [center.shape[0]] + [hidden] * layers
        blocks: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            blocks += [nn.Linear(a, b), nn.ReLU()]
        self.mlp = nn.Sequential(*blocks)
        self.cells = int(centres.shape[0])
        self.scores = nn.Linear(hidden, self.cells)
        self.offsets = nn.Linear(hidden, 2 * self.cells)
        self.register_buffer("center", center.float())
        self.register_buffer("spread", spread.float())
        self.register_buffer("centres", centres.float())
        self.normalize = normalize
        self.out_scale = float(out_scale)
        self.disk = disk
        self.eps = eps

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The MLP's last hidden layer for embeddings x."""
        if self.normalize:
            x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return self.mlp((x - self.center) / self.spread)

    def in_cell(self, h: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """Raw 2-D outputs (map units; tangent vectors for the disk) of features h placed in the given cells: each
        cell's centre plus its own offset (only the chosen cell's offset weights are used)."""
        # index_select of whole rows and a product summed over the features: a quarter of the time of fancy
        # indexing and einsum, which copy the (N, 2, H) weights twice (Fashion-MNIST, 10,000 rows: 1.7 -> 0.45 ms)
        weight = self.offsets.weight.view(self.cells, -1).index_select(0, cell).view(-1, 2, h.shape[1])
        bias = self.offsets.bias.view(self.cells, 2).index_select(0, cell)
        return self.centres.index_select(0, cell) + ((h[:, None, :] * weight).sum(dim=2) + bias) * self.out_scale

    def tangent(self, x: torch.Tensor) -> torch.Tensor:
        """The network's raw 2-D output, in map units (a tangent vector at the origin for the disk)."""
        h = self.features(x)
        return self.in_cell(h, best_cell(self.scores(h)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tangent(x)
        return ball.project(ball.expmap0(y), self.eps) if self.disk else y


def best_cell(scores: torch.Tensor) -> torch.Tensor:
    """Each row's best-scored cell (the first of equals). On the CPU numpy's argmax, which is vectorised: torch's
    takes 1.4 ms for Fashion-MNIST's 10,000 rows of 256 cells, numpy's 0.5. Traced (the TorchScript export) or on a
    GPU, torch's own, which the trace records."""
    if scores.device.type != "cpu" or torch.jit.is_tracing() or scores.requires_grad:
        return scores.argmax(dim=1)
    return torch.from_numpy(scores.numpy().argmax(axis=1))


def standardisation(X: np.ndarray, normalize: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and one overall spread (RMS of the per-dimension deviations) of the (optionally L2-normalised) inputs.

    One spread for every dimension keeps the input geometry (the distances the map should respect); scaling
    each dimension to unit variance would blow weak, noisy directions up to the strength of the main ones.
    """
    Z = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    if normalize:
        Z = Z / Z.norm(dim=1, keepdim=True).clamp_min(1e-12)
    center = Z.mean(dim=0)
    return center, torch.full_like(center, float(Z.var(dim=0).mean().sqrt().clamp_min(1e-12)))


def map_cells(targets: np.ndarray, most: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The cells a network chooses among: k-means of its (n, 2) targets into about 2√n cells, at most `most`.

    Returns the centres (c, 2), each target's cell (n,) and the RMS distance from a target to its cell's centre (the
    offsets' unit). 2√n: 69 cells for digits' 1,200 points, 256 (the default most) for Fashion-MNIST's 20,000; more
    cells place more accurately (Fashion-MNIST, t-SNE map, 2 x 256 units: 0.776 / 0.792 / 0.802 at 64 / 256 / 1,024)
    and score more per point (the cells' scores are most of the network's work)."""
    from sklearn.cluster import KMeans

    n_cells = int(min(most, len(np.unique(targets, axis=0)), max(2, round(2 * np.sqrt(len(targets))))))
    kmeans = KMeans(n_cells, n_init=1, random_state=seed).fit(targets)
    centres = kmeans.cluster_centers_
    radius = float(np.sqrt(((targets - centres[kmeans.labels_]) ** 2).sum(axis=1).mean())) or 1.0
    return centres, kmeans.labels_.astype(np.int64), radius


def new_net(X: np.ndarray, centres: np.ndarray, *, hidden: int, layers: int, metric: str, out_scale: float,
            disk: bool, seed: int, device: str) -> MapNet:
    """A freshly initialised network for inputs like X choosing among `centres` (seeded), on `device`."""
    normalize = metric == "cosine"
    center, spread = standardisation(X, normalize)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = MapNet(center, spread, torch.from_numpy(centres), hidden, layers, normalize, out_scale, disk)
    return net.to(resolve_device(device))


def generator(seed: int) -> torch.Generator:
    """The training's own random stream (batches, negatives), apart from the initialisation's."""
    return torch.Generator().manual_seed(seed + 1)


def finished(net: MapNet) -> MapNet:
    """The trained network on the CPU, in eval mode, frozen."""
    return net.cpu().eval().requires_grad_(False)


def place(net: MapNet, X: np.ndarray) -> np.ndarray:
    """Coordinates of X's rows: forward passes of `_BATCH` rows (float32 (N, 2))."""
    with torch.no_grad():
        parts = [net(torch.from_numpy(np.ascontiguousarray(X[i:i + _BATCH], dtype=np.float32)))
                 for i in range(0, len(X), _BATCH)]
    return torch.cat(parts).numpy()


@contextmanager
def quiet_jit() -> Iterator[None]:
    """TorchScript is the format export and serving read; torch's notice that it is deprecated is not news here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit.*")
        yield


def to_torchscript(net: MapNet, dim: int) -> torch.jit.ScriptModule:
    """The trained network as a traced TorchScript module (CPU, eval mode) for `torch.jit.save`."""
    with torch.no_grad(), quiet_jit():
        return torch.jit.trace(net, torch.zeros(2, dim), check_trace=False)


def save_torchscript(net: MapNet, dim: int, path: str | Path) -> None:
    """Write the network as TorchScript to `path` (the learned-map file format, models/<name>.pt)."""
    module = to_torchscript(net, dim)
    with quiet_jit():
        torch.jit.save(module, str(path))


def student_targets(teacher: np.ndarray, disk: bool) -> np.ndarray:
    """What a student's network outputs for the teacher's points: the coordinates, or for the disk their tangent
    vectors at the origin (float64 (n, 2))."""
    if not disk:
        return teacher
    if (np.einsum("ij,ij->i", teacher, teacher) >= 1).any():
        raise DinoscopeError("ParametricPoincare: teacher coordinates must lie inside the unit disk")
    return np.asarray(ball.logmap0(ball.project(teacher)), dtype=np.float64)


def cell_loss(net: MapNet, x: torch.Tensor, target: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the cells' scores against soft targets (`SOFTNESS`) plus the squared error of the point
    placed in its own cell, in units of the cells' radius."""
    h = net.features(x)
    d2 = ((target[:, None, :] - net.centres[None]) ** 2).sum(dim=2) / (SOFTNESS * net.out_scale) ** 2
    soft = torch.softmax(-d2 / 2, dim=1)
    choice = -(soft * torch.log_softmax(net.scores(h), dim=1)).sum(dim=1).mean()
    return choice + ((net.in_cell(h, cell) - target) ** 2).sum(dim=1).mean() / net.out_scale ** 2


def learn_cells(net: MapNet, X: np.ndarray, target: np.ndarray, cell: np.ndarray, *, epochs: int, patience: int,
                batch_size: int, learning_rate: float, validation: float, generator: torch.Generator,
                progress: bool, title: str) -> dict:
    """Train `net` to put X's rows in their cells at their targets (`cell_loss`), early-stopped on a held-out share."""
    device = next(net.parameters()).device
    data = torch.from_numpy(np.ascontiguousarray(X, np.float32)).to(device)
    target = torch.from_numpy(target.astype(np.float32)).to(device)
    cell = torch.from_numpy(cell).to(device)
    order = torch.randperm(len(X), generator=generator)
    n_val = max(1, int(round(validation * len(X))))
    val, train = order[:n_val].to(device), order[n_val:]

    def epoch() -> Iterator[torch.Tensor]:
        perm = train[torch.randperm(len(train), generator=generator)].to(device)
        for start in range(0, len(perm), batch_size):
            rows = perm[start:start + batch_size]
            yield cell_loss(net, data[rows], target[rows], cell[rows])

    return optimise(net, epoch, epochs=epochs, learning_rate=learning_rate,
                    validate=lambda: float(cell_loss(net, data[val], target[val], cell[val])), patience=patience,
                    progress=progress, title=title)
