"""PNG plots of a run's maps: one per map, coloured by label, and a side-by-side grid."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..run import artifacts  # noqa: E402
from ..run.directory import RunDir, atomic_path  # noqa: E402

MAP_TITLES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP", "poincare": "Poincaré disk",
              "param_umap": "parametric UMAP", "param_tsne": "learned t-SNE", "param_poincare": "learned Poincaré disk"}
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
    if figures.get("hierarchy_score") is not None:
        parts.append(f"hierarchy {figures['hierarchy_score']:.2f}")
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


def _tree_groups(run: RunDir, emb) -> list[str | None] | None:
    """What the disk's tree is built over: the labels, else the analysis' k-means clusters when there are some."""
    if emb.labels is not None:
        return emb.labels
    if run.file("analysis.parquet").exists():
        import pyarrow.parquet as pq

        clusters = pq.read_table(run.file("analysis.parquet")).column("kmeans_cluster").to_pylist()
        return [f"cluster {c}" for c in clusters]
    return None


def _drawer(run: RunDir, emb, coords: dict[str, np.ndarray]):
    """draw(ax, name, xy, caption, legend): disk maps with their boundary and class tree, the others flat."""
    from ..maps import MAP_DISTANCES

    groups = _tree_groups(run, emb) if any(m in MAP_DISTANCES for m in coords) else None
    trees: dict[str, tuple] = {}

    def draw(ax, name: str, xy: np.ndarray, caption: str, legend: bool) -> None:
        if name not in MAP_DISTANCES:
            _draw(ax, xy, emb.labels, caption, legend)
            return
        from .disk import plot_disk

        if name not in trees:
            trees[name] = _disk_tree(emb.vectors, xy, groups)
        plot_disk(ax, xy, emb.labels, *trees[name], caption=caption, legend=legend)

    return draw


def _disk_tree(X: np.ndarray, Y: np.ndarray, groups: list[str | None] | None) -> tuple:
    """(tree, node positions on the disk), or (None, None) with fewer than 3 groups to build a tree over."""
    from ..geometry.hierarchy import class_tree, place_on_disk

    rows = [i for i, g in enumerate(groups or []) if g is not None]
    names = [groups[i] for i in rows]
    if len(set(names)) < 3:
        return None, None
    tree = class_tree(X[rows], names)
    return tree, place_on_disk(tree, Y[rows], names)


def plot_run(run: RunDir) -> list[str]:
    """Draw every map of the run; returns the written paths relative to the run directory."""
    emb = artifacts.read_embeddings(run.file("embeddings.parquet"))
    _, coords = artifacts.read_maps(run.file("maps.parquet"))
    metrics = json.loads(run.file("metrics.json").read_text()) if run.file("metrics.json").exists() else {}
    figures = metrics.get("maps", {})
    random_weights = bool(run.manifest.get("random_weights"))
    model = (run.stage("extract") or {}).get("model") or "precomputed embeddings"
    subtitle = f"{model} · {len(emb)} images"
    draw = _drawer(run, emb, coords)
    outputs = []
    for name, xy in coords.items():
        fig, ax = plt.subplots(figsize=(7.5, 6))
        draw(ax, name, xy, figure_caption(name, figures.get(name)), True)
        _stamp(fig, subtitle, random_weights)
        _save(fig, run.file(f"plots/{name}.png"))
        outputs.append(f"plots/{name}.png")
    fig, axes = plt.subplots(1, len(coords), figsize=(5 * len(coords) + 1.5, 5.2), squeeze=False)
    for i, (ax, (name, xy)) in enumerate(zip(axes[0], coords.items(), strict=True)):
        draw(ax, name, xy, figure_caption(name, figures.get(name)), i == len(coords) - 1)
    _stamp(fig, subtitle, random_weights)
    _save(fig, run.file("plots/grid.png"))
    outputs.append("plots/grid.png")
    return outputs


def _stamp(fig, subtitle: str, random_weights: bool) -> None:
    """The model line under the figure, and the random-weights banner over it when it applies."""
    fig.text(0.01, 0.005, subtitle, fontsize=8, color="#555555", ha="left", va="bottom")
    if random_weights:
        fig.suptitle(RANDOM_BANNER, color="#b00020", fontsize=11, fontweight="bold", y=1.06)


def plot_placed(run: RunDir, name: str, xy: np.ndarray, labels: list[str | None] | None) -> str:
    """plots/placed_<name>.png: the run's map in grey and the placed points over it, coloured by label."""
    from ..maps import MAP_DISTANCES

    _, coords = artifacts.read_maps(run.file("maps.parquet"))
    fig, ax = plt.subplots(figsize=(7.5, 6))
    base = coords.get(name, np.zeros((0, 2)))
    ax.scatter(base[:, 0], base[:, 1], s=float(np.clip(3000 / max(len(base), 1), 0.5, 12)), c="#d0d0d0",
               linewidths=0, label=f"run ({len(base)})")
    codes, names, colours = _colours(labels)
    size = float(np.clip(6000 / max(len(xy), 1), 6, 40))
    groups = [(f"placed {n}", codes == i, colours[i]) for i, n in enumerate(names)] if names else []
    groups += [("placed" if not names else "placed, unlabelled", codes < 0 if names else np.ones(len(xy), bool),
                "#4c72b0")]
    for label, mask, colour in groups:
        if mask.any():
            ax.scatter(xy[mask, 0], xy[mask, 1], s=size, color=colour, edgecolors="black", linewidths=0.4,
                       label=f"{label} ({int(mask.sum())})")
    if len(names) <= MAX_LEGEND:
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    ax.set_title(f"{MAP_TITLES.get(name, name)}: {len(xy)} new points placed", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")
    if name in MAP_DISTANCES:
        from matplotlib.patches import Circle

        ax.add_patch(Circle((0, 0), 1.0, fill=False, color="#555555", linewidth=1.0))
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlim(-1.05, 1.05)
        ax.set_ylim(-1.05, 1.05)
    model = (run.stage("extract") or {}).get("model") or "precomputed embeddings"
    _stamp(fig, f"{model} · {len(base)} run images · {len(xy)} placed", bool(run.manifest.get("random_weights")))
    path = f"plots/placed_{name}.png"
    _save(fig, run.file(path))
    return path
