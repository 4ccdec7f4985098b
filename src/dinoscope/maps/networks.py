"""The learned maps' networks and how they are trained, placed with and saved (PyTorch).

Every learned map is a `MapNet`; `maps.parametric` holds the estimators that train one. Saved as TorchScript
(`save_torchscript`), a network takes float32 embeddings (N, D) and returns float32 coordinates (N, 2): the
learned-map file format, `models/<name>.pt`, that placing, export and the service read.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..compute import resolve_device
from ..errors import DinoscopeError
from ..geometry import EPS, ball
from ..neighbors import KNNGraph, umap_knn
from .training import optimise

_BATCH = 8192  # rows per forward pass when placing points
_MIN_EDGES = 8192  # edges sampled per parametric UMAP epoch at least (small runs need more steps than points)

Loss = Callable[["MapNet", torch.Tensor, torch.Tensor], torch.Tensor]


class MapNet(nn.Module):
    """Embeddings → 2-D coordinates: fixed input standardisation, an MLP, an output scale, and for the disk
    the exponential map at the origin followed by a clip at radius 1 - eps."""

    def __init__(self, center: torch.Tensor, spread: torch.Tensor, hidden: int, layers: int, normalize: bool,
                 out_scale: float, disk: bool, eps: float = EPS):
        super().__init__()
        dim = center.shape[0]
        sizes = [dim] + [hidden] * layers
        blocks: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            blocks += [nn.Linear(a, b), nn.ReLU()]
        self.mlp = nn.Sequential(*blocks, nn.Linear(sizes[-1], 2))
        self.register_buffer("center", center.float())
        self.register_buffer("spread", spread.float())
        self.normalize = normalize
        self.out_scale = float(out_scale)
        self.disk = disk
        self.eps = eps

    def tangent(self, x: torch.Tensor) -> torch.Tensor:
        """The network's raw 2-D output, in map units (a tangent vector at the origin for the disk)."""
        if self.normalize:
            x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return self.mlp((x - self.center) / self.spread) * self.out_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tangent(x)
        return ball.project(ball.expmap0(y), self.eps) if self.disk else y


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


def new_net(X: np.ndarray, *, hidden: int, layers: int, metric: str, out_scale: float, disk: bool, seed: int,
            device: str) -> MapNet:
    """A freshly initialised network for inputs like X (seeded), on `device`."""
    normalize = metric == "cosine"
    center, spread = standardisation(X, normalize)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = MapNet(center, spread, hidden, layers, normalize, out_scale, disk)
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


