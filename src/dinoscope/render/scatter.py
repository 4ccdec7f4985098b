"""Points of one map on a matplotlib axis, coloured by label, and what every figure of a run carries."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..rundir.directory import atomic_path  # noqa: E402

RANDOM_BANNER = "RANDOM WEIGHTS: untrained backbone, not a real result"
MAX_LEGEND = 20


def colours(labels: list[str | None] | None) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Label codes, class names in first-seen-sorted order and one colour per class."""
    if labels is None:
        return np.zeros(0, int), [], np.zeros((0, 4))
    names = sorted({lab for lab in labels if lab is not None}, key=natural)
    codes = np.array([names.index(lab) if lab is not None else -1 for lab in labels])
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20" if len(names) <= 20 else "turbo")
    palette = cmap(np.linspace(0, 1, len(names))) if len(names) > 20 else cmap(np.arange(len(names)))
    return codes, names, palette


def natural(s: str) -> tuple:
    """Sort "2" before "10" and names alphabetically."""
    return (0, int(s), "") if s.isdigit() else (1, 0, s)


def draw_points(ax, xy: np.ndarray, labels, caption: str, legend: bool) -> None:
    """Scatter one map on `ax`, coloured by label, with an optional legend of class names."""
    codes, names, palette = colours(labels)
    size = float(np.clip(3000 / max(len(xy), 1), 0.5, 20))
    if not names:
        ax.scatter(xy[:, 0], xy[:, 1], s=size, c="#4c72b0", linewidths=0, alpha=0.8)
    else:
        if (codes < 0).any():
            ax.scatter(*xy[codes < 0].T, s=size, c="#bbbbbb", linewidths=0, alpha=0.6)
        for i, name in enumerate(names):
            pts = xy[codes == i]
            ax.scatter(pts[:, 0], pts[:, 1], s=size, color=palette[i], linewidths=0, alpha=0.85,
                       label=f"{name} ({len(pts)})")
        if legend and len(names) <= MAX_LEGEND:
            ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=max(1, 6 / size),
                      frameon=False, title="label (count)")
    ax.set_title(caption, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")


def save_figure(fig, path) -> None:
    """Write the figure as a PNG atomically and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def stamp(fig, subtitle: str, random_weights: bool) -> None:
    """The model line under the figure, and the random-weights banner over it when it applies."""
    fig.text(0.01, 0.005, subtitle, fontsize=8, color="#555555", ha="left", va="bottom")
    if random_weights:
        fig.suptitle(RANDOM_BANNER, color="#b00020", fontsize=11, fontweight="bold", y=1.06)
