"""Label mistakes: images whose nearest neighbours mostly carry another label (a kNN estimate of p(label))."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import DinoscopeError
from ..neighbors import KNNGraph


def encode_labels(labels: Sequence[str | None]) -> tuple[np.ndarray, list[str]]:
    """Integer codes per image (-1 where the label is missing) and the sorted class names."""
    classes = sorted({str(x) for x in labels if x is not None})
    index = {c: i for i, c in enumerate(classes)}
    return np.array([-1 if x is None else index[str(x)] for x in labels], dtype=np.int64), classes


def neighbor_label_probs(graph: KNNGraph, codes: np.ndarray, n_classes: int, k: int = 20,
                         prior: float = 1.0) -> np.ndarray:
    """(n, classes) p(class | image) from its k labelled neighbours, similarity-weighted, smoothed by the class prior.

    The image's own label never votes (the graph excludes self), so this is an out-of-sample estimate,
    as cleanlab needs; `prior` is the weight of the class frequencies, so a lone neighbour cannot reach p = 1.
    """
    head = graph.head(k)
    votes = codes[head.indices]
    weights = np.clip(1.0 - head.distances, 1e-6, None) if graph.metric == "cosine" else np.ones(votes.shape)
    weights = np.where(votes >= 0, weights, 0.0)
    counts = np.zeros((len(codes), n_classes))
    np.add.at(counts, (np.repeat(np.arange(len(codes)), k), votes.ravel().clip(0)), weights.ravel())
    freq = np.bincount(codes[codes >= 0], minlength=n_classes) / max(1, int((codes >= 0).sum()))
    return (counts + prior * freq) / (counts.sum(axis=1, keepdims=True) + prior)


def label_issues(graph: KNNGraph, labels: Sequence[str | None], k: int = 20) -> tuple[np.ndarray, list[str | None]]:
    """Per image: score 1 - p(given label | neighbours) (NaN when unlabelled; higher = likelier wrong) and the
    suggested label (the neighbours' weighted majority)."""
    if len(labels) != len(graph):
        raise DinoscopeError(f"got {len(labels)} labels for a graph of {len(graph)} images")
    codes, classes = encode_labels(labels)
    if len(classes) < 2:
        raise DinoscopeError(f"label issues need at least two classes, found {len(classes)}")
    probs = neighbor_label_probs(graph, codes, len(classes), k)
    given = np.take_along_axis(probs, codes.clip(0)[:, None], axis=1)[:, 0]
    scores = np.where(codes >= 0, 1.0 - given, np.nan).astype(np.float32)
    suggested = [classes[c] for c in probs.argmax(axis=1)]
    return scores, suggested
