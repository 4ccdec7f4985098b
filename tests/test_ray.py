"""The Ray engine (`embed/ray_engine.py`) against the local one, on one local Ray instance of 2 CPUs shared by the
module: equal embeddings and failures, a driver SIGKILLed half-way and rerun, a model actor killed mid-run.

Starting Ray costs ~8 s and each run a few seconds of actor start, so the tests are few and each checks much.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dinoscope.embed.backbones import build_backbone
from dinoscope.embed.extract import extract
from dinoscope.embed.ray_engine import import_ray, resource_plan
from dinoscope.errors import DinoscopeError
from dinoscope.rundir import artifacts
from dinoscope.sources import load_source

FAST = dict(batch_size=32, shard_size=64, progress=False)


@pytest.fixture(scope="module")
def ray_address():
    """One local Ray instance (2 CPUs, no dashboard, no usage statistics) for the module; its address."""
    ray = import_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def backbone():
    return build_backbone("dino-vits16", random_weights=True, resolution=32)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """240 small PNGs of three shapes in two labelled folders, plus two files that are no image."""
    root = tmp_path_factory.mktemp("ray") / "images"
    rng = np.random.default_rng(0)
    for label in ("cats", "dogs"):
        (root / label).mkdir(parents=True)
        for i in range(120):
            shape = [(20, 24, 3), (31, 17, 3), (24, 24, 3)][i % 3]
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(root / label / f"{i:03d}.png")
    (root / "dogs" / "050b.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    (root / "cats" / "notes.txt").write_text("not an image")
    return root


def _skipped(text: str) -> list[str]:
    return sorted(" ".join(line.split()) for line in text.splitlines() if "skipped" in line)


@pytest.mark.ray
@pytest.mark.slow
def test_ray_equals_local_with_the_same_failures_fp32_and_bf16(ray_address, backbone, folder, tmp_path, capsys):
    from dinoscope.embed.ray_engine import extract_ray

    dataset = load_source(str(folder))
    local = extract(dataset, backbone, tmp_path / "local", precision="fp32", **FAST)
    local_said = _skipped(capsys.readouterr().err)
    remote = extract_ray(dataset, backbone, tmp_path / "ray", precision="fp32", **FAST)
    out = capsys.readouterr().err
    assert len(local.index) == 240 and len(local.failures) == 2
    np.testing.assert_array_equal(remote.index, local.index)
    assert np.abs(remote.embeddings - local.embeddings).max() <= 1e-4
    assert remote.failures == local.failures  # positions, ids and reasons, in order
    assert _skipped(out) == local_said and len(local_said) == 2  # reported the same way
    assert remote.pixel_hashes == local.pixel_hashes and remote.perceptual_hashes == local.perceptual_hashes
    assert "img/s" in out and "model worker" in out  # the final line, per worker
    for s in range(4):  # the shards themselves: either engine resumes the other's
        name = f"shard-{s:05d}.npz"
        with np.load(tmp_path / "local" / name) as a, np.load(tmp_path / "ray" / name) as b:
            assert a.files == b.files
            for key in a.files:
                if key != "embeddings":
                    np.testing.assert_array_equal(a[key], b[key], err_msg=key)

    local16 = extract(dataset, backbone, tmp_path / "local16", precision="bf16", **FAST)
    remote16 = extract_ray(dataset, backbone, tmp_path / "ray16", precision="bf16", **FAST)
    assert remote16.precision == "bf16"
    cos = (local16.embeddings * remote16.embeddings).sum(1) / (
        np.linalg.norm(local16.embeddings, axis=1) * np.linalg.norm(remote16.embeddings, axis=1))
    assert cos.min() >= 0.9999


@pytest.mark.ray
@pytest.mark.slow
def test_a_parquet_table_by_uri_embeds_on_ray_as_locally(ray_address, backbone, folder, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dinoscope.embed.ray_engine import extract_ray

    files = sorted(p for p in folder.rglob("*") if p.is_file())
    table = pa.table({"image": [p.read_bytes() for p in files], "label": [p.parent.name for p in files]})
    pq.write_table(table, tmp_path / "images.parquet", row_group_size=16)
    dataset = load_source((tmp_path / "images.parquet").as_uri())  # file://...: the pyarrow filesystem route
    assert dataset.labels[:2] == ["cats", "cats"]
    local = extract(dataset, backbone, tmp_path / "local", precision="fp32", **FAST)
    remote = extract_ray(dataset, backbone, tmp_path / "ray", precision="fp32", **FAST)  # the reader travels
    np.testing.assert_array_equal(remote.index, local.index)
    assert remote.failures == local.failures and len(local.failures) == 2  # the broken PNG, notes.txt
    assert np.abs(remote.embeddings - local.embeddings).max() <= 1e-4


def _cli(out: Path, source: Path, address: str, crash: str = "") -> subprocess.CompletedProcess:
    args = ["extract", "--source", str(source), "--model", "dino-vits16", "--random-weights", "--resolution", "32",
            "--precision", "fp32", "--batch-size", "32", "--shard-size", "64", "--engine", "ray", "--ray-address",
            address, "--threads", "1", "--quiet", "--out", str(out)]  # 1 thread per batch, like the local engine
    env = {**os.environ, "DINOSCOPE_CRASH_AT": crash}
    return subprocess.run([sys.executable, "-m", "dinoscope", *args], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.ray
@pytest.mark.slow
def test_a_driver_killed_half_way_resumes_to_the_same_embeddings(ray_address, folder, tmp_path):
    from dinoscope.config import settings_from_flags
    from dinoscope.pipeline import run_pipeline

    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    run_pipeline(reference, settings_from_flags(source=str(folder), model="dino-vits16", random_weights=True,
                                                resolution=32, precision="fp32", batch_size=32, shard_size=64),
                 progress=False, stages=("extract",))
    proc = _cli(crashed, folder, ray_address, crash="shard-00001.npz:after")  # SIGKILL once shard 1 is whole
    assert proc.returncode == -9, proc.stderr[-2000:]
    shards = sorted(p.name for p in (crashed / artifacts.SHARDS).rglob("shard-*.npz"))
    assert "shard-00001.npz" in shards and len(shards) < 4, shards
    proc = _cli(crashed, folder, ray_address)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert f"{242 - 64 * len(shards)} items" in proc.stderr  # only the missing shards were computed
    a, b = (artifacts.read_embeddings(root / artifacts.EMBEDDINGS) for root in (reference, crashed))
    assert a.ids == b.ids and len(a.ids) == 240
    np.testing.assert_array_equal(a.vectors, b.vectors)  # bit for bit: the same batches on one thread each


def _actor_pids() -> list[int]:
    """Processes of the model actors (Ray names them after the class)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"MapBatches(Embedder)" in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.mark.ray
