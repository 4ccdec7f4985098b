"""Exported extractor and HTTP service speed: eager PyTorch vs TorchScript vs ONNX Runtime, and `dinoscope serve`
with request batching vs without.

Part 1 runs the export module (resize + normalise + ViT + pooling, fp32) on CPU at batch 32 through eager PyTorch,
the TorchScript file and the ONNX Runtime session that `dinoscope export` writes. The backbone is a real-size
DINO ViT-S/16 at 224 px with RANDOM weights (speed does not depend on the weights; nothing is downloaded).

Part 2 makes a small run (digits, the same random-weights ViT-S/16), starts `dinoscope serve` on loopback twice
(micro-batching on, then `--max-batch 1`), sends a bounded number of POST /embed requests from a fixed number of
concurrent clients, and stops the server itself.

    python benchmarks/serve.py                         # both parts
    python benchmarks/serve.py --skip-http --reps 5    # runtimes only
    python benchmarks/serve.py --requests 400 --clients 16
"""

from __future__ import annotations

import argparse
import asyncio
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dinoscope.deploy.export import load_exported, save_onnx, save_torchscript
from dinoscope.deploy.model import EMBEDDINGS, ExportModel, Signature
from dinoscope.embed.backbones import build_backbone

from _common import best_of, free_port, make_parser, print_columns


def images_per_s(run, images, reps: int) -> float:
    """Best-of-`reps` throughput of run(images) after one warm-up call."""
    _, best = best_of(lambda: run(images), reps, warmup=1)
    return len(images) / best


