"""The Ray engine's cost on one node, and a scaling model for N workers: local `extract` against `extract_ray`.

The same folder of JPEGs (scikit-learn's two sample photos cropped, flipped and resized to `--side` pixels), the same
random-weight ViT-S/16 at `--resolution`, the same batches and shards. It measures:
(a) the local engine (two batches side by side, one thread each, decoding in a background thread);
(b) a local Ray instance with as many CPUs as the machine: its start, then `extract_ray` with a few actor layouts
    (actors x torch threads each), every run including its actors' start;
and the per-stage rates the scaling model needs: one model worker's images/s over its own forward time (from the
run), decoding + preprocessing per CPU (`prepare_batch` on one thread), and the driver's folding and shard writing.

    .venv/bin/python benchmarks/ray_extract.py --n 512
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dinoscope.embed.backbones import build_backbone
from dinoscope.embed.extract import extract, prepare_batch
from dinoscope.embed.ray_engine import _Shard, extract_ray, import_ray
from dinoscope.sources import load_source

from _common import make_parser, print_columns, timed


def photo_folder(root: Path, n: int, side: int) -> Path:
    """n JPEG photos of side x side pixels (quality 90) cut from scikit-learn's sample photos."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = photos[i % len(photos)]
        h, w = img.shape[:2]
        y, x = rng.integers(0, h // 3), rng.integers(0, w // 3)
        crop = img[y:y + 2 * h // 3, x:x + 2 * w // 3][:, ::-1 if i % 2 else 1]
        Image.fromarray(np.ascontiguousarray(crop)).resize((side, side), Image.BICUBIC).save(
            root / f"{i:05d}.jpg", quality=90)
    return root


def decode_rate(dataset, backbone, batch_size: int, n: int) -> float:
    """Images/s that one CPU decodes, hashes and preprocesses (what a Ray decoding task does)."""
    torch.set_num_threads(1)
    positions = list(range(min(n, len(dataset))))
    _, seconds = timed(lambda: [prepare_batch(dataset, backbone, 0, positions[i:i + batch_size], False)
                                for i in range(0, len(positions), batch_size)])
    torch.set_num_threads(os.cpu_count() or 1)
    return len(positions) / seconds


def driver_rate(dim: int, shard_size: int, shards: int, folder: Path) -> float:
    """Rows/s the driver folds into shards and writes (embeddings of `dim` floats, hashes), without Ray."""
    rng = np.random.default_rng(0)
    ids = [f"x{i}" for i in range(shard_size * shards)]
    vectors = rng.standard_normal((shard_size * shards, dim)).astype(np.float32)
    t0 = time.perf_counter()
    for s in range(shards):
        acc = _Shard()
        for pos in range(s * shard_size, (s + 1) * shard_size):
            acc.rows[pos] = ("", vectors[pos], (f"{pos:032x}", bytes(8)))
        acc.write(folder / f"shard-{s:05d}.npz", s * shard_size, (s + 1) * shard_size, dim, ids)
    return shard_size * shards / (time.perf_counter() - t0)


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--n", type=int, default=512, help="images")
    parser.add_argument("--side", type=int, default=320, help="pixels of each JPEG's side")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--shard-size", type=int, default=128)
    parser.add_argument("--layouts", default="1x1,1x2,2x1", help="Ray layouts: actors x threads, comma-separated")
    parser.add_argument("--worker-rate", type=float, default=None,
                        help="model workers of this many images/s (a GPU's, measured elsewhere) with 8 decoding "
                             "CPUs each, instead of this machine's CPU workers")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    dataset = load_source(str(photo_folder(tmp / "photos", args.n, args.side)))
    backbone = build_backbone("dino-vits16", random_weights=True, resolution=args.resolution)
    plan = dict(batch_size=args.batch_size, shard_size=args.shard_size, progress=False)

    local, t_local = timed(lambda: extract(dataset, backbone, tmp / "local", **plan))
    rows = [("(a) local engine", f"{args.n / t_local:.1f}", "1.00x", f"{t_local:.1f}", local.precision)]

    ray = import_ray()
    _, t_init = timed(lambda: ray.init(include_dashboard=False, log_to_driver=False))
    per_worker = {}
    try:
        for layout in args.layouts.split(","):
            actors, threads = (int(v) for v in layout.split("x"))
            res, t = timed(lambda a=actors, th=threads, name=layout: extract_ray(
                dataset, backbone, tmp / f"ray-{name}", workers=a, threads=th, **plan))
            cos = (res.embeddings * local.embeddings).sum(1) / (
                np.linalg.norm(res.embeddings, axis=1) * np.linalg.norm(local.embeddings, axis=1))
            busy = {w: k / s for w, (k, s) in res.workers.items() if s > 0}
            per_worker[layout] = (actors, threads, float(np.mean(list(busy.values()))))
            rows.append((f"(b) ray {actors} actor(s) x {threads} thread(s)", f"{args.n / t:.1f}",
                         f"{t_local / t:.2f}x", f"{t:.1f}", f"{res.precision}, cos min {cos.min():.6f}"))
    finally:
        ray.shutdown()

    print(f"{args.n} JPEGs of {args.side}x{args.side} px, ViT-S/16 at {args.resolution} px (random weights), "
          f"batches of {args.batch_size}, shards of {args.shard_size}; {os.cpu_count()} CPUs")
    print(f"ray.init (a local instance, no dashboard): {t_init:.1f} s (not in the runs below)")
    print_columns(["engine", "images/s", "vs (a)", "seconds", "precision, agreement with (a)"], [36, 10, 8, 9, 34],
                  rows)

    decode = decode_rate(dataset, backbone, args.batch_size, min(args.n, 256))
    driver = driver_rate(backbone.embed_dim, args.shard_size, 8, tmp)
    print()
    print("per-stage rates (the scaling model's inputs)")
    for layout, (_, threads, rate) in per_worker.items():
        print(f"  model worker, {threads} thread(s) ({layout}): {rate:.1f} images/s of its own forward time")
    print(f"  decoding + preprocessing: {decode:.1f} images/s per CPU")
    print(f"  driver (fold rows, write shards of {backbone.embed_dim}-D): {driver:,.0f} rows/s")
    best = max(per_worker.values(), key=lambda v: v[2] / v[1])
    per_core = best[2] / best[1]
    worker_rate = args.worker_rate or 8 * per_core
    print()
    print("scaling model: images/s = min(N x worker rate, decoding CPUs x decode rate, driver rate)")
    if args.worker_rate:
        print(f"  (workers of {worker_rate:.0f} images/s as given, 8 decoding CPUs each)")
    else:
        print(f"  (CPU workers of 8 threads at {per_core:.1f} images/s per thread, measured here, each node keeping as "
              "many CPUs for decoding)")
    model_rows = []
    for n in (1, 2, 4, 8, 16, 64, 256):
        workers = n * worker_rate
        decoders = n * 8 * decode
        total = min(workers, decoders, driver)
        bound = "workers" if total == workers else "decoding" if total == decoders else "driver"
        model_rows.append((str(n), f"{workers:,.0f}", f"{decoders:,.0f}", f"{total:,.0f}", bound,
                           f"{1e7 / total / 3600:.1f}"))
    print_columns(["N", "workers", "decoding", "images/s", "bound by", "h per 10M"], [6, 12, 12, 12, 10, 11],
                  model_rows)


if __name__ == "__main__":
    main()
