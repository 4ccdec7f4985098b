"""Extraction: shapes, determinism, resume bit-identity, unreadable items, mixed sizes, precision."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from PIL import Image

from dinoscope.embed.backbones import build_backbone
from dinoscope.embed.extract import extract
from dinoscope.embed.shards import shard_path
from dinoscope.embed.transforms import preprocess
from dinoscope.errors import DinoscopeError
from dinoscope.hashing import image_hashes
from dinoscope.sources.base import Dataset, UnreadableImage

N = 40
CORRUPT = 13
EPS32 = np.finfo(np.float32).eps  # 1.2e-7
BF16_EPS = 2.0**-7  # 7.8e-3

# How far two float32 runs of the 12-block ViT-S may drift apart when only the batching differs: other batch
# sizes block the matmuls differently, so their sums (up to 1536 terms) round in another order, ~sqrt(1536) eps32
# of the activations each; summed over the 24 half-blocks (attention, MLP) ≈ 1e-4 of the embeddings' scale (they
# leave through a LayerNorm: rms 1).
BATCHING_DRIFT = 24 * np.sqrt(1536) * EPS32


def drift_bound(embeddings: np.ndarray) -> float:
    return BATCHING_DRIFT * float(np.sqrt((embeddings.astype(np.float64) ** 2).mean()))


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    return build_backbone("dino-vits16", random_weights=True, resolution=32)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (N, 6, 6, 3), dtype=np.uint8)
    return np.repeat(np.repeat(base, 4, axis=1), 4, axis=2)  # 24x24 with some structure


def make_dataset(images, corrupt=(CORRUPT,), crash_at=None, log=None):
    """A dataset over an in-memory array; `corrupt` items are unreadable, `crash_at` aborts the run."""

    def read(i):
        if log is not None:
            log.append(i)
        if i == crash_at:
            raise RuntimeError("killed")
        if i in corrupt:
            raise UnreadableImage("truncated file")
        return images[i]

    n = len(images)
    return Dataset(
        name="mem", ids=[f"mem:{i}" for i in range(n)], origins=[f"/data/{i}.png" for i in range(n)],
        labels=None, splits=None, fingerprint="mem", read=read,
    )


def run(ds, backbone, shard_dir, **kw):
    kw = {"batch_size": 4, "shard_size": 8, "progress": False, **kw}
    return extract(ds, backbone, shard_dir, **kw)


def same(a, b):
    assert a.embeddings.tobytes() == b.embeddings.tobytes()
    assert a.index.tobytes() == b.index.tobytes()
    assert a.failures == b.failures
    assert a.pixel_hashes == b.pixel_hashes and a.perceptual_hashes == b.perceptual_hashes  # resumed shards keep them


def test_shapes_index_and_failures(tmp_path, images, backbone):
    res = run(make_dataset(images), backbone, tmp_path, precision="fp32")
    assert res.embeddings.shape == (N - 1, 384) and res.embeddings.dtype == np.float32
    assert res.index.dtype == np.int64 and res.index.tolist() == [i for i in range(N) if i != CORRUPT]
    assert res.failures == [(CORRUPT, f"mem:{CORRUPT}", "truncated file")]
    assert res.precision == "fp32" and res.device == "cpu" and res.images_per_s > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"shard-{s:05d}.npz" for s in range(5)]
    assert np.isfinite(res.embeddings).all() and res.embeddings.std(0).mean() > 0
    kept = [images[i] for i in res.index]  # one exact and one perceptual hash per embedding, from the decoded image
    assert res.pixel_hashes == [image_hashes(x)[0] for x in kept] and len(set(res.pixel_hashes)) == N - 1
    assert res.perceptual_hashes == [image_hashes(x)[1] for x in kept] and None not in res.perceptual_hashes


def test_deterministic_across_runs(tmp_path, images, backbone):
    a = run(make_dataset(images), backbone, tmp_path / "a")
    b = run(make_dataset(images), backbone, tmp_path / "b")
    same(a, b)


def test_resume_after_crash_is_bit_identical(tmp_path, images, backbone):
    reference = run(make_dataset(images), backbone, tmp_path / "ref")
    with pytest.raises(RuntimeError, match="killed"):
        run(make_dataset(images, crash_at=27), backbone, tmp_path / "cut")
    left = sorted(p.name for p in (tmp_path / "cut").iterdir())
    assert left == ["shard-00000.npz", "shard-00001.npz", "shard-00002.npz"]  # whole shards only
    log = []
    resumed = run(make_dataset(images, log=log), backbone, tmp_path / "cut")
    assert min(log) == 24  # finished shards were loaded, not recomputed
    same(resumed, reference)
    assert resumed.precision == reference.precision


CHILD = """
import sys, time
import numpy as np
from dinoscope.embed.backbones import build_backbone
from dinoscope.embed.extract import extract
from dinoscope.sources.base import Dataset
images = np.load(sys.argv[1])
def read(i):
    time.sleep(0.05)
    return images[i]
