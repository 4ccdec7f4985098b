"""PNG plots of a run's maps: one per map, coloured by label, and a side-by-side grid."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import artifacts  # noqa: E402
from .rundir import RunDir, atomic_path  # noqa: E402

MAP_TITLES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
RANDOM_BANNER = "RANDOM WEIGHTS: untrained backbone, not a real result"
MAX_LEGEND = 20


def _colours(labels: list[str | None] | None) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Label codes, class names in first-seen-sorted order and one colour per class."""
    if labels is None:
        return np.zeros(0, int), [], np.zeros((0, 4))
    names = sorted({lab for lab in labels if lab is not None}, key=_natural)
    codes = np.array([names.index(lab) if lab is not None else -1 for lab in labels])
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20" if len(names) <= 20 else "turbo")
    colours = cmap(np.linspace(0, 1, len(names))) if len(names) > 20 else cmap(np.arange(len(names)))
    return codes, names, colours


def _natural(s: str) -> tuple:
    """Sort "2" before "10" and names alphabetically."""
    return (0, int(s), "") if s.isdigit() else (1, 0, s)


def figure_caption(name: str, figures: dict | None) -> str:
    """The map's title with its key figures (trustworthiness, kNN recall, kNN accuracy)."""
    title = MAP_TITLES.get(name, name)
    if not figures:
        return title
    parts = [f"T {figures['trustworthiness']:.3f}", f"recall {figures['knn_recall']:.2f}"]
    if figures.get("knn_accuracy") is not None:
        parts.append(f"10-NN acc {figures['knn_accuracy']:.2f}")
    parts.append(f"{figures.get('seconds', 0):.1f}s")
    return f"{title}\n" + " · ".join(parts)


def _draw(ax, xy: np.ndarray, labels, caption: str, legend: bool) -> None:
    """Scatter one map on `ax`, coloured by label, with an optional legend of class names."""
    codes, names, colours = _colours(labels)
    size = float(np.clip(3000 / max(len(xy), 1), 0.5, 20))
    if not names:
        ax.scatter(xy[:, 0], xy[:, 1], s=size, c="#4c72b0", linewidths=0, alpha=0.8)
    else:
        if (codes < 0).any():
            ax.scatter(*xy[codes < 0].T, s=size, c="#bbbbbb", linewidths=0, alpha=0.6)
        for i, name in enumerate(names):
            pts = xy[codes == i]
            ax.scatter(pts[:, 0], pts[:, 1], s=size, color=colours[i], linewidths=0, alpha=0.85,
                       label=f"{name} ({len(pts)})")
        if legend and len(names) <= MAX_LEGEND:
            ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=max(1, 6 / size),
                      frameon=False, title="label (count)")
    ax.set_title(caption, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")


def _save(fig, path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_run(run: RunDir) -> list[str]:
    """Draw every map of the run; returns the written paths relative to the run directory."""
    emb = artifacts.read_embeddings(run.file("embeddings.parquet"))
    _, coords = artifacts.read_maps(run.file("maps.parquet"))
    metrics = json.loads(run.file("metrics.json").read_text()) if run.file("metrics.json").exists() else {}
    figures = metrics.get("maps", {})
    random_weights = bool(run.manifest.get("random_weights"))
    model = (run.stage("extract") or {}).get("model") or "precomputed embeddings"
    subtitle = f"{model} · {len(emb)} images"
    outputs = []
    for name, xy in coords.items():
        fig, ax = plt.subplots(figsize=(7.5, 6))
        _draw(ax, xy, emb.labels, figure_caption(name, figures.get(name)), legend=True)
        _stamp(fig, subtitle, random_weights)
        _save(fig, run.file(f"plots/{name}.png"))
        outputs.append(f"plots/{name}.png")
    fig, axes = plt.subplots(1, len(coords), figsize=(5 * len(coords) + 1.5, 5.2), squeeze=False)
    for i, (ax, (name, xy)) in enumerate(zip(axes[0], coords.items(), strict=True)):
        _draw(ax, xy, emb.labels, figure_caption(name, figures.get(name)), legend=i == len(coords) - 1)
    _stamp(fig, subtitle, random_weights)
    _save(fig, run.file("plots/grid.png"))
    outputs.append("plots/grid.png")
    return outputs


def _stamp(fig, subtitle: str, random_weights: bool) -> None:
    """The model line under the figure, and the random-weights banner over it when it applies."""
    fig.text(0.01, 0.005, subtitle, fontsize=8, color="#555555", ha="left", va="bottom")
    if random_weights:
        fig.suptitle(RANDOM_BANNER, color="#b00020", fontsize=11, fontweight="bold", y=1.06)
