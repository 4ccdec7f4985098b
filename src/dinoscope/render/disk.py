"""The Poincaré disk on a matplotlib axis: boundary circle, points by label, a class tree drawn with geodesics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.patches import Circle

from ..geometry.geodesics import geodesic_points
from ..geometry.hierarchy import ClassTree
from .scatter import colours, draw_points


def frame_disk(ax) -> None:
    """The unit circle and square axes around it."""
    ax.add_patch(Circle((0, 0), 1.0, fill=False, color="#555555", linewidth=1.0))
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)


def plot_disk(ax, Y: np.ndarray, labels: Sequence | None, tree: ClassTree | None = None,
              node_positions: np.ndarray | None = None, caption: str = "", legend: bool = True) -> None:
    """Draw a Poincaré map on `ax`: boundary, points coloured by label, tree edges as geodesics, class names."""
    Y = np.asarray(Y, dtype=np.float64)
    labels = None if labels is None else [None if lab is None else str(lab) for lab in labels]
    draw_points(ax, Y, labels, caption, legend=legend)
    if tree is not None and node_positions is not None:
        _, names, palette = colours(labels)
        for parent, child in tree.edges:
            xy = geodesic_points(node_positions[parent], node_positions[child])
            ax.plot(xy[:, 0], xy[:, 1], color="#333333", linewidth=0.8, alpha=0.8)
        for leaf, name in enumerate(tree.leaves):
            colour = palette[names.index(name)] if name in names else "#333333"
            ax.text(*node_positions[leaf], name, fontsize=8, ha="center", va="center", color="black",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec=colour, alpha=0.8))
    frame_disk(ax)
