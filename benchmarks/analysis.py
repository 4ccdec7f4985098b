"""dinoscope's analyses on two real sets with planted truth, beside FiftyOne Brain's methods on the same vectors.

scikit-learn's 1,797 digits and 3,000 Fashion-MNIST images (both upscaled to 64 px) get planted: near-duplicate
copies of 5% of the images (resized down and up, re-compressed as JPEG at quality 55-65, shifted by one pixel,
cropped by one pixel on one side, or brightened / darkened by 20%), labels flipped on another 5%, and
3% out-of-distribution images (uniform noise, letters drawn with PIL, crops of scikit-learn's sample photos).
They are embedded two ways, both offline: raw pixels, and a random-weight DINO ViT-S/16 at 32 px input (no trained
weights ship with a dependency, so its figures say how the method behaves on a weak representation).

Figures: duplicate pair precision/recall (planted copy <-> original, every pair of a reported group counted) of
dinoscope's detector (exact / perceptual-hash / semantic pairs, thresholds set from the data), per kind and per
planted transformation, beside its former fixed cosine threshold and FiftyOne's greedy `find_duplicates` at the
same cosine thresholds; outlier AUROC of our k-th neighbour distance
and LOF against FiftyOne's uniqueness (weights 0.6/0.3/0.1 over the 3 nearest distances, scaled to [0, 1]);
label-issue average precision for the flipped labels; NMI/ARI of HDBSCAN (5-D UMAP) and k-means on the clean
digits beside k-means on raw pixels (the floor); search recall of the approximate index.

    python benchmarks/analysis.py                     # both sets, both representations, ~4 minutes on 2 cores
    python benchmarks/analysis.py --search-n 300000   # a bigger synthetic set for the approximate index
    python benchmarks/analysis.py --features pixels --cluster-n 70000  # + clustering time/quality on Fashion-MNIST
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from sklearn.datasets import load_digits, load_sample_images
from sklearn.metrics import average_precision_score, roc_auc_score

from dinoscope.analysis import (
    KINDS as DUPLICATE_KINDS,
)
from dinoscope.analysis import (
    SimilarityIndex,
    analyze,
    cluster_agreement,
    duplicate_pairs,
    group_labels,
    hdbscan_clusters,
    kmeans_clusters,
    kth_neighbor_distance,
    label_issues,
    local_outlier_factor,
    reduce_for_clustering,
    similar_pairs,
)
from dinoscope.analysis.clusters import clustering_epochs
from dinoscope.analysis.similarity import normalize
from dinoscope.neighbors import KNNGraph, knn_graph
from dinoscope.sources.memory import in_memory

from _common import FASHION_MNIST, add_fashion_mnist, add_seed, load_fashion_mnist, make_parser, timed

SIZE = 64
THRESHOLDS = (0.99, 0.997, 0.999)
KINDS = ("resize", "jpeg", "shift", "crop", "brightness")  # the planted transformations, in turn
FASHION_N = 3000


def digit_images(size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The digits as (n, size, size, 3) uint8, upscaled bicubically, and their labels."""
    bunch = load_digits()
    grey = np.round(bunch.images * (255 / 16)).astype(np.uint8)
    up = [np.asarray(Image.fromarray(g).resize((size, size), Image.Resampling.BICUBIC)) for g in grey]
    return np.repeat(np.stack(up)[..., None], 3, axis=-1), bunch.target