def squared_error(net: MapNet, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared Euclidean distance to the targets, in units of the network's output scale."""
    return ((net(x) - target) ** 2).sum(dim=1).mean() / net.out_scale ** 2


def poincare_error(net: MapNet, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared Poincaré distance to the targets (disk networks)."""
    return (ball.distance(net(x), target) ** 2).mean()


def student_targets(teacher: np.ndarray, disk: bool) -> tuple[torch.Tensor, float, Loss]:
    """A student's training targets, the output scale that makes them about unit size, and its loss."""
    if not disk:
        return torch.from_numpy(teacher.astype(np.float32)), float(teacher.std()) or 1.0, squared_error
    if (np.einsum("ij,ij->i", teacher, teacher) >= 1).any():
        raise DinoscopeError("ParametricPoincare: teacher coordinates must lie inside the unit disk")
    scale = float(np.asarray(ball.logmap0(teacher)).std()) or 1.0
    return torch.from_numpy(ball.project(teacher).astype(np.float32)), scale, poincare_error


def regress(net: MapNet, X: np.ndarray, target: torch.Tensor, loss: Loss, *, epochs: int, patience: int,
            batch_size: int, learning_rate: float, validation: float, generator: torch.Generator,
            progress: bool, title: str) -> dict:
    """Train `net` to map X onto `target` under `loss(net, x, target)`, early-stopped on a held-out share."""
    device = next(net.parameters()).device
    data, target = torch.from_numpy(np.ascontiguousarray(X, np.float32)).to(device), target.to(device)
    order = torch.randperm(len(X), generator=generator)
    n_val = max(1, int(round(validation * len(X))))
    val, train = order[:n_val].to(device), order[n_val:]

    def epoch() -> Iterator[torch.Tensor]:
        perm = train[torch.randperm(len(train), generator=generator)].to(device)
        for start in range(0, len(perm), batch_size):
            rows = perm[start:start + batch_size]
            yield loss(net, data[rows], target[rows])

    return optimise(net, epoch, epochs=epochs, learning_rate=learning_rate,
                    validate=lambda: float(loss(net, data[val], target[val])), patience=patience,
                    progress=progress, title=title)


def fuzzy_edges(X: np.ndarray, knn: KNNGraph, n_neighbors: int, seed: int) -> tuple[np.ndarray, ...]:
    """umap-learn's symmetric fuzzy graph of the shared kNN graph, as (heads, tails, weights)."""
    from umap.umap_ import fuzzy_simplicial_set

    indices, distances = umap_knn(knn, n_neighbors)
    graph, _, _ = fuzzy_simplicial_set(X, n_neighbors, np.random.RandomState(seed), knn.metric,
                                       knn_indices=indices, knn_dists=distances)
    graph = graph.tocoo()
    keep = graph.data > 0
    return graph.row[keep].astype(np.int64), graph.col[keep].astype(np.int64), graph.data[keep].astype(np.float32)


def train_umap(net: MapNet, X: np.ndarray, knn: KNNGraph, target: np.ndarray | None, *, n_neighbors: int,
               min_dist: float, n_epochs: int, warm_epochs: int, negative_samples: int, teacher_weight: float,
               batch_size: int, learning_rate: float, seed: int, progress: bool) -> dict:
    """Parametric UMAP's training (see `parametric.ParametricUMAP`): an optional warm start on the teacher's
    coordinates, then UMAP's cross-entropy on the graph's fuzzy edges plus a pull towards the teacher."""
    from umap.umap_ import find_ab_params

    gen = generator(seed)
    device = next(net.parameters()).device
    warm: dict = {}
    if target is not None:
        target = torch.from_numpy(target.astype(np.float32))
        warm = regress(net, X, target, squared_error, epochs=warm_epochs, patience=10, batch_size=batch_size,
                       learning_rate=learning_rate, validation=0.1, generator=gen, progress=progress,
                       title="ParametricUMAP 1/2")
        target = target.to(device)
    heads, tails, weights = (torch.from_numpy(a) for a in fuzzy_edges(X, knn, n_neighbors, seed))
    a, b = (float(v) for v in find_ab_params(1.0, min_dist))
    data = torch.from_numpy(np.ascontiguousarray(X, np.float32)).to(device)
    per_epoch = max(len(X), _MIN_EDGES)
    pull = 0.0 if target is None else teacher_weight / net.out_scale ** 2

    def log_u(d2: torch.Tensor) -> torch.Tensor:  # log(a d^2b), where UMAP's similarity is q = 1 / (1 + u)
        return np.log(a) + b * torch.log(d2.clamp_min(1e-8))

    def epoch() -> Iterator[torch.Tensor]:
        edges = torch.multinomial(weights, per_epoch, replacement=True, generator=gen)
        for start in range(0, per_epoch, batch_size):
            e = edges[start:start + batch_size]
            h, t = heads[e].to(device), tails[e].to(device)
            yh, yt = net(data[h]), net(data[t])
            loss = nn.functional.softplus(log_u(((yh - yt) ** 2).sum(dim=1))).mean()  # -log q
            for _ in range(negative_samples):
                other = yt[torch.randperm(len(e), generator=gen).to(device)]
                loss = loss + nn.functional.softplus(-log_u(((yh - other) ** 2).sum(dim=1))).mean()  # -log(1-q)
            if target is not None:
                loss = loss + pull * ((yh - target[h]) ** 2).sum(dim=1).mean()
            yield loss

    info = optimise(net, epoch, epochs=n_epochs, learning_rate=learning_rate, progress=progress,
                    title="ParametricUMAP 2/2" if target is not None else "ParametricUMAP")
    return {**info, "warm_epochs": warm.get("epochs", 0)}
