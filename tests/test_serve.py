"""The JSON API: embed, search, place, health, docs; bad uploads, limits, tokens and request batching."""

from __future__ import annotations

import asyncio
import io
import shutil
import struct
import zlib

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image

from dinoscope.deploy.service import create_app
from dinoscope.query.nearby import place_nearby
from dinoscope.rundir.access import open_run
from dinoscope.rundir.artifacts import read_embeddings, write_maps
from dinoscope.sources import load_source


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims width x height pixels (a decompression bomb's header), valid CRCs."""
    data = bytearray(png(np.zeros((4, 4), np.uint8)))
    ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
    data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4:ihdr + 13])))
    return bytes(data)


@pytest.fixture(scope="module")
def stored(mapped_run):
    return read_embeddings(mapped_run / "embeddings.parquet")


@pytest.fixture(scope="module")
def digits():
    return load_source("digits")


@pytest.fixture(scope="module")
def client(mapped_run):
    with TestClient(create_app(mapped_run)) as c:
        yield c


def test_health_and_docs(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["learned_maps"] == ["param_test"]
    assert health["n_images"] == 40 and health["embed_dim"] == 384 and health["random_weights"] is True
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/embed", "/search", "/place", "/health"} <= set(paths)


def test_embed_gives_the_runs_stored_embedding(client, stored, digits):
    r = client.post("/embed", files={"image": ("d3.png", png(digits.read(3)), "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dim"] == 384 and body["random_weights"] is True
    assert np.abs(np.array(body["embedding"]) - stored.vectors[3]).max() < 1e-4


def test_search_by_image_and_by_id(client, stored, digits):
    r = client.post("/search", files={"image": ("d5.png", png(digits.read(5)), "image/png")}, data={"k": "4"})
    assert r.status_code == 200, r.text
    hits = r.json()["hits"]
    assert len(hits) == 4 and hits[0]["id"] == stored.ids[5] and hits[0]["similarity"] > 0.9999
    assert all(abs(h["distance"] - (1 - h["similarity"])) < 1e-9 for h in hits) and hits[0]["source"]
    r = client.post("/search", data={"id": stored.ids[5], "k": "3"})
    assert r.status_code == 200, r.text
    by_id = r.json()["hits"]
    assert [h["id"] for h in by_id] == [h["id"] for h in hits[1:]]  # the same neighbours, itself left out
    assert [h["rank"] for h in by_id] == [1, 2, 3]
    assert by_id[0]["label"] == stored.labels[stored.ids.index(by_id[0]["id"])]


def test_place_applies_the_learned_maps(client, mapped_run, stored, digits):
    r = client.post("/place", files={"image": ("d7.png", png(digits.read(7)), "image/png")}, data={"method": "learned"})
    assert r.status_code == 200, r.text
    assert r.json()["method"] == "learned"
    xy = np.array(r.json()["maps"]["param_test"])
    learned = torch.jit.load(str(mapped_run / "models" / "param_test.pt"))
    want = learned(torch.from_numpy(stored.vectors[7:8].copy())).detach().numpy()[0]
    assert np.abs(xy - want).max() < 1e-4 and np.linalg.norm(xy) < 1


def test_place_without_learned_maps_is_404(mapped_run, tmp_path, digits):
    bare = tmp_path / "bare"
    shutil.copytree(mapped_run, bare)
    run, _ = open_run(bare, create=False)
    run.manifest["stages"]["maps"]["maps"] = {}
    run.save()
    (bare / "maps.parquet").unlink()
    with TestClient(create_app(bare)) as c:
        r = c.post("/place", files={"image": ("d.png", png(digits.read(0)), "image/png")}, data={"method": "learned"})
        assert r.status_code == 404 and "no learned maps" in r.json()["detail"]
        r = c.post("/place", files={"image": ("d.png", png(digits.read(0)), "image/png")})  # k-NN: no maps at all
        assert r.status_code == 404 and "no maps yet" in r.json()["detail"]
        r = c.post("/place", files={"image": ("d.png", png(digits.read(0)), "image/png")}, data={"method": "x"})
        assert r.status_code == 400 and "choose knn or learned" in r.json()["detail"]


def test_place_by_knn_on_every_map(mapped_run, stored, tmp_path, digits):
    run_dir = tmp_path / "with-maps"
    shutil.copytree(mapped_run, run_dir)
    rng = np.random.default_rng(0)
    coords = {"tsne": rng.normal(size=(len(stored.ids), 2)), "poincare": rng.uniform(-0.6, 0.6, (len(stored.ids), 2))}
    write_maps(run_dir / "maps.parquet", stored.ids, coords)
    with TestClient(create_app(run_dir)) as c:
        r = c.post("/place", files={"image": ("d7.png", png(digits.read(7)), "image/png")})
    assert r.status_code == 200, r.text
    assert r.json()["method"] == "knn" and set(r.json()["maps"]) == {"tsne", "poincare"}
    want = place_nearby(stored.vectors, coords, stored.vectors[7:8], disks={"poincare"})
    for name in coords:  # the upload embeds as its stored row does, up to fp32 rounding of the forward pass
        np.testing.assert_allclose(r.json()["maps"][name], want[name][0], rtol=0, atol=1e-4)


@pytest.mark.parametrize("content, status, says", [
    (b"hello, I am text", 400, "not an image"),
    (b"", 400, "empty"),
    (b"\x89PNG\r\n\x1a\nnot really a png", 400, "not an image"),
    (png_claiming(7000, 7000), 413, "decompression-bomb"),  # over the service's 40 MP
    (png_claiming(30000, 30000), 413, "decompression-bomb"),  # over PIL's own bomb limit
])
def test_bad_uploads_get_a_clear_4xx(client, content, status, says):
    for path in ("/embed", "/search", "/place"):
        r = client.post(path, files={"image": ("x.png", content, "image/png")})
        assert r.status_code == status, (path, r.text)
        assert says in r.json()["detail"]


def test_bad_queries_get_a_clear_4xx(client, stored, digits):
    assert client.post("/search", data={"k": "3"}).status_code == 400
    both = client.post("/search", data={"id": stored.ids[0]}, files={"image": ("d.png", png(digits.read(0)))})
    assert both.status_code == 400 and "exactly one" in both.json()["detail"]
    unknown = client.post("/search", data={"id": "no-such-id"})
    assert unknown.status_code == 400 and "unknown id" in unknown.json()["detail"]
    assert client.post("/search", data={"id": stored.ids[0], "k": "500"}).status_code == 400
    assert client.post("/embed").status_code == 422  # no file at all: FastAPI's validation error


def test_upload_size_limit_is_413(mapped_run):
    with TestClient(create_app(mapped_run, max_upload_mb=0.01)) as c:
        big = png(np.random.default_rng(0).integers(0, 256, (100, 100, 3), dtype=np.uint8))  # ~30 kB > 10 kB
        r = c.post("/embed", files={"image": ("big.png", big, "image/png")})
        assert r.status_code == 413 and "larger than" in r.json()["detail"]
        body = (b'--x\r\nContent-Disposition: form-data; name="image"; filename="big.png"\r\n'
                b"Content-Type: image/png\r\n\r\n" + big + b"\r\n--x--\r\n")
        chunks = iter([body[i:i + 4096] for i in range(0, len(body), 4096)])  # streamed, no Content-Length
        r = c.post("/embed", content=chunks, headers={"content-type": "multipart/form-data; boundary=x"})
        assert r.status_code == 413


def test_bearer_token(mapped_run, digits, monkeypatch):
    files = {"image": ("d.png", png(digits.read(0)), "image/png")}
    with TestClient(create_app(mapped_run, token="s3cret")) as c:
        assert c.post("/embed", files=files).status_code == 401
        assert c.post("/embed", files=files, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.post("/embed", files=files, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/health").status_code == 200  # health checks need no token
    monkeypatch.setenv("DINOSCOPE_TOKEN", "from-env")
    with TestClient(create_app(mapped_run)) as c:
        assert c.post("/search", data={"id": "x"}).status_code == 401
        assert c.post("/search", data={"id": "x"}, headers={"Authorization": "Bearer from-env"}).status_code == 400


def test_concurrent_requests_share_one_forward_pass(mapped_run, stored, digits):
    app = create_app(mapped_run, batch_wait_ms=300, max_batch=6)

    async def fire() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await asyncio.gather(*[
                c.post("/embed", files={"image": (f"{i}.png", png(digits.read(i)), "image/png")}) for i in range(6)])

    responses = asyncio.run(fire())
    assert [r.status_code for r in responses] == [200] * 6
    assert dict(app.state.batcher.batch_sizes) == {6: 1}  # one forward pass for all six requests
    for i, r in enumerate(responses):  # and each request got its own image's embedding back
        assert np.abs(np.array(r.json()["embedding"]) - stored.vectors[i]).max() < 1e-4


def test_batcher_splits_at_max_batch_keeps_order_and_passes_errors_on():
    from dinoscope.deploy.batcher import MicroBatcher

    seen: list[list[int]] = []

    def double(items: list[int]) -> list[int]:
        seen.append(list(items))
        if -1 in items:
            raise ValueError("bad item")
        return [2 * i for i in items]

    batcher = MicroBatcher(double, max_batch=3, wait_ms=50)

    async def main():
        ok = await asyncio.gather(*[batcher.submit(i) for i in range(8)])
        bad = await asyncio.gather(batcher.submit(1), batcher.submit(-1), return_exceptions=True)
        return ok, bad

    ok, bad = asyncio.run(main())
    assert ok == [2 * i for i in range(8)]
    assert seen[:3] == [[0, 1, 2], [3, 4, 5], [6, 7]] and batcher.stats()["items"] == 10
    assert all(isinstance(b, ValueError) for b in bad)  # every request of the failed batch hears of it
    batcher.close()
