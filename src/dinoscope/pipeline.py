"""The stages of a run, each reading and writing the run directory; `run_pipeline` chains them.

A stage's cache key is a fingerprint of its own settings and its inputs' keys, so a stage whose
inputs and settings did not change does nothing, and a change reruns exactly what depends on it.
"""

from __future__ import annotations

import pickle
import shutil
import time
from pathlib import Path

import numpy as np

from . import maps as registry
from .config import Settings
from .console import say, warn
from .errors import DinoscopeError
from .hashing import PERCEPTUAL_HASH_VERSION, fingerprint
from .rundir import artifacts
from .rundir.access import image_reader, open_run
from .rundir.directory import RunDir, atomic_path, write_json

STAGES = ("extract", "neighbors", "maps", "metrics", "analyze", "plot", "report")


def _weights_identity(path: Path | None) -> dict | None:
    """What identifies a local checkpoint cheaply (a file, or a folder's weights and config.json): resolved path,
    size and modification time of each."""
    from .embed.checkpoints import checkpoint_file

    if path is None:
        return None
    weights, config = checkpoint_file(Path(path))
    files = [weights] + ([weights.parent / "config.json"] if config is not None else [])
    return {"path": str(weights.resolve()),
            "files": [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]}


def _precision(mod) -> str:
    """The precision extraction runs in, 'auto' settled on this machine (measured, see `compute.bf16_pays`) for
    the local engine, so that the stage key follows it and shards of two precisions never mix on resume; the Ray
    engine's workers settle 'auto' on their own hardware."""
    if mod.engine == "ray":
        return mod.precision
    from .compute import resolve_device, resolve_precision

    return resolve_precision(mod.precision, resolve_device(mod.device))


def extract_stage(run: RunDir, settings: Settings, progress: bool = True) -> bool:
    """Images → embeddings.parquet (or precomputed vectors copied in); returns False on a cache hit."""
    from .sources import load_source

    src, mod = settings.source, settings.model
    dataset = load_source(src.source, split=src.split, strict=src.strict, cache_dir=src.cache_dir,
                          columns=src.columns())
    if src.limit is not None and src.limit < len(dataset):
        dataset = dataset.subset(range(src.limit))
    if len(dataset) == 0:
        raise DinoscopeError(f"source '{src.source}' has no items; point --source at images")
    model_key = None
    if not dataset.is_embedded:
        model_key = mod.model_dump(mode="json", exclude={"threads", "device", "compile", "weights", "engine",
                                                         "ray_address", "ray_workers"})
        model_key["weights"] = _weights_identity(mod.weights)
        model_key["seed"] = settings.seed if mod.random_weights else None  # random weights are drawn from it
        model_key["preprocess"] = 3  # 3: large JPEGs decoded reduced; 2: float resize shared with export.py; 1: uint8
        model_key["precision"] = _precision(mod)
        model_key["perceptual_hash"] = PERCEPTUAL_HASH_VERSION  # computed with the embeddings: a new one extracts again
    key = fingerprint({"data": dataset.fingerprint, "model": model_key})
    if run.is_fresh("extract", key, [artifacts.EMBEDDINGS]):
        say("extract", f"up to date ({len(dataset)} items)")
        return False

    t0 = time.perf_counter()
    extra: dict = {"source": dataset.name, "n_items": len(dataset)}
    if dataset.is_embedded:
        vectors, index, failures, hashes = dataset.embeddings, np.arange(len(dataset)), [], (None, None)
        extra.update(model=None, random_weights=False, precision=None)
        say("extract", f"{len(dataset)} precomputed vectors of dimension {vectors.shape[1]} (no backbone)")
    else:
        vectors, index, failures, hashes, info = _embed_images(run, dataset, settings, key, progress)
        extra.update(info)
    if len(index) == 0:
        raise DinoscopeError(f"no image of '{src.source}' could be read; see the warnings above")
    _warn_if_constant(np.asarray(vectors))
    pick = lambda xs: None if xs is None else [xs[i] for i in index]  # noqa: E731
    artifacts.write_embeddings(
        run.file(artifacts.EMBEDDINGS),
        artifacts.Embeddings(pick(dataset.ids), pick(dataset.origins), pick(dataset.labels),
                             pick(dataset.splits), np.asarray(vectors, np.float32), *hashes),
    )
    shutil.rmtree(run.file(artifacts.SHARDS), ignore_errors=True)
    run.manifest["random_weights"] = bool(extra.get("random_weights"))
    extra["skipped"] = [{"id": i, "reason": r} for _, i, r in failures]
    run.mark_done("extract", key, time.perf_counter() - t0, [artifacts.EMBEDDINGS], n=len(index), **extra)
    say("extract", f"{len(index)} embeddings written" + (f", {len(failures)} skipped" if failures else ""))
    return True


