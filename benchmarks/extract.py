"""Extraction speed and faithfulness: the seeds' recipe vs dinoscope's `extract`, in one run.

(a) the seeds' recipe: timm model in fp32, each image resized alone with PIL through torchvision
    (Resize bicubic, ToTensor, Normalize) in a plain loop, batched `forward_features(x)[:, 0]`;
(b) `dinoscope.embed.extract` (batched resize, bf16 autocast where native, prefetch thread).
Both use the same random-weight ViT on sklearn digits upscaled to 32x32 and colour-mapped to RGB.
Also prints the machine's ceiling: peak matmul FLOP/s in (b)'s precision / model FLOPs per image.

    .venv/bin/python benchmarks/extract.py --n 1000 --batch-size 64
"""

from __future__ import annotations

import tempfile

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from dinoscope.compute import physical_cores
from dinoscope.embed.backbones import build_backbone
from dinoscope.embed.extract import extract
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
    """FLOPs of one image through forward_features, counted by torch (matmuls, attention, conv)."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.forward_features(torch.randn(1, 3, res, res))
    return counter.get_total_flops() / 1e9


def main() -> None:
    """Run both pipelines on the same images and print the table."""
    p = make_parser(__doc__)
    p.add_argument("--n", type=int, default=2000, help="images")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=None, help="default: physical cores")
    p.add_argument("--model", default="dino-vits16")
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--seeds-n", type=int, default=None, help="images for the (slow) seeds' recipe; default n")
    args = p.parse_args()

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