ds = Dataset("mem", [str(i) for i in range(len(images))], ["-"] * len(images), None, None, "m", read=read)
bb = build_backbone("dino-vits16", weights=sys.argv[2], resolution=32)
extract(ds, bb, sys.argv[3], batch_size=4, shard_size=8, progress=False)
"""


def test_resume_after_sigkill_is_bit_identical(tmp_path, images, backbone):
    np.save(tmp_path / "images.npy", images)
    torch.save(backbone.model.state_dict(), tmp_path / "w.pt")
    shards = tmp_path / "shards"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CHILD), str(tmp_path / "images.npy"),
                              str(tmp_path / "w.pt"), str(shards)])
    deadline = time.monotonic() + 60
    while not shard_path(shards, 1).exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    done = sorted(p.name for p in shards.iterdir() if p.suffix == ".npz")
    assert 2 <= len(done) < 5, done  # killed mid-run, after some shards were written
    resumed = run(make_dataset(images, corrupt=()), backbone, shards)
    reference = run(make_dataset(images, corrupt=()), backbone, tmp_path / "ref")
    same(resumed, reference)


def test_resume_with_other_shard_size_refuses(tmp_path, images, backbone):
    run(make_dataset(images), backbone, tmp_path)
    with pytest.raises(DinoscopeError, match="other settings"):
        run(make_dataset(images), backbone, tmp_path, shard_size=16)


def test_strict_names_the_file(tmp_path, images, backbone):
    with pytest.raises(DinoscopeError, match=f"/data/{CORRUPT}.png"):
        run(make_dataset(images), backbone, tmp_path, strict=True)
    assert not shard_path(tmp_path, 1).exists()


def test_all_unreadable_batch_is_fine(tmp_path, images, backbone):
    res = run(make_dataset(images, corrupt=range(8, 16)), backbone, tmp_path)
    assert len(res.failures) == 8 and len(res.index) == N - 8 and 8 not in res.index


def test_mixed_sizes_in_one_batch_match_single_image_runs(tmp_path, images, backbone):
    rng = np.random.default_rng(1)
    mixed = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(24, 24, 3), (40, 30, 3), (32, 32, 3)]]
    ds = Dataset("mix", ["a", "b", "c"], ["a", "b", "c"], None, None, "mix", read=lambda i: mixed[i])
    res = run(ds, backbone, tmp_path / "mix", precision="fp32")
    for i, im in enumerate(mixed):
        one = Dataset("one", ["x"], ["x"], None, None, "one", read=lambda _i, im=im: im)
        single = run(one, backbone, tmp_path / f"one{i}", precision="fp32")
        np.testing.assert_allclose(res.embeddings[i], single.embeddings[0], rtol=0, atol=drift_bound(res.embeddings))


def test_preprocess_matches_pil_bicubic_then_normalize(images, backbone):
    x = preprocess(torch.from_numpy(images[:4]), backbone)
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    mean, std = np.array(backbone.mean), np.array(backbone.std)
    for im, got in zip(images[:4], x, strict=True):
        pil = np.asarray(Image.fromarray(im).resize((32, 32), Image.BICUBIC), dtype=np.float32) / 255
        want = ((pil - mean) / std).transpose(2, 0, 1)
        # PIL rounds both of its 8-bit passes (half a grey level each, the first spread by the second pass's
        # bicubic weights, Σ|w| < 1.3): at most ~1.2 levels; 2.5 levels leave room for its fixed-point weights
        assert np.abs(got.numpy() - want).max() <= 2.5 / 255 / min(std)


def test_bf16_close_to_fp32(tmp_path, images, backbone):
    a = run(make_dataset(images), backbone, tmp_path / "a", precision="fp32")
    b = run(make_dataset(images), backbone, tmp_path / "b", precision="bf16")
    assert b.precision == "bf16"
    cos = (a.embeddings * b.embeddings).sum(1) / np.linalg.norm(a.embeddings, axis=1) / np.linalg.norm(
        b.embeddings, axis=1
    )
    # bf16 rounds every matmul's inputs to 8 bits (BF16_EPS/2 relative) and accumulates in float32, whatever the CPU
    # (AVX512-BF16, AMX, or emulated): over 24 half-blocks the embeddings drift by ~sqrt(24)·BF16_EPS/2 ≈ 2 % as
    # vectors, typically (1 - cos ≈ 2e-4). Allow seven times that, 18 BF16_EPS = 0.14: cos > 1 - 0.14²/2 ≈ 0.99.
    assert cos.min() > 1 - (18 * BF16_EPS) ** 2 / 2
    assert not np.array_equal(a.embeddings, b.embeddings)


def test_precomputed_dataset_is_rejected(tmp_path, backbone):
    ds = Dataset("emb", ["a"], ["a"], None, None, "e", embeddings=np.zeros((1, 3), np.float32))
    with pytest.raises(DinoscopeError, match="precomputed"):
        run(ds, backbone, tmp_path)


def test_image_embedder_matches_extraction(backbone, images, tmp_path):
    from dinoscope.embed.extract import image_embedder

    res = run(make_dataset(images, corrupt=()), backbone, tmp_path / "s", precision="fp32")
    embed = image_embedder(backbone, precision="fp32", batch_size=16)
    got = embed([images[i] for i in range(N)])
    assert got.shape == res.embeddings.shape
    # batches of 16 against extraction's 4: the float32 batching drift, of the embeddings' scale (not each entry's)
    np.testing.assert_allclose(got, res.embeddings, rtol=0, atol=drift_bound(res.embeddings))


def test_large_jpegs_are_decoded_reduced_and_embed_alike(tmp_path, backbone):
    from sklearn.datasets import load_sample_image

    from dinoscope.sources import load_source

    photo = Image.fromarray(load_sample_image("flower.jpg"))
    for i, box in enumerate([(0, 0, 640, 427), (100, 50, 500, 400), (200, 0, 640, 300), (0, 100, 320, 427)]):
        photo.crop(box).resize((1280, 960), Image.Resampling.BICUBIC).save(tmp_path / f"p{i}.jpg", quality=90)
    ds = load_source(str(tmp_path))
    seen = []
    full = Dataset(ds.name, ds.ids, ds.origins, None, None, "full", read=lambda i: seen.append(i) or ds.read(i))
    reduced = run(ds, backbone, tmp_path / "reduced", precision="fp32")
    whole = run(full, backbone, tmp_path / "whole", precision="fp32")
    assert seen == [0, 1, 2, 3] and ds.reader(backbone.resolution)(0).shape == (120, 160, 3)  # 1/8, >= 2 x 32
    cos = (reduced.embeddings * whole.embeddings).sum(1) / np.linalg.norm(reduced.embeddings, axis=1) / np.linalg.norm(
        whole.embeddings, axis=1)
    assert cos.min() > 0.999 and not np.array_equal(reduced.embeddings, whole.embeddings)


def test_bf16_runs_a_cast_copy_and_leaves_the_fp32_model(backbone):
    from dinoscope.embed.inference import cast_backbone

    cast = cast_backbone(backbone, torch.device("cpu"), "bf16")
    assert next(cast.model.parameters()).dtype == torch.bfloat16
    assert next(backbone.model.parameters()).dtype == torch.float32  # export and parity still see fp32
    assert cast_backbone(backbone, torch.device("cpu"), "fp32").model is backbone.model


def test_failed_compile_falls_back_to_eager_with_one_warning(backbone, images, monkeypatch, capsys):
    from dinoscope.embed import inference

    def broken(fn, **kw):
        def run(x):
            raise RuntimeError("no C++ compiler found\nmore detail")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    forward = inference.forward_function(backbone, torch.device("cpu"), "fp32", compile=True)
    x = preprocess(torch.from_numpy(images[:5]), backbone)
    with torch.inference_mode():
        want, want3 = backbone.embed(x).numpy(), backbone.embed(x[:3]).numpy()
    np.testing.assert_array_equal(forward(x), want)
    np.testing.assert_array_equal(forward(x[:3]), want3)
    err = capsys.readouterr().err
    assert err.count("torch.compile failed (no C++ compiler found); running eager") == 1


@pytest.mark.slow
def test_compiled_extraction_matches_eager(tmp_path, images, backbone, capsys):
    from dinoscope.embed.inference import use_compile

    assert use_compile(None, torch.device("cpu")) is False and use_compile(None, torch.device("cuda")) is True
    eager = run(make_dataset(images), backbone, tmp_path / "e", precision="fp32", compile=False)
    compiled = run(make_dataset(images), backbone, tmp_path / "c", precision="fp32", compile=True)
    same_index = eager.index.tobytes() == compiled.index.tobytes()
    # batches of 4, the last shard's padded to 4: inductor fuses and reorders float32 sums, so the embeddings
    # drift like another batching does (not bit-identical)
    assert same_index and compiled.failures == eager.failures
    assert "torch.compile failed" not in capsys.readouterr().err  # compiled for real (make test installs g++)
    np.testing.assert_allclose(compiled.embeddings, eager.embeddings, rtol=0, atol=drift_bound(eager.embeddings))


@pytest.mark.parametrize("amx, avx512_bf16, pays, want", [
    (True, True, False, "bf16"),  # AMX: bf16 without asking
    (False, True, True, "bf16"),  # AVX512-BF16 measured faster
    (False, True, False, "fp32"),  # AVX512-BF16 measured no faster (this session's VM: half of fp32)
    (False, False, True, "fp32"),  # no native bf16: never
])
def test_auto_precision_follows_the_hardware_and_its_measured_speed(monkeypatch, amx, avx512_bf16, pays, want):
    from dinoscope import compute

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(compute, "bf16_pays", lambda: pays)
    assert compute.resolve_precision("auto", torch.device("cpu")) == want
    assert compute.resolve_precision("fp32", torch.device("cpu")) == "fp32"


def test_bf16_measurement_is_a_yes_or_no_taken_once():
    from dinoscope.compute import bf16_pays

    first = bf16_pays()
    hits = bf16_pays.cache_info().hits
    assert first in (True, False) and bf16_pays() == first and bf16_pays.cache_info().hits == hits + 1


def test_matmul_rates_are_measured_once_per_machine_and_kept(tmp_path, monkeypatch):
    """A later process reads the first one's figures, so 'auto' cannot flip between a run and its resume."""
    from dinoscope import compute

    monkeypatch.setenv("DINOSCOPE_CACHE", str(tmp_path))
    calls = []

    def rate(dtype):
        calls.append(dtype)
        return 3.0 if dtype == torch.bfloat16 else 2.0

    monkeypatch.setattr(compute, "_matmul_rate", rate)
    first = compute.machine_rates()
    assert first == {"bf16": 3.0, "fp32": 2.0} and len(calls) == 2
    (record,) = (tmp_path / "machine").glob("matmul-*.json")
    assert not list((tmp_path / "machine").glob(".*"))  # no temp file left beside it
    monkeypatch.setattr(compute, "_matmul_rate", lambda dtype: 1 / 0)  # a second measurement would fail
    assert compute.machine_rates() == first
    record.write_text('{"rates": {"bf16": 9.0, "fp32": 2.0}}')  # what is kept decides, whatever this process measures
    compute.bf16_pays.cache_clear()
    try:
        assert compute.bf16_pays() is True
        record.write_text("{not json")  # an unreadable record is measured again and replaced
        monkeypatch.setattr(compute, "_matmul_rate", lambda dtype: 1.0)
        compute.bf16_pays.cache_clear()
        assert compute.bf16_pays() is False and json.loads(record.read_text())["rates"] == {"bf16": 1.0, "fp32": 1.0}
    finally:
        compute.bf16_pays.cache_clear()


def test_matmul_rates_serve_the_process_where_the_cache_is_not_writable(tmp_path, monkeypatch):
    from dinoscope import compute

    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("DINOSCOPE_CACHE", str(blocker))  # a file where the folder should be
    monkeypatch.setattr(compute, "_matmul_rate", lambda dtype: 2.0)
    assert compute.machine_rates() == {"bf16": 2.0, "fp32": 2.0}