def _warn_if_constant(vectors: np.ndarray) -> None:
    """Say so when the embeddings barely differ between images: every map and neighbour is then noise."""
    spread = float(vectors.std(axis=0).mean()) / (float(np.abs(vectors).mean()) + 1e-12)
    if len(vectors) > 1 and spread < 1e-3:
        warn(f"the embeddings barely differ between images (relative spread {spread:.1e}); maps of them show "
             "noise. Untrained DINOv2/v3 weights do this (LayerScale starts at 1e-5): use trained weights")


def _embed_images(run: RunDir, dataset, settings: Settings, key: str, progress: bool):
    """Run the backbone over the images, resumably, in shards under the run directory."""
    from .embed.backbones import build_backbone
    from .embed.extract import extract

    mod = settings.model
    backbone = build_backbone(mod.model, weights=mod.weights, random_weights=mod.random_weights,
                              pool=mod.pool, resolution=mod.resolution, seed=settings.seed)
    if backbone.random_weights:
        warn(f"{backbone.name} has RANDOM weights: the embeddings and maps say nothing about a trained model")
    say("extract", f"{len(dataset)} images with {backbone.name} at {backbone.resolution}px ({mod.pool})")
    run_on = dict(batch_size=mod.batch_size, precision=_precision(mod), device=mod.device, threads=mod.threads,
                  shard_size=mod.shard_size, strict=settings.source.strict, progress=progress, compile=mod.compile)
    if mod.engine == "ray":  # the same shards, computed by Ray Data (either engine resumes the other's)
        from .embed.ray_engine import extract_ray

        res = extract_ray(dataset, backbone, run.file(artifacts.SHARDS) / key, address=mod.ray_address,
                          workers=mod.ray_workers, **run_on)
    else:
        res = extract(dataset, backbone, run.file(artifacts.SHARDS) / key, **run_on)
    info = {
        "model": backbone.name,
        "alias": backbone.alias,
        "weights": backbone.weights,
        "random_weights": backbone.random_weights,
        "embed_dim": backbone.embed_dim,
        "resolution": backbone.resolution,
        "pool": backbone.pool,
        "precision": res.precision,
        "device": res.device,
        "images_per_s": round(res.images_per_s, 2),
        "engine": mod.engine,
    }
    return res.embeddings, res.index, res.failures, (res.pixel_hashes, res.perceptual_hashes), info


def neighbors_stage(run: RunDir, settings: Settings, progress: bool = True) -> bool:
    """embeddings → neighbors.npz: the one kNN graph every later stage shares."""
    from .neighbors import save_graph

    up = run.require("extract")["key"]
    nb = settings.neighbors
    key = fingerprint({"extract": up, "neighbors": nb.model_dump(mode="json"), "seed": settings.seed})
    if run.is_fresh("neighbors", key, [artifacts.NEIGHBORS]):
        say("neighbors", "up to date")
        return False
    emb = artifacts.read_embeddings(run.file(artifacts.EMBEDDINGS))
    t0 = time.perf_counter()
    graph = _graph_of(emb.vectors, settings)
    save_graph(graph, run.file(artifacts.NEIGHBORS))
    seconds = time.perf_counter() - t0
    run.mark_done("neighbors", key, seconds, [artifacts.NEIGHBORS], k=int(graph.indices.shape[1]),
                  metric=graph.metric, exact=bool(graph.exact), recall=round(graph.recall, 4))
    kind = "exact" if graph.exact else f"approximate, recall {graph.recall:.4f} against exact on a sample"
    say("neighbors", f"{graph.indices.shape[1]}-NN graph ({kind}, {graph.metric}) in {seconds:.1f}s")
    return True


def _graph_of(vectors: np.ndarray, settings: Settings):
    """The kNN graph of `vectors` as the run's neighbour settings make it (the shared one, or a sample's)."""
    from .neighbors import knn_graph

    nb = settings.neighbors
    return knn_graph(vectors, k=nb.k, metric=nb.metric, method=nb.method, exact_max=nb.exact_max, seed=settings.seed)


