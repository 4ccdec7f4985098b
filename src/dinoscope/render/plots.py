"""PNG plots of a run's maps: one per map, coloured by label, a side-by-side grid, and placed points."""

from __future__ import annotations

import numpy as np

from .. import maps as registry
from ..rundir import artifacts
from ..rundir.directory import RunDir
from .disk import frame_disk, plot_disk
from .scatter import MAX_LEGEND, colours, draw_points, plt, save_figure, stamp


def figure_caption(name: str, figures: dict | None) -> str:
    """The map's title with its key figures (trustworthiness, kNN recall, kNN accuracy)."""
    title = registry.title(name)
    if not figures:
        return title
    parts = [f"T {figures['trustworthiness']:.3f}", f"recall {figures['knn_recall']:.2f}"]
    if figures.get("knn_accuracy") is not None:
        parts.append(f"10-NN acc {figures['knn_accuracy']:.2f}")
    if figures.get("hierarchy_score") is not None:
        parts.append(f"hierarchy {figures['hierarchy_score']:.2f}")
    parts.append(f"{figures.get('seconds', 0):.1f}s")
    return f"{title}\n" + " · ".join(parts)


def tree_groups(run: RunDir, labels: list[str | None] | None) -> list[str | None] | None:
    """What a disk map's tree is built over: the labels, else the analysis' k-means clusters when there are some."""
    if labels is not None:
        return labels
    if run.file(artifacts.ANALYSIS).exists():
        import pyarrow.parquet as pq

        clusters = pq.read_table(run.file(artifacts.ANALYSIS)).column("kmeans_cluster").to_pylist()
        return [f"cluster {c}" for c in clusters]
    return None


def _drawer(run: RunDir, emb: artifacts.Embeddings, coords: dict[str, np.ndarray]):
    """draw(ax, name, xy, caption, legend): disk maps with their boundary and class tree, the others flat."""
    from ..geometry.hierarchy import disk_tree

    groups = tree_groups(run, emb.labels) if any(registry.distance(m) == "poincare" for m in coords) else None
    trees: dict[str, tuple] = {}

    def draw(ax, name: str, xy: np.ndarray, caption: str, legend: bool) -> None:
        if registry.distance(name) != "poincare":
            draw_points(ax, xy, emb.labels, caption, legend)
            return
        if name not in trees:
            trees[name] = disk_tree(emb.vectors, xy, groups) or (None, None)
        plot_disk(ax, xy, emb.labels, *trees[name], caption=caption, legend=legend)

    return draw


def _subtitle(run: RunDir) -> str:
    """Which model made the run's embeddings."""
    return (run.stage("extract") or {}).get("model") or "precomputed embeddings"


def plot_run(run: RunDir) -> list[str]:
    """Draw every map of the run; returns the written paths relative to the run directory."""
    emb = artifacts.read_embeddings(run.file(artifacts.EMBEDDINGS))
    _, coords = artifacts.read_maps(run.file(artifacts.MAPS))
    figures = artifacts.read_json(run, artifacts.METRICS).get("maps", {})
    random_weights = bool(run.manifest.get("random_weights"))
    subtitle = f"{_subtitle(run)} · {len(emb)} images"
    draw = _drawer(run, emb, coords)
    outputs = []
    for name, xy in coords.items():
        fig, ax = plt.subplots(figsize=(7.5, 6))
        draw(ax, name, xy, figure_caption(name, figures.get(name)), True)
        stamp(fig, subtitle, random_weights)
        save_figure(fig, run.file(artifacts.plot_file(name)))
        outputs.append(artifacts.plot_file(name))
    fig, axes = plt.subplots(1, len(coords), figsize=(5 * len(coords) + 1.5, 5.2), squeeze=False)
    for i, (ax, (name, xy)) in enumerate(zip(axes[0], coords.items(), strict=True)):
        draw(ax, name, xy, figure_caption(name, figures.get(name)), i == len(coords) - 1)
    stamp(fig, subtitle, random_weights)
    save_figure(fig, run.file(artifacts.plot_file("grid")))
    outputs.append(artifacts.plot_file("grid"))
    return outputs


def plot_placed(run: RunDir, name: str, xy: np.ndarray, labels: list[str | None] | None) -> str:
    """plots/placed_<name>.png: the run's map in grey and the placed points over it, coloured by label."""
    _, coords = artifacts.read_maps(run.file(artifacts.MAPS))
    fig, ax = plt.subplots(figsize=(7.5, 6))
    base = coords.get(name, np.zeros((0, 2)))
    ax.scatter(base[:, 0], base[:, 1], s=float(np.clip(3000 / max(len(base), 1), 0.5, 12)), c="#d0d0d0",
               linewidths=0, label=f"run ({len(base)})")
    codes, names, palette = colours(labels)
    size = float(np.clip(6000 / max(len(xy), 1), 6, 40))
    groups = [(f"placed {n}", codes == i, palette[i]) for i, n in enumerate(names)] if names else []
    groups += [("placed" if not names else "placed, unlabelled", codes < 0 if names else np.ones(len(xy), bool),
                "#4c72b0")]
    for label, mask, colour in groups:
        if mask.any():
            ax.scatter(xy[mask, 0], xy[mask, 1], s=size, color=colour, edgecolors="black", linewidths=0.4,
                       label=f"{label} ({int(mask.sum())})")
    if len(names) <= MAX_LEGEND:
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    ax.set_title(f"{registry.title(name)}: {len(xy)} new points placed", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_aspect("equal", adjustable="datalim")
    if registry.distance(name) == "poincare":
        frame_disk(ax)
    stamp(fig, f"{_subtitle(run)} · {len(base)} run images · {len(xy)} placed",
          bool(run.manifest.get("random_weights")))
    path = artifacts.plot_file(f"placed_{name}")
    save_figure(fig, run.file(path))
    return path
