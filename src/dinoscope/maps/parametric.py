"""Learned maps: small PyTorch networks from embeddings to map coordinates, which place new points in one pass.

* ``ParametricUMAP`` (map ``param_umap``) — an MLP trained with UMAP's cross-entropy over the shared kNN
  graph's fuzzy edges (umap-learn's weights and a, b curve), negatives drawn by pairing each edge's head
  with other edges' tails, plus a small term pulling it towards the non-parametric UMAP layout so that
  the two maps agree (and are oriented alike).
* ``ParametricTSNE`` (``param_tsne``) — the seeds' t-SNE approximator: an MLP regressing the t-SNE map's
  coordinates, with a held-out split and early stopping.
* ``ParametricPoincare`` (``param_poincare``) — the same for the Poincaré disk: the MLP's 2-D output is a
  tangent vector at the origin, sent into the disk by the exponential map and kept at most 1 - eps
  (eps = `ball.EPS` = 1e-5) from the centre, so no output can leave the disk; the loss is the squared
  Poincaré distance to the teacher's point.

The students' teachers (the non-parametric maps) are fitted first by the maps stage and handed over as
`fit(X, teacher=coords)`. Every learned map's network is a `MapNet`; `to_torchscript()` gives it as a traced
TorchScript module (float32 embeddings (N, D) → float32 coordinates (N, 2)), which the pipeline saves as
`models/<name>.pt` for placing, export and serving.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ..checks import as_points, check_new_points
from ..compute import resolve_device
from ..errors import DinoscopeError
from ..geometry import ball
from ..neighbors import KNNGraph, knn_graph
from .training import optimise

_BATCH = 8192  # rows per forward pass when placing points
_MIN_EDGES = 8192  # edges sampled per parametric UMAP epoch at least (small runs need more steps than points)


class MapNet(nn.Module):
    """Embeddings → 2-D coordinates: fixed input standardisation, an MLP, an output scale, and for the disk
    the exponential map at the origin followed by a clip at radius 1 - eps."""

    def __init__(self, center: torch.Tensor, spread: torch.Tensor, hidden: int, layers: int, normalize: bool,
                 out_scale: float, disk: bool, eps: float = ball.EPS):
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


class _LearnedMap(BaseEstimator):
    """What every learned map shares: the network, training settings, placing and the TorchScript export."""

    disk = False

    def _build(self, X: np.ndarray, out_scale: float) -> MapNet:
        """A freshly initialised network for inputs like X (seeded)."""
        normalize = self.metric == "cosine"
        center, spread = standardisation(X, normalize)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed())
            return MapNet(center, spread, self.hidden, self.layers, normalize, out_scale, self.disk)

    def _seed(self) -> int:
        return 0 if self.random_state is None else int(self.random_state)

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self._seed() + 1)

    def _finish(self, net: MapNet, X: np.ndarray, info: dict) -> None:
        """Keep the trained network on the CPU and the fitted points' coordinates."""
        self.net_ = net.cpu().eval().requires_grad_(False)
        self.n_features_in_ = X.shape[1]
        self.training_ = info
        self.embedding_ = self.transform(X)

    def fit_transform(self, X: object, knn: KNNGraph | None = None, teacher: np.ndarray | None = None,
                      progress: bool = False) -> np.ndarray:
        """Fit and return the learned map's coordinates of X (the network's output, not the teacher's)."""
        return self.fit(X, knn, teacher, progress).embedding_

    def transform(self, X: object) -> np.ndarray:
        """Place new points: one forward pass of the network (float32 (N, 2))."""
        check_is_fitted(self, "net_")
        X = check_new_points(X, self.n_features_in_)
        with torch.no_grad():
            parts = [self.net_(torch.from_numpy(np.ascontiguousarray(X[i:i + _BATCH], dtype=np.float32)))
                     for i in range(0, len(X), _BATCH)]
        return torch.cat(parts).numpy()

    def to_torchscript(self) -> torch.jit.ScriptModule:
        """The trained network as a TorchScript module (CPU, eval mode) for `torch.jit.save`."""
        check_is_fitted(self, "net_")
        example = torch.zeros(2, self.n_features_in_)
        with torch.no_grad(), _quiet_jit():
            return torch.jit.trace(self.net_, example, check_trace=False)

    def save(self, path: str | Path) -> None:
        """Write the TorchScript module to `path` (the learned-map file format, models/<name>.pt)."""
        module = self.to_torchscript()
        with _quiet_jit():
            torch.jit.save(module, str(path))


