"""A tree over the classes (or any grouping) and how faithfully a Poincaré map shows it.

The tree is average linkage (scipy) on the groups' centroids in the embedding space under cosine
distance. Nodes are numbered as scipy numbers them: leaves 0..L-1 (the groups, sorted by name),
then one internal node per merge, the root last. On the disk a leaf sits at the hyperbolic mean
of its points and an internal node at the hyperbolic mean of all points under it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.cluster.hierarchy import cophenet, linkage
from scipy.spatial.distance import squareform
from scipy.stats import spearmanr

from ..checks import as_points
from ..errors import DinoscopeError
from ..metrics.faithfulness import knn_accuracy
from . import ball


@dataclass
class ClassTree:
    """A binary tree over named groups: leaves first, then internal nodes in merge order (root last)."""

    leaves: list[str]  # group names, node i for i < n_leaves
    children: np.ndarray  # (n_leaves - 1, 2) children of internal node n_leaves + t
    heights: np.ndarray  # (n_nodes,) merge distance of each node, 0 for leaves
    cophenetic: np.ndarray  # (n_leaves, n_leaves) height of the lowest common ancestor of two leaves

    @property
    def n_leaves(self) -> int:
        return len(self.leaves)

    @property
    def n_nodes(self) -> int:
        return len(self.heights)

    @property
    def parent(self) -> np.ndarray:
        """(n_nodes,) parent of each node, -1 for the root."""
        parent = np.full(self.n_nodes, -1, dtype=np.int64)
        for t, pair in enumerate(self.children):
            parent[pair] = self.n_leaves + t
        return parent

    @property
    def edges(self) -> list[tuple[int, int]]:
        """(parent, child) for every edge of the tree."""
        return [(self.n_leaves + t, int(c)) for t, pair in enumerate(self.children) for c in pair]

    def members(self, node: int) -> list[int]:
        """The leaves under `node`."""
        if node < self.n_leaves:
            return [node]
        return [leaf for child in self.children[node - self.n_leaves] for leaf in self.members(int(child))]


def _group_rows(groups: Sequence, n: int) -> tuple[list[str], list[np.ndarray]]:
    """Sorted group names (as strings) and the rows of each; None entries belong to no group."""
    if len(groups) != n:
        raise DinoscopeError(f"{len(groups)} group labels for {n} points")
    names = np.array(["" if g is None else str(g) for g in groups], dtype=object)
    known = np.array([g is not None for g in groups])
    leaves = sorted(set(names[known]))
    return leaves, [np.flatnonzero(known & (names == leaf)) for leaf in leaves]


def class_tree(X: object, groups: Sequence) -> ClassTree:
    """Average-linkage tree (cosine) over the centroids of X's groups (classes, or clusters without labels)."""
    X = as_points(X, min_rows=2)
    leaves, rows = _group_rows(groups, len(X))
    if len(leaves) < 2:
        raise DinoscopeError(f"a tree needs at least 2 groups, got {len(leaves)}")
    centroids = np.stack([X[r].astype(np.float64).mean(axis=0) for r in rows])
    Z = linkage(centroids, method="average", metric="cosine")
    heights = np.concatenate([np.zeros(len(leaves)), Z[:, 2]])
    return ClassTree(leaves, Z[:, :2].astype(np.int64), heights, squareform(cophenet(Z)))


def place_on_disk(tree: ClassTree, Y: object, groups: Sequence, leaves_only: bool = False) -> np.ndarray:
    """(n_nodes, 2) disk positions, each node at the hyperbolic mean of its leaves' points ((n_leaves, 2) if asked)."""
    Y = as_points(Y, "Y", min_rows=1).astype(np.float64)
    leaves, rows = _group_rows(groups, len(Y))
    if leaves != tree.leaves:
        raise DinoscopeError("the groups do not match the tree's leaves; build the tree from the same labels")
    return np.stack([ball.mean(Y[np.concatenate([rows[leaf] for leaf in tree.members(node)])])
                     for node in range(tree.n_leaves if leaves_only else tree.n_nodes)])


def hierarchy_score(tree: ClassTree, Y: object, groups: Sequence) -> float:
    """Spearman correlation of Poincaré distances between class centres and the tree's cophenetic distances."""
    if tree.n_leaves < 3:
        raise DinoscopeError("a hierarchy score needs at least 3 groups")
    centres = place_on_disk(tree, Y, groups, leaves_only=True)
    D = ball.pairwise_distances(centres, centres)
    return float(spearmanr(squareform(D, checks=False), squareform(tree.cophenetic, checks=False)).statistic)


def to_superclasses(labels: Sequence, superclasses: Mapping) -> list[str | None]:
    """Each label replaced by its superclass (None stays None); every class must be in the mapping."""
    missing = sorted({str(lab) for lab in labels if lab is not None} - {str(k) for k in superclasses})
    if missing:
        raise DinoscopeError(f"classes without a superclass: {', '.join(missing[:5])}; add them to the mapping")
    lookup = {str(k): str(v) for k, v in superclasses.items()}
    return [None if lab is None else lookup[str(lab)] for lab in labels]


def coarse_knn_accuracy(Y: object, coarse_labels: Sequence, k: int = 10, sample: int = 5000, seed: int = 0) -> float:
    """k-NN accuracy of the superclass labels under Poincaré distances (labelled points, seeded subsample)."""
    Y = as_points(Y, "Y").astype(np.float64)
    if len(coarse_labels) != len(Y):
        raise DinoscopeError(f"{len(coarse_labels)} labels for {len(Y)} points")
    rows = np.flatnonzero([lab is not None for lab in coarse_labels])
    if len(rows) > sample:
        rows = np.sort(np.random.default_rng(seed).choice(rows, sample, replace=False))
    y = np.array([str(coarse_labels[i]) for i in rows])
    if len(set(y)) < 2 or len(rows) <= k:
        raise DinoscopeError("coarse kNN accuracy needs at least two superclasses and more than k labelled points")
    return knn_accuracy(ball.pairwise_distances(Y[rows], Y[rows]), y, k, seed=seed)


def read_superclasses(path: str | os.PathLike) -> dict[str, str]:
    """A class → superclass mapping from a YAML or JSON file (`--superclasses`)."""
    import yaml

    try:
        mapping = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DinoscopeError(f"cannot read superclasses {path}: {exc}".splitlines()[0]) from None
    if not isinstance(mapping, dict) or not mapping:
        raise DinoscopeError(f"{path} must map each class to its superclass, e.g. 'cat: animal'")
    return {str(k): str(v) for k, v in mapping.items()}


def hierarchy_figures(X: object, Y: object, labels: Sequence, superclasses: Mapping | None = None, *, k: int = 10,
                      sample: int = 5000, seed: int = 0) -> dict[str, float | None]:
    """The disk's extra figures: hierarchy score of the class tree, and coarse kNN accuracy given superclasses."""
    rows = np.flatnonzero([lab is not None for lab in labels])
    groups = [str(labels[i]) for i in rows]
    Xl, Yl = np.asarray(X)[rows], np.asarray(Y)[rows]
    out: dict[str, float | None] = {"hierarchy_score": None}
    if len(set(groups)) >= 3:
        out["hierarchy_score"] = hierarchy_score(class_tree(Xl, groups), Yl, groups)
    if superclasses is not None:
        out["coarse_knn_accuracy"] = coarse_knn_accuracy(Yl, to_superclasses(groups, superclasses), k=k,
                                                         sample=sample, seed=seed)
    return out