def fashion_images(folder: Path, n: int, seed: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """n Fashion-MNIST images as (n, size, size, 3) uint8, upscaled bicubically, and their labels."""
    X, y = load_fashion_mnist(folder, n, seed)
    grey = X.reshape(-1, 28, 28).astype(np.uint8)
    up = [np.asarray(Image.fromarray(g).resize((size, size), Image.Resampling.BICUBIC)) for g in grey]
    return np.repeat(np.stack(up)[..., None], 3, axis=-1), y.astype(np.int64)


def near_copy(image: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A resized (down and up), JPEG re-compressed, one-pixel shifted, slightly cropped or brightened copy of a
    (size, size, 3) image."""
    img = Image.fromarray(image)
    if kind == "resize":
        small = int(rng.integers(36, 49))
        return np.asarray(img.resize((small, small), Image.Resampling.BILINEAR).resize((SIZE, SIZE)))
    if kind == "jpeg":
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(rng.integers(55, 66)))
        return np.asarray(Image.open(buf).convert("RGB"))
    if kind == "shift":  # by one pixel, the edge repeated into the gap
        dy, dx = ((0, 1), (1, 0), (0, -1), (-1, 0))[rng.integers(0, 4)]
        padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
        return padded[1 + dy:1 + dy + SIZE, 1 + dx:1 + dx + SIZE]
    if kind == "brightness":
        return np.clip(image * float(rng.choice([0.8, 1.2])), 0, 255).astype(np.uint8)
    left, top, right, bottom = np.eye(4, dtype=int)[rng.integers(0, 4)]  # one pixel off one side
    return np.asarray(img.crop((left, top, SIZE - right, SIZE - bottom)).resize((SIZE, SIZE)))


def ood_images(n: int, rng: np.random.Generator) -> np.ndarray:
    """n out-of-distribution images: uniform noise, letters drawn with PIL, crops of the sample photos."""
    photos = load_sample_images().images
    font = ImageFont.load_default(size=52)
    out = []
    for i in range(n):
        if i % 3 == 0:
            out.append(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
        elif i % 3 == 1:
            canvas = Image.new("RGB", (SIZE, SIZE), "black")
            ImageDraw.Draw(canvas).text((12, 2), "ABEFGHKMNPRTWXYZ"[i % 16], fill="white", font=font)
            out.append(np.asarray(canvas))
        else:
            photo = photos[i % len(photos)]
            y, x = rng.integers(0, photo.shape[0] - 128), rng.integers(0, photo.shape[1] - 128)
            out.append(np.asarray(Image.fromarray(photo[y:y + 128, x:x + 128]).resize((SIZE, SIZE))))
    return np.stack(out)


def planted(seed: int, dup_frac: float = 0.05, flip_frac: float = 0.05, ood_frac: float = 0.03,
            base: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """A set (digits unless `base` gives images and labels) plus planted copies, flipped labels and OOD images,
    with the truth about each."""
    rng = np.random.default_rng(seed)
    images, truth = base if base is not None else digit_images()
    n = len(images)
    chosen = rng.permutation(n)
    originals = np.sort(chosen[:int(dup_frac * n)])
    flipped = np.sort(chosen[int(dup_frac * n):int((dup_frac + flip_frac) * n)])
    copies = np.stack([near_copy(images[i], KINDS[j % len(KINDS)], rng) for j, i in enumerate(originals)])
    ood = ood_images(int(ood_frac * n), rng)
    given = truth.copy()
    given[flipped] = (truth[flipped] + rng.integers(1, 10, len(flipped))) % 10
    all_images = np.concatenate([images, copies, ood])
    n_all = len(all_images)
    labels = np.concatenate([given, given[originals], rng.integers(0, 10, len(ood))])
    dup_pairs = {(int(o), n + j) for j, o in enumerate(originals)}
    first_ood, drawn = n + len(copies), {}
    for j, image in enumerate(ood):  # the same letter drawn twice is an exact duplicate too, and counts as one
        drawn.setdefault(image.tobytes(), []).append(first_ood + j)
    dup_pairs |= {(a, b) for same in drawn.values() for x, a in enumerate(same) for b in same[x + 1:]}
    return {
        "images": all_images,
        "labels": [str(x) for x in labels],
        "is_flipped": np.isin(np.arange(n_all), flipped),
        "is_ood": np.arange(n_all) >= n + len(copies),
        "dup_pairs": dup_pairs,
        "dup_kind": {(int(o), n + j): KINDS[j % len(KINDS)] for j, o in enumerate(originals)},
        "n_digits": n,
        "clean_truth": truth,
    }


def embed(images: np.ndarray, features: str) -> np.ndarray:
    """Raw pixels (grey, flattened) or a random-weight DINO ViT-S/16 at 32 px input through dinoscope.embed.extract."""
    if features == "pixels":
        return images[..., 0].reshape(len(images), -1).astype(np.float32)
    import torch

    from dinoscope.embed.backbones import build_backbone
    from dinoscope.embed.extract import extract

    torch.manual_seed(0)  # the random weights, so that the vit-random rows repeat
    backbone = build_backbone("dino-vits16", random_weights=True, resolution=32)
    dataset = in_memory("bench", images, None, None, None)
    with tempfile.TemporaryDirectory() as tmp:
        return extract(dataset, backbone, Path(tmp), batch_size=256, progress=False).embeddings


def pair_scores(found: set[tuple[int, int]], truth: set[tuple[int, int]]) -> tuple[float, float]:
    """Precision and recall of found pairs (i < j) against the planted ones."""
    hits = len(found & truth)
    return hits / max(1, len(found)), hits / len(truth)


def group_pairs(groups: np.ndarray) -> set[tuple[int, int]]:
    """Every pair of images sharing a group: what a user reviewing the groups sees as duplicates."""
    members: dict[int, list[int]] = {}
    for i in np.flatnonzero(groups >= 0):
        members.setdefault(int(groups[i]), []).append(int(i))
    return {(a, b) for m in members.values() for x, a in enumerate(m) for b in m[x + 1:]}


def fiftyone_duplicates(graph: KNNGraph, threshold: float) -> set[tuple[int, int]]:
    """FiftyOne Brain's `find_duplicates(thresh=1 - threshold)`: in order, each image not yet marked claims its
    unmarked neighbours within the cosine distance as its duplicates."""
    marked: set[int] = set()
    pairs = set()
    for i in range(len(graph)):
        if i in marked:
            continue
        close = graph.indices[i][(1.0 - graph.distances[i]) >= threshold]
        for j in (int(j) for j in close if j not in marked and j != i):
            marked.add(j)
            pairs.add((min(i, j), max(i, j)))
        marked.add(i)
    return pairs


def fiftyone_uniqueness(graph: KNNGraph) -> np.ndarray:
    """FiftyOne Brain's uniqueness: 0.6/0.3/0.1-weighted distances to the 3 nearest neighbours, scaled to [0, 1]."""
    score = graph.distances[:, :3] @ np.array([0.6, 0.3, 0.1])
    return score / score.max()


def duplicate_rows(vectors: np.ndarray, graph: KNNGraph, data: dict) -> list[tuple[str, str]]:
    """Pair precision/recall of the detector (overall, per kind, per planted transformation), of its former fixed
    cosine threshold and of FiftyOne's at each threshold."""
    from dinoscope.hashing import image_hashes

    truth = data["dup_pairs"]
    hashes, seconds = timed(lambda: [image_hashes(x) for x in data["images"]])
    (pairs, kinds, _), search = timed(lambda: duplicate_pairs(vectors, graph, [h for h, _ in hashes],
                                                              [p for _, p in hashes]))
    found = group_pairs(group_labels(pairs, len(graph)))
    p, r = pair_scores(found, truth)
    rows = [("image hashes (exact + perceptual) ms/image; duplicate search s", f"{seconds / len(hashes) * 1e3:.2f}; "
             f"{search:.2f}"),
            ("duplicates P/R: dinoscope, set from the data (all kinds)", f"{p:.3f}/{r:.3f} ({len(found)} pairs)")]
    by_kind = []
    for k, name in enumerate(DUPLICATE_KINDS):
        mine = {tuple(x) for x in pairs[kinds == k].tolist()}
        by_kind.append(f"{name} {len(mine & truth)}/{len(mine)}")
    rows.append(("  pairs by kind: true/found", ", ".join(by_kind)))
    per = [f"{t} {sum(1 for q, s in data['dup_kind'].items() if s == t and q in found)}/"
           f"{sum(1 for s in data['dup_kind'].values() if s == t)}" for t in KINDS]
    rows.append(("  planted copies found, per transformation", ", ".join(per)))
    for t in THRESHOLDS:
        p, r = pair_scores(group_pairs(group_labels(similar_pairs(graph, t), len(graph))), truth)
        fp, fr = pair_scores(fiftyone_duplicates(graph, t), truth)
        rows.append((f"near-dup P/R @ sim>={t:.3f}: former fixed threshold | FiftyOne",
                     f"{p:.3f}/{r:.3f} | {fp:.3f}/{fr:.3f}"))
    return rows


def cluster_rows(vectors: np.ndarray, pixels: np.ndarray, truth: np.ndarray, seed: int) -> list[tuple[str, str]]:
    """NMI/ARI of HDBSCAN (5-D UMAP of the shared graph), k-means, and k-means on raw pixels (floor)."""

    labels = [str(x) for x in truth]
    graph = knn_graph(vectors, k=30)
    hdb, seconds = timed(lambda: hdbscan_clusters(reduce_for_clustering(vectors, graph, seed=seed)))
    out = []
    for name, pred in (("HDBSCAN on 5-D UMAP", hdb), ("k-means k=10", kmeans_clusters(vectors, 10, seed=seed)),
                       ("k-means k=10 on raw pixels (floor)", kmeans_clusters(pixels, 10, seed=seed))):
        s = cluster_agreement(labels, pred)
        out.append((f"clusters NMI/ARI: {name}", f"{s['nmi']:.3f}/{s['ari']:.3f}"))
    out.append(("HDBSCAN clusters, noise share, seconds", f"{hdb.max() + 1}, {np.mean(hdb < 0):.3f}, {seconds:.1f}s"))
    return out


def cluster_scale_rows(folder: Path, n: int, seed: int) -> list[tuple[str, str]]:
    """HDBSCAN at scale: n Fashion-MNIST images (PCA-50 of the pixels, the shared 90-NN cosine graph), the seconds
    of the 5-D UMAP reduction and of HDBSCAN, and NMI/ARI against the classes."""
    from sklearn.decomposition import PCA

    X, y = load_fashion_mnist(folder, n, seed)
    X = PCA(50, random_state=seed).fit_transform(X).astype(np.float32)
    graph, graph_s = timed(lambda: knn_graph(X, k=90, seed=seed))
    reduce_for_clustering(X[:2000], knn_graph(X[:2000], k=30), seed=seed)  # numba compiles here, not in the timing
    reduced, reduce_s = timed(lambda: reduce_for_clustering(X, graph, seed=seed))
    hdb, hdb_s = timed(lambda: hdbscan_clusters(reduced))
    s = cluster_agreement([str(v) for v in y], hdb)
    return [(f"Fashion-MNIST n={len(X)}: 90-NN graph seconds", f"{graph_s:.1f}"),
            (f"  5-D UMAP ({clustering_epochs(len(X))} epochs) s, HDBSCAN s", f"{reduce_s:.1f}, {hdb_s:.1f}"),
            ("  HDBSCAN clusters, noise share, NMI/ARI",
             f"{hdb.max() + 1}, {np.mean(hdb < 0):.3f}, {s['nmi']:.3f}/{s['ari']:.3f}")]


def bench_features(data: dict, features: str, seed: int) -> list[tuple[str, str]]:
    """Every figure for one representation of the planted set."""

    vectors, seconds = timed(lambda: embed(data["images"], features))
    rows = [("embedding seconds", f"{seconds:.1f}")]
    graph = knn_graph(vectors, k=60)
    rows += duplicate_rows(vectors, graph, data)
    ood = data["is_ood"]
    for name, score in (("dinoscope 5th-neighbour distance", kth_neighbor_distance(graph, 5)),
                        ("dinoscope LOF k=20", local_outlier_factor(graph, 20)),
                        ("dinoscope LOF k=50", local_outlier_factor(graph, 50)),
                        ("FiftyOne uniqueness", fiftyone_uniqueness(graph))):
        rows.append((f"outlier AUROC: {name}", f"{roc_auc_score(ood, score):.3f}"))
    keep = ~ood  # OOD images carry arbitrary labels; label issues are judged on the digits and their copies
    for k in (5, 10, 20):
        scores, suggested = label_issues(graph, data["labels"], k=k)
        ap = average_precision_score(data["is_flipped"][keep], scores[keep])
        rows.append((f"label issues AP k={k} (base rate {data['is_flipped'][keep].mean():.3f})", f"{ap:.3f}"))
    clean = slice(0, data["n_digits"])
    rows += cluster_rows(vectors[clean], embed(data["images"][clean], "pixels"), data["clean_truth"], seed)
    (_, summary), seconds = timed(lambda: analyze(vectors, [str(i) for i in range(len(vectors))], data["labels"],
                                                  None, graph, read=lambda i: data["images"][i], seed=seed))
    rows.append(("analyze() total seconds (all analyses)", f"{seconds:.1f}"))
    rows.append(("analyze() seconds per analysis", ", ".join(f"{k} {v:.2f}" for k, v in summary["timings"].items())))
    return rows


def brute_force(X: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest cosine similarities by a full sort: the reference exact search must equal."""
    Xn, Qn = normalize(X), normalize(queries)
    return np.argsort(-(Qn @ Xn.T), axis=1, kind="stable")[:, :k]


def search_rows(n: int, dim: int, seed: int) -> list[tuple[str, str]]:
    """Exact vs approximate search on n clustered synthetic vectors: build time, query time, recall@10."""

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(10, n // 1000), dim)).astype(np.float32)
    X = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    queries = X[rng.choice(n, 1000, replace=False)] + 0.05 * rng.normal(size=(1000, dim)).astype(np.float32)
    rows, truth = [], None
    for method in ("exact", "approx"):
        index, build = timed(lambda method=method: SimilarityIndex(X, method=method, seed=seed))
        (found, _), seconds = timed(lambda index=index: index.search(queries, 10))
        query_ms = seconds / len(queries) * 1000
        if truth is None:
            truth = found
            same = np.array_equal(found[:100], brute_force(X, queries[:100], 10))
            rows.append((f"search exact n={n}: equals brute-force full sort (100 queries)", str(same)))
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth.tolist(), found.tolist(), strict=True)])
        rows.append((f"search {method} n={n} d={dim}: build s, ms/query, recall@10 (self-measured)",
                     f"{build:.1f}, {query_ms:.3f}, {recall:.3f} ({index.recall:.3f})"))
    return rows


def print_table(rows: list[tuple[str, str]], command: str) -> None:
    """A plain two-column table, the command line first."""
    width = max(len(r[0]) for r in rows)
    print(f"$ {command}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}" if value else f"\n## {name}")


def main() -> None:

    parser = make_parser(__doc__)
    parser.add_argument("--features", nargs="+", default=["pixels", "vit-random"], choices=["pixels", "vit-random"])
    parser.add_argument("--search-n", type=int, default=100_000, help="vectors in the similarity search test (0: skip)")
    parser.add_argument("--search-dim", type=int, default=384)
    parser.add_argument("--sets", nargs="+", default=["digits", "fashion-mnist"], choices=["digits", "fashion-mnist"])
    parser.add_argument("--cluster-n", type=int, default=0, help="Fashion-MNIST images to cluster (0: skip)")
    add_fashion_mnist(parser, "Fashion-MNIST's idx .gz files (--sets, --cluster-n)",
                      FASHION_MNIST)
    add_seed(parser)
    args = parser.parse_args()
    rows = []
    for name in args.sets:
        base = fashion_images(args.fashion_mnist, FASHION_N, args.seed) if name == "fashion-mnist" else None
        data = planted(args.seed, base=base)
        rows.append((f"{name}: {len(data['images'])} images, {len(data['dup_kind'])} planted copies "
                     f"({len(data['dup_pairs'])} duplicate pairs with the repeated OOD letters), "
                     f"{data['is_flipped'].sum()} flipped labels, {data['is_ood'].sum()} OOD", ""))
        for features in args.features:
            rows.append((f"{name}, features: {features}", ""))
            rows += bench_features(data, features, args.seed)
    if args.cluster_n:
        rows.append(("clusters at scale", ""))
        rows += cluster_scale_rows(args.fashion_mnist, args.cluster_n, args.seed)
    if args.search_n:
        rows.append(("similarity search", ""))
        rows += search_rows(args.search_n, args.search_dim, args.seed)
    print_table(rows, " ".join(["python", *sys.argv]))


if __name__ == "__main__":
    main()