@contextmanager
def _quiet_jit() -> Iterator[None]:
    """TorchScript is the format export and serving read; torch's notice that it is deprecated is not news here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*torch.jit.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit.*")
        yield


class _Student(_LearnedMap):
    """An MLP regressing a fitted map's coordinates (its teacher), with a held-out split and early stopping."""

    def __init__(self, hidden: int = 256, layers: int = 2, max_epochs: int = 200, patience: int = 12,
                 batch_size: int = 512, learning_rate: float = 1e-3, validation: float = 0.1, metric: str = "cosine",
                 device: str = "auto", random_state: int | None = 0):
        self.hidden = hidden
        self.layers = layers
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation = validation
        self.metric = metric
        self.device = device
        self.random_state = random_state

    def _targets(self, teacher: np.ndarray) -> tuple[torch.Tensor, float]:
        """Training targets and the output scale that makes them about unit size for the network."""
        raise NotImplementedError

    @staticmethod
    def _loss(net: MapNet, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def fit(self, X: object, knn: KNNGraph | None = None, teacher: np.ndarray | None = None,
            progress: bool = False) -> _Student:
        """Learn X → teacher coordinates; `knn` is accepted for the maps' common interface and not needed."""
        X = as_points(X)
        name = type(self).__name__
        if teacher is None:
            raise DinoscopeError(f"{name} learns a fitted map's coordinates: call fit(X, teacher=coordinates)")
        teacher = check_teacher(name, teacher, len(X))
        target, out_scale = self._targets(teacher)
        net = self._build(X, out_scale).to(resolve_device(self.device))
        info = regress(net, X, target, self._loss, epochs=self.max_epochs, patience=self.patience,
                       batch_size=self.batch_size, learning_rate=self.learning_rate, validation=self.validation,
                       generator=self._generator(), progress=progress, title=name)
        self._finish(net, X, info)
        return self


def check_teacher(name: str, teacher: object, n: int) -> np.ndarray:
    """The teacher's coordinates as float64 (n, 2), or a clear error."""
    teacher = np.asarray(teacher, dtype=np.float64)
    if teacher.shape != (n, 2) or not np.isfinite(teacher).all():
        raise DinoscopeError(f"{name}: teacher coordinates must be finite, shape {(n, 2)}; got {teacher.shape}")
    return teacher


def regress(net: MapNet, X: np.ndarray, target: torch.Tensor, loss, *, epochs: int, patience: int,
            batch_size: int, learning_rate: float, validation: float, generator: torch.Generator,
            progress: bool, title: str) -> dict:
    """Train `net` to map X onto `target` under `loss(net, x, target)`, early-stopped on a held-out share."""
    if not 0 < validation < 0.5:
        raise DinoscopeError(f"{title}: validation share must lie in (0, 0.5), got {validation}")
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


def squared_error(net: MapNet, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared Euclidean distance to the targets, in units of the network's output scale."""
    return ((net(x) - target) ** 2).sum(dim=1).mean() / net.out_scale ** 2


class ParametricTSNE(_Student):
    """The t-SNE approximator: an MLP trained on (embedding, t-SNE coordinates); squared-error loss."""

    def _targets(self, teacher: np.ndarray) -> tuple[torch.Tensor, float]:
        scale = float(teacher.std()) or 1.0
        return torch.from_numpy(teacher.astype(np.float32)), scale

    _loss = staticmethod(squared_error)


class ParametricPoincare(_Student):
    """The learned Poincaré map: exponential map of a 2-D tangent output; loss = squared Poincaré distance."""

    disk = True

    def _targets(self, teacher: np.ndarray) -> tuple[torch.Tensor, float]:
        if (np.einsum("ij,ij->i", teacher, teacher) >= 1).any():
            raise DinoscopeError("ParametricPoincare: teacher coordinates must lie inside the unit disk")
        scale = float(np.asarray(ball.logmap0(teacher)).std()) or 1.0
        return torch.from_numpy(ball.project(teacher).astype(np.float32)), scale

    @staticmethod
    def _loss(net: MapNet, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (ball.distance(net(x), target) ** 2).mean()


def fuzzy_edges(X: np.ndarray, knn: KNNGraph, n_neighbors: int, seed: int) -> tuple[np.ndarray, ...]:
    """umap-learn's symmetric fuzzy graph of the shared kNN graph, as (heads, tails, weights)."""
    from umap.umap_ import fuzzy_simplicial_set

    from .umap import umap_knn

    indices, distances = umap_knn(knn, n_neighbors)
    graph, _, _ = fuzzy_simplicial_set(X, n_neighbors, np.random.RandomState(seed), knn.metric,
                                       knn_indices=indices, knn_dists=distances)
    graph = graph.tocoo()
    keep = graph.data > 0
    return graph.row[keep].astype(np.int64), graph.col[keep].astype(np.int64), graph.data[keep].astype(np.float32)


class ParametricUMAP(_LearnedMap):
    """Parametric UMAP: an MLP encoder trained with UMAP's cross-entropy on the shared graph's fuzzy edges.

    With a teacher (the UMAP map of the same points) the network first regresses it (at most `warm_epochs`,
    early-stopped), then UMAP's loss refines it while `teacher_weight` times the squared distance to the
    teacher (in units of its spread) keeps the two maps in agreement. Each UMAP epoch samples as many edges
    as there are points (at least 8192), in proportion to the edges' weights, and pushes every edge's head away from
    `negative_samples` other edges' tails.
    """

    def __init__(self, n_neighbors: int = 15, min_dist: float = 0.1, hidden: int = 256, layers: int = 2,
                 n_epochs: int = 50, warm_epochs: int = 100, negative_samples: int = 5, teacher_weight: float = 0.1,
                 batch_size: int = 512, learning_rate: float = 1e-3, metric: str = "cosine", device: str = "auto",
                 random_state: int | None = 0):
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.hidden = hidden
        self.layers = layers
        self.n_epochs = n_epochs
        self.warm_epochs = warm_epochs
        self.negative_samples = negative_samples
        self.teacher_weight = teacher_weight
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.metric = metric
        self.device = device
        self.random_state = random_state

    def fit(self, X: object, knn: KNNGraph | None = None, teacher: np.ndarray | None = None,
            progress: bool = False) -> ParametricUMAP:
        """Train on X's graph (`knn`, the shared graph of X, or one built here); `teacher`: UMAP coordinates."""
        from umap.umap_ import find_ab_params

        X = as_points(X)
        n = len(X)
        if not 2 <= self.n_neighbors < n:
            raise DinoscopeError(f"ParametricUMAP needs 2 <= n_neighbors < n points, got {self.n_neighbors} for {n}")
        if knn is None:
            knn = knn_graph(X, k=self.n_neighbors - 1, metric=self.metric, seed=self._seed())
        elif len(knn) != n:
            raise DinoscopeError(f"the kNN graph has {len(knn)} points but X has {n}")
        gen = self._generator()
        target = None if teacher is None else check_teacher("ParametricUMAP", teacher, n)
        net = self._build(X, float(target.std()) if target is not None else 1.0).to(resolve_device(self.device))
        device = next(net.parameters()).device
        warm = {}
        if target is not None:
            target = torch.from_numpy(target.astype(np.float32))
            warm = regress(net, X, target, squared_error, epochs=self.warm_epochs, patience=10,
                           batch_size=self.batch_size, learning_rate=self.learning_rate, validation=0.1,
                           generator=gen, progress=progress, title="ParametricUMAP 1/2")
            target = target.to(device)
        heads, tails, weights = (torch.from_numpy(a) for a in fuzzy_edges(X, knn, self.n_neighbors, self._seed()))
        a, b = (float(v) for v in find_ab_params(1.0, self.min_dist))
        data = torch.from_numpy(np.ascontiguousarray(X, np.float32)).to(device)
        per_epoch = max(n, _MIN_EDGES)
        pull = 0.0 if target is None else self.teacher_weight / net.out_scale ** 2

        def log_u(d2: torch.Tensor) -> torch.Tensor:  # log(a d^2b), where UMAP's similarity is q = 1 / (1 + u)
            return np.log(a) + b * torch.log(d2.clamp_min(1e-8))

        def epoch() -> Iterator[torch.Tensor]:
            edges = torch.multinomial(weights, per_epoch, replacement=True, generator=gen)
            for start in range(0, per_epoch, self.batch_size):
                e = edges[start:start + self.batch_size]
                h, t = heads[e].to(device), tails[e].to(device)
                yh, yt = net(data[h]), net(data[t])
                loss = nn.functional.softplus(log_u(((yh - yt) ** 2).sum(dim=1))).mean()  # -log q
                for _ in range(self.negative_samples):
                    other = yt[torch.randperm(len(e), generator=gen).to(device)]
                    loss = loss + nn.functional.softplus(-log_u(((yh - other) ** 2).sum(dim=1))).mean()  # -log(1-q)
                if target is not None:
                    loss = loss + pull * ((yh - target[h]) ** 2).sum(dim=1).mean()
                yield loss

        info = optimise(net, epoch, epochs=self.n_epochs, learning_rate=self.learning_rate, progress=progress,
                        title="ParametricUMAP 2/2" if target is not None else "ParametricUMAP")
        self._finish(net, X, {**info, "warm_epochs": warm.get("epochs", 0)})
        return self
