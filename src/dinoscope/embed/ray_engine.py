"""Extraction on Ray Data: the same shards as `extract.extract`, computed by a cluster (or a local Ray instance).

The plan is the local engine's (`extract.plan_batches`: fixed shards, fixed batches) and so are the pieces: each
planned batch is decoded, hashed and preprocessed by `extract.prepare_batch` in CPU `map_batches` tasks, embedded
by `inference.forward_function` in an actor pool (one model per actor, one GPU each where the cluster has GPUs),
and the driver folds the rows that stream back into shards, writing each atomically (`shards.write_shard`) once
all its items are in. A driver killed at any moment leaves only whole shards, and the rerun computes the missing
ones; a worker that dies is retried by Ray, and rows are keyed by their position, so a retried batch can never
count twice. Ray Data runs each planned batch through the model as one forward pass (the actor regroups its input
by batch), which is why the embeddings equal the local engine's.

The dataset (its listing and its reader) and the backbone travel once through Ray's object store; each worker
process keeps the last ones it unpacked.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..compute import resolve_device, resolve_precision
from ..console import progress_bar, say, warn
from ..errors import DinoscopeError
from ..sources.base import Dataset
from .backbones import Backbone
from .extract import Extraction, assemble, check_extractable, plan_batches, prepare_batch, resume_plan
from .inference import forward_function
from .shards import load_shard, shard_path, write_shard

INSTALL = "the ray engine needs Ray: pip install 'dinoscope[ray]'"


def import_ray():
    """The `ray` module (usage statistics off unless the user set them), or a one-line error saying what to
    install."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
        import ray.data  # noqa: F401  (ray without its data extra lacks it)
    except ImportError:
        raise DinoscopeError(INSTALL) from None
    return ray