def _map_key(up: str, settings: Settings, name: str, sampling: bool) -> str:
    """A map's own cache key: the graph it reads, its settings, the seed, its sample's size when fitted on one
    (`sampling`: the run has more than maps.fit_max points) and its teacher's key (learned maps)."""
    from .maps.sample import SAMPLER

    spec = registry.spec(name)
    sample = {"fit_max": settings.maps.fit_max, "sampler": SAMPLER} if sampling and spec.sampled else {}
    return fingerprint({"neighbors": up, "map": name, "settings": getattr(settings.maps, name).model_dump(mode="json"),
                        "seed": settings.seed, **sample,
                        **({"teacher": _map_key(up, settings, spec.teacher, sampling)} if spec.teacher else {})})


def build_map(name: str, settings: Settings, verbose: bool = False):
    """The unfitted estimator of map `name` with the run's settings, seed and graph metric."""
    return registry.spec(name).build(getattr(settings.maps, name).model_dump(), random_state=settings.seed,
                                     verbose=verbose, metric=settings.neighbors.metric)


def fit_map(name: str, estimator, X: np.ndarray, labels, graph, coords: dict[str, np.ndarray]) -> np.ndarray:
    """Fit one map on the shared graph (a learned map on its teacher's coordinates too); its coordinates."""
    teacher = registry.spec(name).teacher
    extra = {"teacher": coords[teacher]} if teacher else {}
    Y = np.asarray(estimator.fit_transform(X, labels, knn=graph, **extra))
    return Y if Y.dtype == np.float64 else Y.astype(np.float32)  # disk maps keep float64 near the boundary


ITERATIONS = ("early_exaggeration_iter_", "n_iter_")  # what a map's optimisation ran (its stopping rules), recorded


def maps_stage(run: RunDir, settings: Settings, progress: bool = True) -> bool:
    """embeddings + graph → maps.parquet, models/<map>.pkl (and .pt for learned maps); refits only the maps
    whose key changed, teachers before their students."""
    from .maps.sample import fit_sample, place_unsampled, placing, sample_index, sampling

    up = run.require("neighbors")["key"]
    names = list(dict.fromkeys(settings.maps.maps))
    n = run.require("extract")["n"]
    sampled_run = sampling(n, settings.maps.fit_max)
    sampled = {m: sampled_run and registry.spec(m).sampled for m in names}
    keys = {m: _map_key(up, settings, m, sampled_run) for m in names}
    key = fingerprint(keys)
    learned = [m for m in names if registry.spec(m).learned]
    outputs = [artifacts.MAPS] + [artifacts.model_file(m) for m in learned]
    if run.is_fresh("maps", key, outputs):
        say("maps", f"up to date ({', '.join(names)})")
        return False
    emb = artifacts.read_embeddings(run.file(artifacts.EMBEDDINGS))
    graph = artifacts.read_graph(run)
    old = (run.stage("maps") or {}).get("maps", {})
    _, coords = artifacts.read_maps(run.file(artifacts.MAPS))
    done: dict[str, dict] = {}
    on_sample = None  # the sample's vectors, labels, own graph and where the rest go: made for the first sampled map
    for name in names:
        saved = name not in learned or run.file(artifacts.model_file(name)).is_file()
        if old.get(name, {}).get("key") == keys[name] and name in coords and saved:
            done[name] = old[name]
            say("maps", f"{name}: up to date")
            continue
        estimator = build_map(name, settings, verbose=progress)
        t0 = time.perf_counter()
        if sampled[name]:
            if on_sample is None:
                sample = fit_sample(graph, settings.maps.fit_max, settings.seed)
                say("maps", f"fitting t-SNE, UMAP and the disk on {len(sample):,} of {n:,} points (maps.fit_max), "
                    "the rest placed among their nearest sampled points")
                X_sample = emb.vectors[sample]
                on_sample = (X_sample, None if emb.labels is None else [emb.labels[i] for i in sample],
                             _graph_of(X_sample, settings), placing(emb.vectors, graph, sample, sample_index(X_sample)))
            X_sample, labels_sample, sample_graph, plan = on_sample
            Y = fit_map(name, estimator, X_sample, labels_sample, sample_graph, coords)
            coords[name] = place_unsampled(plan, Y, registry.spec(name).disk)
        else:
            coords[name] = fit_map(name, estimator, emb.vectors, emb.labels, graph, coords)
        seconds = time.perf_counter() - t0
        with atomic_path(run.file(artifacts.model_file(name, ".pkl"))) as tmp, tmp.open("wb") as f:
            pickle.dump(estimator, f, protocol=pickle.HIGHEST_PROTOCOL)  # streamed: no copy of it in memory
        if name in learned:  # its TorchScript network too (see `rundir.model`)
            with atomic_path(run.file(artifacts.model_file(name))) as tmp:
                estimator.save(tmp)
        ran = {a[:-1]: int(v) for a in ITERATIONS if (v := getattr(estimator, a, None)) is not None}
        done[name] = {"key": keys[name], "seconds": round(seconds, 3),
                      **({"fitted_on": len(sample)} if sampled[name] else {}), **({"iterations": ran} if ran else {})}
        say("maps", f"{name}: {seconds:.1f}s")
    artifacts.write_maps(run.file(artifacts.MAPS), emb.ids, {m: coords[m] for m in names})
    run.mark_done("maps", key, sum(d["seconds"] for d in done.values()), outputs, maps=done)
    return True