@pytest.mark.slow
def test_a_killed_model_actor_is_retried_and_every_item_comes_once(ray_address, backbone, tmp_path, capsys):
    from dinoscope.embed.ray_engine import extract_ray

    dataset = load_source("digits").subset(range(1500))
    shard_dir = tmp_path / "ray"
    killed: list[int] = []

    def kill_one_actor_after_the_first_shard() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (shard_dir / "shard-00000.npz").exists():
            time.sleep(0.02)
        if pids := _actor_pids():
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    killer = threading.Thread(target=kill_one_actor_after_the_first_shard, daemon=True)
    killer.start()
    remote = extract_ray(dataset, backbone, shard_dir, precision="fp32", batch_size=16, shard_size=32,
                         progress=False)
    killer.join()
    out = capsys.readouterr().err
    assert killed, "no model actor was found to kill"
    np.testing.assert_array_equal(remote.index, np.arange(1500))  # every item, once, in order
    assert f":{killed[0]} " in out  # the killed actor had done work ...
    assert "on 2 model worker(s)" in out  # ... and its restart did the rest
    local = extract(dataset, backbone, tmp_path / "local", precision="fp32", batch_size=16, shard_size=32,
                    progress=False)
    assert np.abs(remote.embeddings - local.embeddings).max() <= 1e-4


def test_the_resource_plan_leaves_cpus_for_decoding_and_takes_one_gpu_per_actor():
    cpu = resource_plan({"CPU": 2.0}, 2.0, 1, "auto", None, None)  # one actor on both cores, one CPU kept free
    assert (cpu.actors, cpu.num_cpus, cpu.num_gpus, cpu.threads) == (1, 1.0, 0.0, 2)
    big = resource_plan({"CPU": 64.0}, 16.0, 4, "auto", None, None)
    assert (big.actors, big.threads, big.num_cpus) == (4, 16, 15.0)
    two = resource_plan({"CPU": 2.0}, 2.0, 1, "auto", 2, None)
    assert (two.actors, two.threads, two.num_cpus) == (2, 1, 0.5)
    gpu = resource_plan({"CPU": 32.0, "GPU": 4.0}, 16.0, 2, "auto", None, None)
    assert (gpu.actors, gpu.num_gpus) == (4, 1.0)
    assert resource_plan({"CPU": 32.0, "GPU": 4.0}, 16.0, 2, "cpu", 3, 2).num_gpus == 0.0


def test_without_ray_the_engine_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(DinoscopeError, match=r"pip install 'dinoscope\[ray\]'"):
        import_ray()
