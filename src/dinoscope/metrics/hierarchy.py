"""How faithfully a Poincaré map shows a hierarchy: the class tree's hierarchy score and superclass accuracy."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from scipy.spatial.distance import squareform
from scipy.stats import spearmanr

from ..checks import as_points
from ..errors import DinoscopeError
from ..geometry import ball
from ..geometry.hierarchy import ClassTree, class_tree, place_on_disk
from .faithfulness import knn_accuracy


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
