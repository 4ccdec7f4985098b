"""t-SNE map by openTSNE: FFT gradients, PCA initialisation, new points placed by `transform`.

Two sources of affinities:

* without a graph, the seeds' recipe: PCA to `pca_dims` dimensions, then openTSNE's own
  (Euclidean) kNN search on those components;
* with the shared graph (`fit(X, knn=graph)`), the affinities come from its first
  3·perplexity neighbours (`affinities.graph_affinities`), i.e. from the full-dimensional embedding
  space under the graph's metric (cosine by default) — the same neighbourhoods the metrics and the
  other maps see, and no second kNN search. The PCA components then only give the initialisation,
  and `transform` finds the neighbours of new points by exact search in that same space.

The schedule (issue #12): the iterations after the early exaggeration are the dearest — the FFT grid
grows with the layout — and the KL divergence flattens long before a fixed count runs out. So both
phases stop on the KL divergence, evaluated every `CHECK_EVERY` iterations (opt-SNE's rules, Belkina
et al. 2019): the early exaggeration ends once the KL's relative decrease per iteration has peaked,
i.e. the clusters have separated (`early_exaggeration_stop`); the rest stops when that relative
decrease falls below `tol`. `n_iter` and `early_exaggeration_iter` are the caps; `n_iter_` and
`early_exaggeration_iter_` the iterations that ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ..checks import check_new_points
from .base import MapEstimator

CHECK_EVERY = 10  # iterations between two evaluations of the KL divergence (the stopping rules' step)


class _KLMonitor:
    """openTSNE callback of one phase: keeps the KL divergence's relative decrease per iteration and says
    when to stop — below `tol` (0: never), or, with `at_peak`, once that decrease has passed its peak."""

    def __init__(self, tol: float, at_peak: bool = False, bar=None, task=None, offset: int = 0):
        self.tol, self.at_peak = tol, at_peak
        self.bar, self.task, self.offset = bar, task, offset
        self.kl = self.rate = None
        self.stopped_at = None  # the callback's iteration that stopped the phase

    def __call__(self, iteration: int, error: float, embedding: np.ndarray) -> bool:
        if self.bar is not None:
            self.bar.update(self.task, completed=self.offset + iteration)
        previous, rate = self.kl, self.rate
        self.kl = float(error)
        if previous is None:
            return False
        self.rate = (previous - self.kl) / (abs(previous) * CHECK_EVERY)
        stop = ((self.at_peak and rate is not None and rate > 0 and self.rate < rate)
                or (self.tol > 0 and self.rate < self.tol))
        if stop:
            self.stopped_at = iteration
        return stop

    def ran(self, n_iter: int) -> int:
        """Gradient steps taken: an interrupt at callback iteration m comes before the m-th step."""
        return n_iter if self.stopped_at is None else self.stopped_at - 1


class TSNEMap(MapEstimator):
    """openTSNE t-SNE with the seeds' settings; reuses the shared kNN graph when given one.

    Parameters
    ----------
    perplexity : float
        t-SNE perplexity: the effective number of neighbours each point attends to.
    pca_dims : int
        PCA dimensions behind the initialisation (and the affinities without a shared graph).
    n_iter : int
        Most iterations after the early exaggeration (all of them with tol=0).
    early_exaggeration_iter : int
        Most iterations of early exaggeration (all of them without early_exaggeration_stop).
    tol : float
        Stop once the KL divergence's relative decrease per iteration falls below this; 0 runs all n_iter.
    early_exaggeration_stop : bool
        End the early exaggeration once the KL divergence's relative decrease per iteration has peaked.
    n_jobs : int
        Threads; 0 uses every core.
    verbose : bool
        Show a progress bar and say when and why the optimisation stopped.
    random_state : int or None
        Seed of the initialisation and the optimiser.
    """

    _parameter_constraints = {
        "perplexity": [Interval(Real, 0, None, closed="neither")],
        "pca_dims": [Interval(Integral, 2, None, closed="left")],
        "n_iter": [Interval(Integral, 50, None, closed="left")],
        "early_exaggeration_iter": [Interval(Integral, 0, None, closed="left")],
        "tol": [Interval(Real, 0, 1, closed="left")],
        "early_exaggeration_stop": ["boolean"],
        "n_jobs": [Integral],
        "verbose": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, perplexity: float = 30, pca_dims: int = 50, n_iter: int = 750,
                 early_exaggeration_iter: int = 250, tol: float = 5e-4, early_exaggeration_stop: bool = False,
                 n_jobs: int = 0, verbose: bool = False, random_state: int | None = 0):
        self.perplexity = perplexity
        self.pca_dims = pca_dims
        self.n_iter = n_iter
        self.early_exaggeration_iter = early_exaggeration_iter
        self.tol = tol
        self.early_exaggeration_stop = early_exaggeration_stop
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state

    def _threads(self) -> int:
        return -1 if self.n_jobs == 0 else self.n_jobs

    def _reduce(self, X: np.ndarray) -> np.ndarray:
        return X if self.pca_ is None else self.pca_.transform(X).astype(np.float32)

    def fit(self, X: object, y: Sequence | None = None, *, knn=None) -> TSNEMap:
        """Embed X; with `knn` (the shared graph of X) the affinities come from it, see the module notes."""
        from openTSNE import TSNE, affinity, initialization
        from sklearn.decomposition import PCA

        from .affinities import graph_affinities

        X = self._check_fit(X, y, knn)
        n, d = X.shape
        self.n_features_in_ = d
        self.pca_ = (PCA(min(self.pca_dims, n), random_state=self.random_state).fit(X)
                     if d > self.pca_dims else None)
        Z = self._reduce(X)
        if knn is None:
            aff = affinity.PerplexityBasedNN(Z, perplexity=min(self.perplexity, (n - 1) / 3),
                                             n_jobs=self._threads(), random_state=self.random_state)
        else:
            aff = graph_affinities(knn, X, self.perplexity, self._threads())
        self.graph_based_ = knn is not None
        init = initialization.pca(Z, random_state=self.random_state)
        tsne = TSNE(n_iter=self.n_iter, early_exaggeration_iter=self.early_exaggeration_iter,
                    negative_gradient_method="fft", n_jobs=self._threads(), random_state=self.random_state)
        embedding = tsne.prepare_initial(affinities=aff, initialization=init)
        self.tsne_embedding_ = self._optimize(embedding, tsne)
        self.embedding_ = np.asarray(self.tsne_embedding_, dtype=np.float32)
        return self

    def _optimize(self, embedding, tsne):
        """openTSNE's two phases (exaggerated, then not), each cut short by its stopping rule."""
        from ..console import progress_bar, say

        total = self.early_exaggeration_iter + self.n_iter
        with progress_bar("t-SNE", enabled=self.verbose) as bar:
            task = bar.add_task("t-SNE", total=total)
            early = _KLMonitor(0.0, at_peak=self.early_exaggeration_stop, bar=bar, task=task)
            if self.early_exaggeration_iter:
                embedding.optimize(self.early_exaggeration_iter, exaggeration=tsne.early_exaggeration,
                                   momentum=tsne.initial_momentum, inplace=True, callbacks=[early],
                                   callbacks_every_iters=CHECK_EVERY)
            self.early_exaggeration_iter_ = early.ran(self.early_exaggeration_iter)
            late = _KLMonitor(self.tol, bar=bar, task=task, offset=self.early_exaggeration_iter_)
            embedding.optimize(self.n_iter, exaggeration=tsne.exaggeration, momentum=tsne.final_momentum,
                               inplace=True, callbacks=[late], callbacks_every_iters=CHECK_EVERY)
            self.n_iter_ = late.ran(self.n_iter)
        self.kl_divergence_ = float(embedding.kl_divergence)
        if self.verbose:
            ee = (f"early exaggeration ended at its peak after {self.early_exaggeration_iter_}"
                  if early.stopped_at else f"early exaggeration ran all {self.early_exaggeration_iter_}")
            rest = (f"stopped after {self.n_iter_} of {self.n_iter} (relative KL decrease per iteration "
                    f"{late.rate:.1e} < tol {self.tol:g})" if late.stopped_at else f"ran all {self.n_iter}")
            say("t-SNE", f"{ee} iterations; then {rest} iterations; KL divergence {self.kl_divergence_:.4f}")
        return embedding

    def transform(self, X: object) -> np.ndarray:
        """Place new points into the fitted map (openTSNE's optimisation against the fixed reference)."""
        check_is_fitted(self, "tsne_embedding_")
        X = check_new_points(X, self.n_features_in_)
        Z = X if self.graph_based_ else self._reduce(X)
        return np.asarray(self.tsne_embedding_.transform(Z), dtype=np.float32)