def metrics_stage(run: RunDir, settings: Settings, progress: bool = True) -> bool:
    """maps + embeddings → metrics.json: faithfulness of every map, and the timings."""
    from .metrics.faithfulness import embedding_side, map_metrics
    from .metrics.hierarchy import hierarchy_figures, read_superclasses
    from .metrics.placement import knn_heldout_figures

    maps_rec = run.require("maps")
    ms = settings.metrics
    superclasses = read_superclasses(ms.superclasses) if ms.superclasses else None
    key = fingerprint({"maps": maps_rec["key"], "metrics": ms.model_dump(mode="json"), "superclasses": superclasses,
                       "metric": settings.neighbors.metric, "seed": settings.seed})
    if run.is_fresh("metrics", key, [artifacts.METRICS]):
        say("metrics", "up to date")
        return False
    emb = artifacts.read_embeddings(run.file(artifacts.EMBEDDINGS))
    _, coords = artifacts.read_maps(run.file(artifacts.MAPS))
    t0 = time.perf_counter()
    per_map = {}
    side = embedding_side(emb.vectors, emb.labels, k=ms.k, sample=ms.sample, seed=settings.seed,
                          metric=settings.neighbors.metric)  # shared by every map's figures
    for name, rec in maps_rec["maps"].items():
        distance = registry.distance(name)
        figures = map_metrics(emb.vectors, coords[name], emb.labels, k=ms.k, map_distance=distance, seed=settings.seed,
                              side=side)
        if distance == "poincare" and emb.labels is not None:
            figures.update(hierarchy_figures(emb.vectors, coords[name], emb.labels, superclasses, k=ms.k,
                                             sample=ms.sample, seed=settings.seed))
        per_map[name] = {**figures, "seconds": rec["seconds"],
                         **({"fitted_on": rec["fitted_on"]} if "fitted_on" in rec else {})}
        if registry.spec(name).learned:
            per_map[name]["heldout"] = _heldout(run, settings, emb, name, coords[registry.spec(name).teacher])
        per_map[name]["knn_heldout"] = knn_heldout_figures(
            emb.vectors, emb.labels, coords[name], k=ms.k, sample=ms.sample, seed=settings.seed,
            metric=settings.neighbors.metric, map_distance=distance)
    timings = {s: run.stage(s)["seconds"] for s in ("extract", "neighbors", "maps") if run.stage(s)}
    write_json(run.file(artifacts.METRICS), {
        "random_weights": bool(run.manifest.get("random_weights")),
        "n": len(emb),
        "k": ms.k,
        "maps": per_map,
        "timings": timings,
    })
    run.mark_done("metrics", key, time.perf_counter() - t0, [artifacts.METRICS])
    say("metrics", ", ".join(f"{m}: T={v['trustworthiness']:.3f}" for m, v in per_map.items()))
    return True


def _heldout(run: RunDir, settings: Settings, emb: artifacts.Embeddings, name: str, teacher: np.ndarray) -> dict:
    """A learned map refitted on 90 % of the points, placing the other 10 % (see `metrics.placement`)."""
    from .metrics.placement import heldout_figures

    figures = heldout_figures(build_map(name, settings), emb.vectors, emb.labels, artifacts.read_graph(run), teacher,
                              k=settings.metrics.k, seed=settings.seed, metric=settings.neighbors.metric,
                              map_distance=registry.distance(name))
    say("metrics", f"{name}: placed {figures['n_placed']} held-out points, kNN recall {figures['knn_recall']:.3f}, "
        f"agreement with {registry.spec(name).teacher} {figures['agreement']:.3f}")
    return figures


