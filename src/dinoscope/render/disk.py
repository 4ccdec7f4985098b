"""The Poincaré disk on a matplotlib axis: boundary circle, points by label, a class tree drawn with geodesics.

A geodesic of the disk is an arc of the circle through both points that meets the boundary at right
angles (its centre c and radius r satisfy |c|² = r² + 1), or a diameter when the points are collinear
with the centre.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.patches import Circle

from ..geometry.hierarchy import ClassTree
from .plots import _colours, _draw

_COLLINEAR = 1e-9  # |p × q| below this: the geodesic is a straight line through the centre


def geodesic_circle(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Centre and radius of the circle orthogonal to the boundary through p and q; None for a diameter."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    cross = p[0] * q[1] - p[1] * q[0]
    if abs(cross) < _COLLINEAR:
        return None
    # orthogonality |c|² = r² + 1 and |c - x|² = r² give 2 c·x = 1 + |x|² for x = p, q
    c = np.linalg.solve(2 * np.stack([p, q]), np.array([1 + p @ p, 1 + q @ q]))
    return c, float(np.sqrt(c @ c - 1))


def geodesic_points(p: np.ndarray, q: np.ndarray, n: int = 64) -> np.ndarray:
    """(n, 2) points along the geodesic from p to q: the short arc of `geodesic_circle`, or a segment."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    t = np.linspace(0.0, 1.0, n)[:, None]
    circle = geodesic_circle(p, q)
    if circle is None:
        return p + t * (q - p)
    c, r = circle
    a, b = np.arctan2(*(p - c)[::-1]), np.arctan2(*(q - c)[::-1])
    sweep = (b - a + np.pi) % (2 * np.pi) - np.pi  # the arc inside the disk spans less than half a turn
    angles = a + t[:, 0] * sweep
    return c + r * np.column_stack([np.cos(angles), np.sin(angles)])


def plot_disk(ax, Y: np.ndarray, labels: Sequence | None, tree: ClassTree | None = None,
              node_positions: np.ndarray | None = None, caption: str = "", legend: bool = True) -> None:
    """Draw a Poincaré map on `ax`: boundary, points coloured as in `plots`, tree edges as geodesics, class names."""
    Y = np.asarray(Y, dtype=np.float64)
    labels = None if labels is None else [None if lab is None else str(lab) for lab in labels]
    _draw(ax, Y, labels, caption, legend=legend)
    ax.add_patch(Circle((0, 0), 1.0, fill=False, color="#555555", linewidth=1.0))
    if tree is not None and node_positions is not None:
        _, names, colours = _colours(labels)
        for parent, child in tree.edges:
            xy = geodesic_points(node_positions[parent], node_positions[child])
            ax.plot(xy[:, 0], xy[:, 1], color="#333333", linewidth=0.8, alpha=0.8)
        for leaf, name in enumerate(tree.leaves):
            colour = colours[names.index(name)] if name in names else "#333333"
            ax.text(*node_positions[leaf], name, fontsize=8, ha="center", va="center", color="black",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec=colour, alpha=0.8))
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