@contextmanager
def ray_session(address: str | None = None) -> Iterator:
    """Ray, connected: to the instance this process already joined, to the cluster at `address`, or to a local
    instance started here (stopped again at the end) when no address is given."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    local = {} if address else {"include_dashboard": False}
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING, **local)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise DinoscopeError(f"cannot start or join {where}: {str(exc).splitlines()[0] if str(exc) else exc}") \
            from None
    try:
        yield ray
    finally:
        ray.shutdown()


# --------------------------------------------------------------------------- what runs on the workers

_UNPACKED: dict[str, object] = {}


def _unpack(ref) -> object:
    """An object from the object store, unpacked once per worker process (the latest two are kept)."""
    import ray

    key = ref.hex()
    if key not in _UNPACKED:
        while len(_UNPACKED) >= 2:
            _UNPACKED.pop(next(iter(_UNPACKED)))
        _UNPACKED[key] = ray.get(ref)
    return _UNPACKED[key]


def decode_batches(rows: dict[str, np.ndarray], dataset_ref: list, backbone_ref: list) -> dict[str, np.ndarray]:
    """CPU task: planned batches (shard, start, stop) -> one row per item: its pixels preprocessed for the model
    (zeros for an unreadable item, whose `reason` says why), its hashes, and the batch it belongs to."""
    dataset, backbone = _unpack(dataset_ref[0]), _unpack(backbone_ref[0])
    cols: dict[str, list] = {k: [] for k in ("shard", "batch", "position", "reason", "pixel_hash", "perceptual")}
    pixels = []
    side = backbone.resolution
    for shard, start, stop in zip(rows["shard"].tolist(), rows["start"].tolist(), rows["stop"].tolist(), strict=True):
        batch = prepare_batch(dataset, backbone, shard, list(range(start, stop)), strict=False)
        items = [(p, "", h) for p, h in zip(batch.positions, batch.hashes, strict=True)]
        items += [(p, reason, ("", None)) for p, _, reason in batch.failures]
        for pos, reason, (exact, perceptual) in items:
            cols["shard"].append(shard)
            cols["batch"].append(start)
            cols["position"].append(pos)
            cols["reason"].append(reason)
            cols["pixel_hash"].append(exact)
            cols["perceptual"].append("-" if perceptual is None else perceptual.hex())
        if batch.pixels is not None:
            pixels.append(batch.pixels.numpy())
        if batch.failures:
            pixels.append(np.zeros((len(batch.failures), 3, side, side), np.float32))
    out = {k: np.asarray(v, dtype=np.int64 if k in ("shard", "batch", "position") else object)
           for k, v in cols.items()}
    out["pixels"] = np.concatenate(pixels) if pixels else np.zeros((0, 3, side, side), np.float32)
    return out


class Embedder:
    """Actor: one model, built once; embeds the readable rows of each planned batch in one forward pass."""

    def __init__(self, backbone_ref: list, device: str, precision: str, threads: int | None, compile: bool | None):
        import ray

        if threads:
            torch.set_num_threads(threads)
        backbone = ray.get(backbone_ref[0])
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.dim = backbone.embed_dim
        self.forward = forward_function(backbone, self.device, self.precision, compile)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(rows["position"])
        emb = np.zeros((n, self.dim), np.float32)
        seconds = np.zeros(n, np.float64)
        ok = np.asarray([r == "" for r in rows["reason"]], dtype=bool)
        for b in dict.fromkeys(rows["batch"].tolist()):  # each planned batch in one forward pass, as locally
            take = np.flatnonzero((rows["batch"] == b) & ok)
            if len(take):
                t0 = time.perf_counter()
                emb[take] = self.forward(torch.from_numpy(np.ascontiguousarray(rows["pixels"][take])))
                seconds[take] = (time.perf_counter() - t0) / len(take)
        out = {k: rows[k] for k in ("shard", "position", "reason", "pixel_hash", "perceptual")}
        out.update(embedding=emb, seconds=seconds, worker=np.asarray([self.worker] * n, dtype=object),
                   engine=np.asarray([f"{self.precision}@{self.device}"] * n, dtype=object))
        return out


# --------------------------------------------------------------------------- the driver


@dataclass
class _Shard:
    """The rows of one shard received so far, by position (a retried batch overwrites, never adds)."""

    rows: dict[int, tuple] = field(default_factory=dict)

    def write(self, path: Path, start: int, stop: int, dim: int, ids: list[str]) -> None:
        """Write the shard as the local engine does: items and failures in position order."""
        index, emb, hashes, failures = [], [], [], []
        for pos in sorted(self.rows):
            reason, vector, pair = self.rows[pos]
            if reason:
                failures.append((pos, ids[pos], reason))
            else:
                index.append(pos)
                emb.append(vector)
                hashes.append(pair)
        write_shard(path, start, stop, index, [np.stack(emb)] if emb else [], failures, dim, hashes)


@dataclass
class Plan:
    """How many model actors, what each reserves, and how many torch threads each runs."""

    actors: int
    num_cpus: float
    num_gpus: float
    threads: int | None


def resource_plan(resources: dict, node_cpus: float, nodes: int, device: str, workers: int | None,
                  threads: int | None) -> Plan:
    """One actor per GPU where the cluster has GPUs (and the device allows); on CPUs, one actor per node (or
    `workers`) running as many torch threads as its share of the node's CPUs (or `threads`), while reserving at
    most all CPUs but one, so decoding tasks always get one. Decoding is light next to the model (at 224 px, 118
    images/s per CPU against 7 per model thread) and fills the gaps: on 2 CPUs, 1 actor x 2 threads ran at 0.82x the
    local engine, 2 x 1 at 0.83x, 1 x 1 at 0.51x (benchmarks/ray_extract.py)."""
    gpus = int(resources.get("GPU", 0))
    if gpus and device != "cpu":
        return Plan(workers or gpus, 1.0, 1.0, threads)
    actors = workers or max(1, nodes)
    per_node = math.ceil(actors / max(1, nodes))
    t = threads or max(1, int(node_cpus) // per_node)
    reserve = min(float(t), max(0.25, (node_cpus - 1) / per_node))
    return Plan(actors, reserve, 0.0, t)


def extract_ray(
    dataset: Dataset,
    backbone: Backbone,
    shard_dir: Path,
    *,
    batch_size: int = 64,
    precision: str = "auto",
    device: str = "auto",
    threads: int | None = None,
    shard_size: int = 1024,
    strict: bool = False,
    progress: bool = True,
    compile: bool | None = None,
    address: str | None = None,
    workers: int | None = None,
) -> Extraction:
    """`extract.extract` on Ray: the same shards in `shard_dir` (either engine resumes the other's), computed by
    the cluster at `address` (a local instance when None); `workers`: model actors (one per GPU, or as many as
    the CPUs allow, when not given)."""
    check_extractable(dataset, batch_size, shard_size)
    shard_dir = Path(shard_dir)
    n, dim = len(dataset), backbone.embed_dim
    bounds, done, todo = resume_plan(n, shard_size, shard_dir, dim)
    dev = resolve_device(device)
    engine = f"{resolve_precision(precision, dev)}@{dev}"  # what this machine would use; the workers say theirs
    t0 = time.perf_counter()
    per_worker: dict[str, list[float]] = {}
    if todo:
        with ray_session(address) as ray:
            engine = _run(ray, dataset, backbone, shard_dir, bounds, done, todo, per_worker, batch_size=batch_size,
                          precision=precision, device=device, threads=threads, shard_size=shard_size,
                          strict=strict, progress=progress, compile=compile, workers=workers) or engine
    seconds = time.perf_counter() - t0
    computed = sum(bounds[s][1] - bounds[s][0] for s in todo)
    prec, _, where = engine.partition("@")
    result = assemble(done, len(bounds), dim, prec, torch.device(where), seconds, computed)
    result.workers = {name: (int(k), float(t)) for name, (k, t) in per_worker.items()}
    if todo:
        say("extract", _summary(computed, seconds, per_worker))
    return result


def _run(ray, dataset: Dataset, backbone: Backbone, shard_dir: Path, bounds: list, done: dict, todo: list[int],
         per_worker: dict, *, batch_size: int, precision: str, device: str, threads: int | None, shard_size: int,
         strict: bool, progress: bool, compile: bool | None, workers: int | None) -> str | None:
    """Stream the missing shards through the cluster, writing each as soon as it is whole; returns the
    workers' precision@device."""
    n, dim = len(dataset), backbone.embed_dim
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    node_cpus = min((node["Resources"].get("CPU", 0) for node in nodes), default=1) or 1
    plan = resource_plan(ray.cluster_resources(), node_cpus, len(nodes), device, workers, threads)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the bar below is fed by the rows coming back
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled"

    pixels_only = dataclasses.replace(backbone, model=torch.nn.Identity())  # what decoding needs of it
    dataset_ref, light_ref, backbone_ref = ray.put(dataset), ray.put(pixels_only), ray.put(backbone)
    batches = [{"shard": s, "start": p[0], "stop": p[-1] + 1} for s, p in plan_batches(n, todo, shard_size, batch_size)]
    ds = ray.data.from_items(batches, override_num_blocks=len(todo))  # one block per shard: a task's unit of retry
    # max_calls=0 is Ray's default for CPU tasks (a worker runs any number of them), said explicitly so the remote
    # arguments differ from the actors': Ray Data would otherwise fuse decoding into the model's actors on CPU
    # clusters, leaving the other CPUs idle. A decoding task whose worker dies is retried by Ray (3 times).
    ds = ds.map_batches(decode_batches, batch_size=1, num_cpus=1, max_calls=0,
                        fn_kwargs={"dataset_ref": [dataset_ref], "backbone_ref": [light_ref]})
    ds = ds.map_batches(Embedder, batch_size=None, compute=ray.data.ActorPoolStrategy(size=plan.actors),
                        num_cpus=plan.num_cpus, num_gpus=plan.num_gpus,
                        fn_constructor_kwargs={"backbone_ref": [backbone_ref], "device": device,
                                               "precision": precision, "threads": plan.threads, "compile": compile})
    # (Ray Data restarts a dead actor and retries its batches by default: max_restarts=-1, max_task_retries=-1)
    pending: dict[int, _Shard] = {}
    engine = None
    computed, t0 = 0, time.perf_counter()
    with progress_bar("extracting (ray)", enabled=progress, fields="{task.fields[rate]} img/s") as bar:
        task = bar.add_task("extract", total=n, completed=n - sum(bounds[s][1] - bounds[s][0] for s in todo),
                            rate="-")
        for rows in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2):
            fresh = 0
            for i, pos in enumerate(rows["position"].tolist()):
                s, reason = int(rows["shard"][i]), str(rows["reason"][i])
                if s in done or pos in pending.setdefault(s, _Shard()).rows:
                    continue  # a batch Ray ran twice (a retried task): its first copy counts
                acc = pending[s]
                fresh += 1
                if reason:
                    if strict:
                        raise DinoscopeError(f"cannot read {dataset.origins[pos]}: {reason} "
                                             "(drop --strict to skip unreadable images)")
                    warn(f"skipped {dataset.ids[pos]}: {reason}")
                perceptual = str(rows["perceptual"][i])
                acc.rows[pos] = (reason, rows["embedding"][i],
                                 (str(rows["pixel_hash"][i]), None if perceptual == "-" else bytes.fromhex(perceptual)))
                if not reason:
                    stats = per_worker.setdefault(str(rows["worker"][i]), [0, 0.0])
                    stats[0] += 1
                    stats[1] += float(rows["seconds"][i])
                    engine = str(rows["engine"][i])
                start, stop = bounds[s]
                if len(acc.rows) == stop - start:
                    path = shard_path(shard_dir, s)
                    acc.write(path, start, stop, dim, dataset.ids)
                    done[s] = load_shard(path, start, stop, dim)
                    del pending[s]
            computed += fresh
            bar.update(task, advance=fresh, rate=f"{computed / (time.perf_counter() - t0):.1f}")
    missing = [s for s in todo if s not in done]
    if missing:
        raise DinoscopeError(f"Ray returned no rows for {len(missing)} shard(s) ({missing[:5]}); rerun to compute them")
    return engine


def _summary(computed: int, seconds: float, per_worker: dict[str, list[float]]) -> str:
    """The final line: the whole run's rate and each model worker's (images over its own forward time)."""
    parts = [f"{name} {int(k)} images at {k / s:.1f} img/s" if s > 0 else f"{name} {int(k)} images"
             for name, (k, s) in sorted(per_worker.items())]
    return (f"ray: {computed} items in {seconds:.1f}s ({computed / seconds:.1f} img/s) on {len(per_worker)} "
            f"model worker(s): " + "; ".join(parts or ["none"]))


__all__ = ["INSTALL", "Embedder", "Plan", "decode_batches", "extract_ray", "import_ray",
           "ray_session", "resource_plan"]