def bench_runtimes(args: argparse.Namespace, workdir: Path) -> None:
    """Images/s of eager, TorchScript and ONNX Runtime on one batch of uint8 images."""
    backbone = build_backbone("dino-vits16", random_weights=True, resolution=args.resolution)
    model = ExportModel(backbone, {}).eval()
    sig = Signature((EMBEDDINGS,), backbone.embed_dim, backbone.resolution, backbone.name, True)
    save_torchscript(model, sig, workdir / "model.pt")
    save_onnx(model, sig, workdir / "model.onnx")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.batch, args.image_size, args.image_size, 3), dtype=np.uint8)

    def eager(x: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            return [t.numpy() for t in model(torch.from_numpy(x))]

    runners = {"eager PyTorch": eager, "TorchScript": load_exported(workdir / "model.pt"),
               "ONNX Runtime": load_exported(workdir / "model.onnx")}
    want = eager(images)[0]
    rates = {name: images_per_s(run, images, args.reps) for name, run in runners.items()}
    print(f"\n## Exported extractor on CPU ({torch.get_num_threads()} threads), batch {args.batch} of "
          f"{args.image_size}x{args.image_size} uint8 images, {backbone.name} at {args.resolution} px, RANDOM weights")
    table = []
    for name, run in runners.items():
        diff = float(np.abs(run(images)[0] - want).max())
        table.append([name, f"{rates[name]:.1f}", f"{rates[name] / rates['eager PyTorch']:.2f}x", f"{diff:.1e}"])
    print_columns(["runtime", "images/s", "vs eager", "max |diff|"], [16, 10, 10, 12], table)


def make_run(workdir: Path, resolution: int) -> Path:
    """A run of 200 digits with the random-weights ViT-S/16 (extraction only: the service needs nothing else)."""
    from dinoscope.config import settings_from_flags
    from dinoscope.pipeline import run_pipeline

    out = workdir / "run"
    settings = settings_from_flags(source="digits", model="dino-vits16", random_weights=True, resolution=resolution,
                                   limit=200)
    run_pipeline(out, settings, progress=False, stages=("extract",))
    return out


def png_bodies(n: int) -> list[bytes]:
    """PNG files of the first n digits, scaled to 64x64, for the requests."""
    from PIL import Image

    from dinoscope.sources import load_source

    digits = load_source("digits")
    out = []
    for i in range(n):
        buf = io.BytesIO()
        Image.fromarray(digits.read(i)).resize((64, 64)).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


async def load(url: str, bodies: list[bytes], requests: int, clients: int) -> tuple[float, np.ndarray]:
    """(wall seconds, latencies in ms) of `requests` POST /embed calls from `clients` concurrent clients."""
    import httpx

    latencies: list[float] = []
    counter = iter(range(requests))

    async def client(c: httpx.AsyncClient) -> None:
        for i in counter:
            start = time.perf_counter()
            r = await c.post(f"{url}/embed", files={"image": ("d.png", bodies[i % len(bodies)], "image/png")})
            r.raise_for_status()
            latencies.append((time.perf_counter() - start) * 1000)

    async with httpx.AsyncClient(timeout=120) as c:
        start = time.perf_counter()
        await asyncio.gather(*[client(c) for _ in range(clients)])
        return time.perf_counter() - start, np.array(latencies)


def bench_service(run_dir: Path, args: argparse.Namespace, bodies: list[bytes], max_batch: int) -> dict:
    """Start `dinoscope serve` on loopback, warm it up, load it, stop it; its figures."""
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "dinoscope", "serve", str(run_dir), "--port", str(port),
                               "--max-batch", str(max_batch), "--batch-wait-ms", str(args.wait_ms)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while True:
            try:
                httpx.get(f"{url}/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.time() > deadline or server.poll() is not None:
                    raise SystemExit("the service did not start") from None
                time.sleep(0.2)
        asyncio.run(load(url, bodies, args.clients, args.clients))  # warm-up
        seconds, lat = asyncio.run(load(url, bodies, args.requests, args.clients))
        batches = httpx.get(f"{url}/health").json()["batches"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"rps": args.requests / seconds, "p50": float(np.percentile(lat, 50)),
            "p99": float(np.percentile(lat, 99)), "mean_batch": batches["mean_batch_size"]}


def bench_http(args: argparse.Namespace, workdir: Path) -> None:
    """Requests/s and latency of the service with micro-batching, against the same service without it."""
    run_dir = make_run(workdir, args.resolution)
    bodies = png_bodies(50)
    rows = {f"batched (<= {args.max_batch}, {args.wait_ms:g} ms)": bench_service(run_dir, args, bodies,
                                                                                 args.max_batch),
            "unbatched (1)": bench_service(run_dir, args, bodies, 1)}
    peer = rows["unbatched (1)"]["rps"]
    print(f"\n## HTTP service, POST /embed of 64x64 PNGs over loopback: {args.requests} requests from "
          f"{args.clients} concurrent clients; dino-vits16 at {args.resolution} px, RANDOM weights")
    print_columns(["service", "req/s", "p50 ms", "p99 ms", "mean batch", "vs unbatched"], [26, 8, 9, 9, 12, 14],
                  [[name, f"{r['rps']:.1f}", f"{r['p50']:.1f}", f"{r['p99']:.1f}", f"{r['mean_batch']:.1f}",
                    f"{r['rps'] / peer:.2f}x"] for name, r in rows.items()])


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--batch", type=int, default=32, help="images per forward pass in part 1")
    parser.add_argument("--image-size", type=int, default=256, help="input images' side (resized inside)")
    parser.add_argument("--resolution", type=int, default=224, help="the model's input resolution")
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions (best is kept)")
    parser.add_argument("--requests", type=int, default=200, help="requests per service in part 2")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients in part 2")
    parser.add_argument("--max-batch", type=int, default=32, help="the batched service's --max-batch")
    parser.add_argument("--wait-ms", type=float, default=5.0, help="the batched service's --batch-wait-ms")
    parser.add_argument("--skip-runtimes", action="store_true")
    parser.add_argument("--skip-http", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_runtimes:
            bench_runtimes(args, Path(tmp))
        if not args.skip_http:
            bench_http(args, Path(tmp))


if __name__ == "__main__":
    main()