def analyze_stage(run: RunDir, settings: Settings, progress: bool = True) -> bool:
    """embeddings + graph → analysis.parquet (one row per image), analysis.json and image grids."""
    from .analysis import analyze
    from .maps.sample import SAMPLER
    from .render.findings import write_grids

    up = run.require("neighbors")["key"]
    an = settings.analysis
    key = fingerprint({"neighbors": up, "analysis": an.model_dump(mode="json"), "seed": settings.seed,
                       "sampler": SAMPLER})
    if run.is_fresh("analyze", key, [artifacts.ANALYSIS, artifacts.FINDINGS]):
        say("analyze", "up to date")
        return False
    emb = artifacts.read_embeddings(run.file(artifacts.EMBEDDINGS))
    graph = artifacts.read_graph(run)
    t0 = time.perf_counter()
    read = image_reader(run, settings, emb.ids)
    columns, summary = analyze(emb.vectors, emb.ids, emb.labels, emb.splits, graph, read=read,
                               pixel_hashes=emb.pixel_hashes, perceptual_hashes=emb.perceptual_hashes,
                               n_clusters=an.n_clusters, duplicate_threshold=an.duplicate_threshold, top=an.top,
                               cluster_max=an.cluster_max, seed=settings.seed)
    artifacts.write_table(run.file(artifacts.ANALYSIS), {"id": emb.ids, **columns})
    summary["grids"] = write_grids(run, summary, emb, read) if read is not None else {}
    write_json(run.file(artifacts.FINDINGS), summary)
    run.mark_done("analyze", key, time.perf_counter() - t0, [artifacts.ANALYSIS, artifacts.FINDINGS])
    dup = summary["duplicates"]
    kinds = ", ".join(f"{n} {k}" for k, n in dup["n_pairs"].items() if n)
    say("analyze", f"{summary['hdbscan']['n_clusters']} clusters, {dup['n_groups']} duplicate groups"
        f"{f' ({kinds} pairs)' if kinds else ''}, {dup['n_cross_split_pairs']} cross-split pairs")
    return True


def plot_stage(run: RunDir, settings: Settings, progress: bool = True) -> bool:
    """maps + metrics → plots/<map>.png and plots/grid.png."""
    from .render.plots import plot_run

    up = run.require("metrics")["key"]
    key = fingerprint({"metrics": up, "random_weights": run.manifest.get("random_weights")})
    if run.is_fresh("plot", key, [artifacts.plot_file("grid")]):
        say("plot", "up to date")
        return False
    t0 = time.perf_counter()
    outputs = plot_run(run)
    run.mark_done("plot", key, time.perf_counter() - t0, outputs)
    say("plot", f"{len(outputs)} images in {run.file(artifacts.PLOTS)}")
    return True


def report_stage(run: RunDir, settings: Settings, progress: bool = True) -> bool:
    """Everything → report.html, one self-contained page."""
    from .render.report import write_report

    up = run.require("plot")["key"]
    analysis = (run.stage("analyze") or {}).get("key")
    key = fingerprint({"plot": up, "analyze": analysis, "settings": run.manifest.get("settings")})
    if run.is_fresh("report", key, [artifacts.REPORT]):
        say("report", "up to date")
        return False
    t0 = time.perf_counter()
    write_report(run)
    run.mark_done("report", key, time.perf_counter() - t0, [artifacts.REPORT])
    say("report", str(run.file(artifacts.REPORT)))
    return True


STAGE_FUNCS = {
    "extract": extract_stage,
    "neighbors": neighbors_stage,
    "maps": maps_stage,
    "metrics": metrics_stage,
    "analyze": analyze_stage,
    "plot": plot_stage,
    "report": report_stage,
}


def run_pipeline(out: str | Path, settings: Settings | None = None, *, progress: bool = True,
                 stages: tuple[str, ...] = STAGES) -> RunDir:
    """Run the stages in order on one run directory, skipping those that are up to date."""
    run, settings = open_run(out, settings)
    with run.writing():
        for stage in stages:
            STAGE_FUNCS[stage](run, settings, progress)
    return run
