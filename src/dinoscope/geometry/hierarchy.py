"""A tree over the classes (or any grouping) and how faithfully a Poincaré map shows it.

The tree is average linkage (scipy) on the groups' centroids in the embedding space under cosine
distance. Nodes are numbered as scipy numbers them: leaves 0..L-1 (the groups, sorted by name),
then one internal node per merge, the root last. On the disk a leaf sits at the hyperbolic mean
of its points and an internal node at the hyperbolic mean of all points under it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import cophenet, linkage
from scipy.spatial.distance import squareform

from ..checks import as_points
from ..errors import DinoscopeError
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


TREE_SAMPLE = 1000  # points per group behind a drawn tree's node positions (iterative means: a sample is plenty)


def disk_tree(X: np.ndarray, Y: np.ndarray, groups: Sequence | None, *, sample: int = TREE_SAMPLE,
              seed: int = 0) -> tuple[ClassTree, np.ndarray] | None:
    """The tree drawn on a disk map, for the plots and the viewer alike: (tree over the groups, node positions),
    or None with fewer than 2 groups. Each group is represented by a seeded sample of at most `sample` points."""
    if groups is None:
        return None
    known = np.flatnonzero([g is not None for g in groups])
    names = np.array([str(groups[r]) for r in known], dtype=object)
    uniq, inverse = np.unique(names, return_inverse=True)
    if len(uniq) < 2:
        return None
    rng = np.random.default_rng(seed)
    per_group = np.split(known[np.argsort(inverse, kind="stable")], np.cumsum(np.bincount(inverse))[:-1])
    rows = np.sort(np.concatenate([r if len(r) <= sample else rng.choice(r, sample, replace=False)
                                   for r in per_group]))
    picked = [str(groups[r]) for r in rows]
    tree = class_tree(np.asarray(X)[rows], picked)
    return tree, place_on_disk(tree, np.asarray(Y)[rows], picked)

