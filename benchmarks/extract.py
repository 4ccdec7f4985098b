"""Extraction speed and faithfulness: the seeds' recipe vs dinoscope's `extract`, in one run.

Model mode (default):
(a) the seeds' recipe: timm model in fp32, each image resized alone with PIL through torchvision
    (Resize bicubic, ToTensor, Normalize) in a plain loop, batched `forward_features(x)[:, 0]`;
(b) `dinoscope.embed.extract` (what the hardware chooses: precision, threads, batching, prefetch).
Both use the same random-weight ViT on sklearn digits upscaled to 32x32 and colour-mapped to RGB.
Also prints the machine's ceiling: its measured peak matmul FLOP/s in (b)'s precision over the model's FLOPs per
image, attention's matmuls included (counted with timm's unfused attention; the fused kernel is not counted).

Photo mode (`--photos N`): N JPEG photos of a few megapixels (scikit-learn's two sample photos, cropped, flipped
and upscaled to `--megapixels`, quality 90) in a folder; (c) a hand-written loop (PIL open, convert to RGB,
resize bicubic to the model's input, normalise, fp32 timm forward in batches) against (d) the `dinoscope
extract` command, timed by the wall clock with its start-up, on the same weights (saved to a file for `--weights`).

    .venv/bin/python benchmarks/extract.py --n 1000 --batch-size 64
    .venv/bin/python benchmarks/extract.py --photos 400              # the photo folder against a plain loop
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from dinoscope.compute import physical_cores
from dinoscope.embed.backbones import build_backbone
from dinoscope.embed.extract import extract
from dinoscope.rundir.artifacts import EMBEDDINGS, read_embeddings
from dinoscope.sources.base import Dataset

from _common import best_of, make_parser, print_columns, timed


def digit_images(n: int) -> np.ndarray:
    """n RGB uint8 32x32 images: sklearn digits cycled, upscaled 4x and colour-mapped (viridis)."""
    from matplotlib import colormaps
    from sklearn.datasets import load_digits

    digits = load_digits().images / 16.0
    digits = np.kron(digits, np.ones((4, 4)))[np.arange(n) % len(digits)]
    return (colormaps["viridis"](digits)[..., :3] * 255).round().astype(np.uint8)


def seeds_recipe(model: torch.nn.Module, images: np.ndarray, res: int, mean, std, batch_size: int) -> np.ndarray:
    """The seeds' recipe: PIL resize per image in a loop, fp32 batched forward, cls token."""
    from PIL import Image
    from torchvision import transforms

    tf = transforms.Compose([
        transforms.Resize(res, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])
    out = []
    with torch.no_grad():
        for b in range(0, len(images), batch_size):
            x = torch.stack([tf(Image.fromarray(im)) for im in images[b:b + batch_size]])
            out.append(model.forward_features(x)[:, 0].numpy())
    return np.concatenate(out)


def peak_matmul_gflops(dtype: torch.dtype, size: int = 2048, reps: int = 10) -> float:
    """Best-of-`reps` GFLOP/s of a size^3 matmul (1 multiply-add = 2 FLOPs)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    _, best = best_of(lambda: a @ b, reps, warmup=3)
    return 2 * size**3 / best / 1e9


def model_gflops(model: torch.nn.Module, res: int) -> float:
    """FLOPs of one image through forward_features, counted by torch (matmuls, attention, conv).

    timm's fused attention is one kernel the counter does not see on the CPU, so attention is switched to its
    plain matmuls (q k^T, then by v) while counting.
    """
    fused = [m for m in model.modules() if hasattr(m, "fused_attn")]
    before = [m.fused_attn for m in fused]
    try:
        for m in fused:
            m.fused_attn = False
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model.forward_features(torch.randn(1, 3, res, res))
    finally:
        for m, was in zip(fused, before, strict=True):
            m.fused_attn = was
    return counter.get_total_flops() / 1e9


def write_photos(folder: Path, n: int, megapixels: float, seed: int) -> None:
    """n JPEG photos of about `megapixels`: random crops (half to all of each side) of scikit-learn's two sample
    photos, flipped at random, upscaled bicubically to 4:3 (landscape or portrait), saved at quality 90."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    sources = load_sample_images().images
    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    for i in range(n):
        src = sources[i % len(sources)]
        h, w = (int(s * rng.uniform(0.5, 1.0)) for s in src.shape[:2])
        top, left = rng.integers(0, src.shape[0] - h + 1), rng.integers(0, src.shape[1] - w + 1)
        crop = src[top:top + h, left:left + w][:, ::-1 if rng.random() < 0.5 else 1]
        size = (width, width * 3 // 4) if i % 4 else (width * 3 // 4, width)
        Image.fromarray(np.ascontiguousarray(crop)).resize(size, Image.Resampling.BICUBIC).save(
            folder / f"photo_{i:05d}.jpg", quality=90)


def plain_loop(model: torch.nn.Module, paths: list[Path], res: int, mean, std, batch_size: int) -> np.ndarray:
    """The hand-written loop: PIL decode, RGB, bicubic resize to res x res, normalise, fp32 batched forward."""
    from PIL import Image

    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    out = []
    with torch.no_grad():
        for b in range(0, len(paths), batch_size):
            pixels = [np.asarray(Image.open(p).convert("RGB").resize((res, res), Image.Resampling.BICUBIC))
                      for p in paths[b:b + batch_size]]
            x = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float() / 255
            out.append(model.forward_features((x - m) / s)[:, 0].numpy())
    return np.concatenate(out)


def photo_mode(args) -> None:
    """The photo folder: the hand-written loop against the `dinoscope extract` command (wall clock)."""
    threads = args.threads or physical_cores()
    torch.set_num_threads(threads)
    bb = build_backbone(args.model, random_weights=True, resolution=args.resolution)
    with tempfile.TemporaryDirectory() as tmp:
        folder, weights, run = Path(tmp) / "photos", Path(tmp) / "weights.pth", Path(tmp) / "run"
        folder.mkdir()
        _, t_make = timed(lambda: write_photos(folder, args.photos, args.megapixels, 0))
        torch.save(bb.model.state_dict(), weights)
        paths = sorted(folder.glob("*.jpg"))
        mb = sum(p.stat().st_size for p in paths) / 1e6
        cmd = [sys.executable, "-m", "dinoscope", "extract", "--source", str(folder), "--model", args.model,
               "--weights", str(weights), "--resolution", str(args.resolution), "--out", str(run), "--quiet"]
        _, t_cli = timed(lambda: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL))
        theirs, t_loop = timed(lambda: plain_loop(bb.model, paths, args.resolution, bb.mean, bb.std,
                                                  args.batch_size))
        ours = read_embeddings(run / EMBEDDINGS).vectors
    cos = (theirs * ours).sum(1) / np.linalg.norm(theirs, axis=1) / np.linalg.norm(ours, axis=1)
    print(f"{bb.name} at {args.resolution}px, random weights; {len(paths)} JPEG photos of "
          f"{args.megapixels:g} MP ({mb:.0f} MB, written in {t_make:.0f} s); {threads} threads, "
          f"torch {torch.__version__}")
    print_columns(["", "images/s", "seconds"], [40, 10, 9], [
        ["(c) hand-written loop (PIL + timm, fp32)", f"{len(paths) / t_loop:.2f}", f"{t_loop:.1f}"],
        ["(d) dinoscope extract (CLI, start-up in)", f"{len(paths) / t_cli:.2f}", f"{t_cli:.1f}"]])
    print(f"speed-up (d)/(c)                        {t_loop / t_cli:10.2f}x")
    print(f"cosine (c) vs (d): mean {cos.mean():.5f}, min {cos.min():.5f}")


def main() -> None:
    """Run both pipelines on the same images and print the table."""
    p = make_parser(__doc__)
    p.add_argument("--n", type=int, default=2000, help="images")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=None, help="default: physical cores")
    p.add_argument("--model", default="dino-vits16")
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--seeds-n", type=int, default=None, help="images for the (slow) seeds' recipe; default n")
    p.add_argument("--photos", type=int, default=0, help="photo mode: this many JPEG photos against a plain loop")
    p.add_argument("--megapixels", type=float, default=4.3, help="photo mode: size of each photo")
    args = p.parse_args()
    if args.photos:
        photo_mode(args)
        return

    threads = args.threads or physical_cores()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    bb = build_backbone(args.model, random_weights=True, resolution=args.resolution)
    images = digit_images(args.n)
    ds = Dataset("digits", [str(i) for i in range(args.n)], ["-"] * args.n, None, None, "bench",
                 read=lambda i: images[i])

    with tempfile.TemporaryDirectory() as tmp:
        res = extract(ds, bb, tmp, batch_size=args.batch_size, threads=threads, progress=False)
    torch.set_num_threads(threads)
    n_seed = args.seeds_n or args.n
    seeds, seconds = timed(lambda: seeds_recipe(bb.model, images[:n_seed], args.resolution, bb.mean, bb.std,
                                                args.batch_size))
    seeds_ips = n_seed / seconds

    ours = res.embeddings[:n_seed]
    cos = (seeds * ours).sum(1) / np.linalg.norm(seeds, axis=1) / np.linalg.norm(ours, axis=1)
    dtype = torch.bfloat16 if res.precision == "bf16" else torch.float32
    peak = peak_matmul_gflops(dtype)
    gflop = model_gflops(bb.model, args.resolution)
    ceiling = peak / gflop

    print(f"{bb.name} at {args.resolution}px, random weights, {args.n} images (seeds' recipe on {n_seed}), "
          f"batch {args.batch_size}, {threads} threads, torch {torch.__version__}")
    print_columns(["", "images/s"], [34, 10], [["(a) seeds recipe (PIL loop, fp32)", f"{seeds_ips:.2f}"],
                                               [f"(b) dinoscope extract ({res.precision})", f"{res.images_per_s:.2f}"]])
    print(f"speed-up (b)/(a)                  {res.images_per_s / seeds_ips:10.2f}x")
    print(f"cosine (a) vs (b): mean {cos.mean():.5f}, min {cos.min():.5f}")
    print(f"model: {gflop:.2f} GFLOP/image; peak {res.precision} matmul (2048^3): {peak:.0f} GFLOP/s")
    print(f"ceiling {ceiling:.1f} images/s; dinoscope reaches {100 * res.images_per_s / ceiling:.0f}% of it")


if __name__ == "__main__":
    main()
