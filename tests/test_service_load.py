"""The API over real HTTP on loopback (uvicorn in a thread, 127.0.0.1 only): a bounded mixed load of valid and
hostile requests, bearer tokens, and the body cap on streamed uploads."""

from __future__ import annotations

import gc
import io
import logging
import secrets
import socket
import struct
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
from PIL import Image

from dinoscope.deploy.service import create_app
from dinoscope.rundir.artifacts import read_embeddings
from dinoscope.sources import load_source

LOOPBACK = "127.0.0.1"  # the only address these tests ever bind or connect to
LIMIT_MB = 1.0  # the service's --max-upload-mb here
CLIENTS, PER_CLIENT = 16, 30
REQUEST_TIMEOUT_S = 30.0  # one request
LOAD_DEADLINE_S = 120.0  # the whole load round; a client stops starting requests after it
RSS_GROWTH_MB = 100.0


class Errors(logging.Handler):
    """Collects what uvicorn logs at ERROR and above (an exception in the app shows there, not as a status)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


@contextmanager
def serving(app, errors: Errors | None = None) -> Iterator[str]:
    """The app served by uvicorn in a background thread on a free 127.0.0.1 port; stopped on exit."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))  # bound here, so no other process can take the port between choosing and serving
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning"))
    if errors is not None:  # after Config, which sets uvicorn's logging up
        logging.getLogger("uvicorn.error").addHandler(errors)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        if errors is not None:
            logging.getLogger("uvicorn.error").removeHandler(errors)
        assert not thread.is_alive(), "uvicorn did not stop"


def rss_mb() -> float:
    """This process's resident memory (VmRSS) in MB: the server runs in this process."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def encode(array: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def png_bomb_header(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG whose IHDR claims width x height RGB pixels, with one tiny IDAT: a decompression bomb's header.
    Built from bytes with struct and zlib; no pixel buffer is ever allocated."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def multipart(name: str, filename: str, content: bytes, boundary: str = "dinoscope-load") -> tuple[bytes, str]:
    """A one-file multipart/form-data body and its content type, for sending as a stream."""
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """The body as a stream (httpx then sends it chunked, with no Content-Length)."""
    for i in range(0, len(body), size):
        yield body[i:i + size]


class Case:
    """One kind of request: how to send it, which statuses are right, and what the answer must say."""

    def __init__(self, name: str, send: Callable[[httpx.Client], httpx.Response], want: set[int],
                 check: Callable[[httpx.Response], bool] | None = None):
        self.name, self.send, self.want, self.check = name, send, want, check

    @property
    def valid(self) -> bool:
        return self.want == {200}


def load_cases(ids: list[str]) -> list[Case]:
    """The load's mix: valid PNG/JPEG uploads to every endpoint and search by id, then hostile requests."""
    digits = load_source("digits")
    pngs = [encode(np.asarray(Image.fromarray(digits.read(i)).resize((48, 48))), "PNG") for i in range(8)]
    jpegs = [encode(np.asarray(Image.fromarray(digits.read(i)).resize((40, 56))), "JPEG") for i in range(8, 16)]
    megapixel = encode(np.full((1000, 1000, 3), 128, np.uint8), "PNG")  # a few kB that decode to 1 MP
    rng = np.random.default_rng(0)
    garbage = rng.integers(0, 256, 3000, dtype=np.uint8).tobytes()
    oversize = rng.integers(0, 256, int(1.5 * LIMIT_MB * 2**20), dtype=np.uint8).tobytes()  # over the cap
    stream_body, stream_type = multipart("image", "big.png", oversize)
    bomb = png_bomb_header()
    counter = iter(range(10**9))  # picks a different image per request (thread-safe enough under the GIL)

    def image(kind: str = "png") -> tuple[str, bytes, str]:
        i = next(counter)
        if kind == "png":
            return f"d{i}.png", pngs[i % len(pngs)], "image/png"
        return f"d{i}.jpg", jpegs[i % len(jpegs)], "image/jpeg"

    def detail_says(text: str) -> Callable[[httpx.Response], bool]:
        return lambda r: text in r.json()["detail"]

    return [
        Case("embed png", lambda c: c.post("/embed", files={"image": image("png")}), {200},
             lambda r: r.json()["dim"] == 384 and len(r.json()["embedding"]) == 384),
        Case("embed jpeg", lambda c: c.post("/embed", files={"image": image("jpeg")}), {200}),
        Case("embed 1 MP png", lambda c: c.post("/embed", files={"image": ("mp.png", megapixel, "image/png")}),
             {200}),
        Case("search image k=5", lambda c: c.post("/search", files={"image": image("jpeg")}, data={"k": "5"}),
             {200}, lambda r: len(r.json()["hits"]) == 5),
        Case("search id k=3", lambda c: c.post("/search", data={"id": ids[next(counter) % len(ids)], "k": "3"}),
             {200}, lambda r: [h["rank"] for h in r.json()["hits"]] == [1, 2, 3]),
        Case("place png", lambda c: c.post("/place", files={"image": image("png")}), {200},
             lambda r: list(r.json()["maps"]) == ["param_test"]),
        Case("place jpeg", lambda c: c.post("/place", files={"image": image("jpeg")}), {200}),
        Case("search unknown id", lambda c: c.post("/search", data={"id": "no-such-image", "k": "3"}), {400, 404},
             detail_says("unknown id")),
        Case("garbage bytes", lambda c: c.post("/embed", files={"image": ("x.png", garbage, "image/png")}), {400},
             detail_says("not an image")),
        Case("bomb header", lambda c: c.post("/place", files={"image": ("bomb.png", bomb, "image/png")}), {413},
             detail_says("decompression-bomb")),
        Case("oversize body", lambda c: c.post("/search", files={"image": ("big.png", oversize, "image/png")}),
             {413}, detail_says("larger than")),
        Case("oversize stream", lambda c: c.post("/embed", content=chunks(stream_body),
                                                 headers={"content-type": stream_type}), {413},
             detail_says("larger than")),
        Case("bad k", lambda c: c.post("/search", data={"id": ids[0], "k": "100000"}), {400}, detail_says("k must")),
        Case("no file", lambda c: c.post("/embed"), {422}),
    ]


def run_clients(url: str, cases: list[Case], clients: int, per_client: int) -> list[tuple[str, object, float]]:
    """(case, status or the exception, seconds) for each request from `clients` threads of `per_client` each."""
    results: list[tuple[str, object, float]] = []
    lock = threading.Lock()
    deadline = time.monotonic() + LOAD_DEADLINE_S

    def client(n: int) -> None:
        with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as c:
            for j in range(per_client):
                if time.monotonic() > deadline:
                    return
                case = cases[(n * per_client + j) % len(cases)]
                start = time.perf_counter()
                try:
                    r = case.send(c)
                    ok = r.status_code in case.want and (case.check is None or case.check(r))
                    outcome: object = r.status_code if ok else f"{r.status_code} {r.text[:200]}"
                except Exception as exc:  # a timeout or a dropped connection: recorded, and fails the test
                    outcome = exc
                with lock:
                    results.append((case.name, outcome, time.perf_counter() - start))

    threads = [threading.Thread(target=client, args=(n,), name=f"client-{n}") for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=LOAD_DEADLINE_S + REQUEST_TIMEOUT_S + 10)
    assert not any(t.is_alive() for t in threads), "a client thread is still running past the deadline"
    return results


@pytest.mark.slow
def test_mixed_load_over_loopback(mapped_run):
    ids = read_embeddings(mapped_run / "embeddings.parquet").ids
    cases = load_cases(ids)
    # 4 MP per forward pass (and 8 MP decoded in flight) bounds the server's transient memory, so the RSS check
    # measures what stays behind, not which batch happened to hold the most megapixel images.
    app = create_app(mapped_run, max_upload_mb=LIMIT_MB, max_pixels=4_000_000, max_batch=16, batch_wait_ms=5)
    errors = Errors()
    with serving(app, errors) as url:
        # Warm-up: every client sends every case once, so the model, the threads and their allocator arenas
        # are all in use before the memory is measured.
        warm = run_clients(url, cases, CLIENTS, len(cases))
        assert all(isinstance(o, int) for _, o, _ in warm), [w for w in warm if not isinstance(w[1], int)]
        gc.collect()
        before = rss_mb()
        start = time.perf_counter()
        results = run_clients(url, cases, CLIENTS, PER_CLIENT)
        seconds = time.perf_counter() - start
        gc.collect()
        after = rss_mb()
        batches = httpx.get(f"{url}/health", timeout=REQUEST_TIMEOUT_S).json()["batches"]

    latencies = np.array([s for _, _, s in results]) * 1000
    statuses = Counter(o if isinstance(o, int) else "wrong" for _, o, _ in results)
    five_xx = sum(n for s, n in statuses.items() if isinstance(s, int) and s >= 500)
    print(f"\nload: {len(results)} requests from {CLIENTS} clients in {seconds:.1f} s = {len(results) / seconds:.1f}"
          f" req/s; p50 {np.percentile(latencies, 50):.0f} ms, p99 {np.percentile(latencies, 99):.0f} ms; "
          f"statuses {dict(sorted(statuses.items(), key=str))}; 5xx {five_xx}; "
          f"mean batch {batches['mean_batch_size']:.1f}; RSS {before:.0f} -> {after:.0f} MB ({after - before:+.0f})")
    by_case = Counter(name for name, _, _ in results)
    print("  per case: " + ", ".join(f"{name} {by_case[name]}" for name in (c.name for c in cases)))

    assert len(results) == CLIENTS * PER_CLIENT, "the load did not finish within its deadline"
    wrong = [(name, o) for name, o, _ in results if not isinstance(o, int)]
    assert not wrong, wrong[:5]  # no 5xx, no dropped connection: each valid request 200, each hostile one its 4xx
    assert five_xx == 0 and not errors.records, errors.records[:3]  # and no exception logged by the server
    assert after - before <= RSS_GROWTH_MB, f"RSS grew by {after - before:.0f} MB under load"


# Auth: the token guards every endpoint that touches the run's model or data; /health and the API's own
# documentation (/docs, /redoc, /openapi.json) stay open, since they hold no image, embedding or result and a
# client needs the schema to learn how to authenticate.
GUARDED = ["/embed", "/search", "/place"]
OPEN = ["/health", "/docs", "/redoc", "/openapi.json"]


@pytest.fixture(scope="module")
def token_url(mapped_run):
    with serving(create_app(mapped_run, token="right-token", max_upload_mb=LIMIT_MB)) as url:
        yield url


def guarded_request(c: httpx.Client, path: str, headers: dict, body: str = "valid") -> httpx.Response:
    digit = np.asarray(Image.fromarray(load_source("digits").read(0)).resize((32, 32)))
    content = encode(digit, "PNG") if body == "valid" else b"not an image at all"
    if path == "/search" and body == "valid":
        return c.post(path, files={"image": ("d.png", content, "image/png")}, data={"k": "2"}, headers=headers)
    return c.post(path, files={"image": ("d.png", content, "image/png")}, headers=headers)


@pytest.mark.parametrize("path", GUARDED)
def test_token_guards_every_endpoint_that_serves_the_run(token_url, path):
    refused = [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Bearer right-tokeN"},
               {"Authorization": "Bearer right-token-and-more"}, {"Authorization": "Bearer right"},
               {"Authorization": "Bearer"}, {"Authorization": "Basic right-token"}, {"Authorization": "right-token"},
               {"Authorization": "Bearer r\u00e9ght-token".encode()}]
    with httpx.Client(base_url=token_url, timeout=REQUEST_TIMEOUT_S) as c:
        for headers in refused:
            for body in ("valid", "garbage"):  # refused before the body is looked at
                r = guarded_request(c, path, headers, body)
                assert r.status_code == 401, (path, headers, body, r.status_code, r.text)
                assert r.headers["www-authenticate"] == "Bearer" and "bearer token" in r.json()["detail"]
        oversize = c.post(path, content=b"x" * int(2 * LIMIT_MB * 2**20), headers={"content-type": "image/png"})
        assert oversize.status_code == 401  # the token first: nothing about the request is looked at without it
        r = guarded_request(c, path, {"Authorization": "Bearer right-token"})
        assert r.status_code == 200, r.text
        r = guarded_request(c, path, {"Authorization": "bearer right-token"})  # the scheme is case-insensitive
        assert r.status_code == 200, r.text
        assert guarded_request(c, path, {"Authorization": "Bearer right-token"}, "garbage").status_code == 400


def test_health_and_docs_need_no_token(token_url):
    with httpx.Client(base_url=token_url, timeout=REQUEST_TIMEOUT_S) as c:
        for path in OPEN:
            assert c.get(path).status_code == 200, path
        assert c.get("/health").json()["status"] == "ok"


def test_token_compare_is_constant_time(mapped_run, monkeypatch):
    """Every check goes through secrets.compare_digest on equal-length inputs, whatever the client sent, so
    neither the token's value nor its length shows in the time a refusal takes."""
    seen: list[tuple[int, int]] = []
    real = secrets.compare_digest

    def spy(a, b):
        seen.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(secrets, "compare_digest", spy)
    sent = [None, "x", "wrong-token", "right-token", "right-token" * 50, "r\u00e9ght-token"]
    with serving(create_app(mapped_run, token="right-token")) as url, httpx.Client(base_url=url, timeout=30) as c:
        for given in sent:
            headers = {} if given is None else {"Authorization": f"Bearer {given}".encode()}
            r = c.post("/search", data={"id": "no-such-image"}, headers=headers)
            assert r.status_code == (400 if given == "right-token" else 401)
    assert len(seen) == len(sent) and len(set(seen)) == 1 and seen[0][0] == seen[0][1], seen


def test_streamed_body_over_the_cap_is_413_before_it_is_read_whole(mapped_run):
    """A chunked upload with no Content-Length (8x the cap) is cut off at the cap with a 413."""
    app = create_app(mapped_run, max_upload_mb=LIMIT_MB)
    limit = int(LIMIT_MB * 2**20)
    body, content_type = multipart("image", "big.png", b"\0" * (8 * limit))
    sent = 0

    def counted() -> Iterator[bytes]:
        nonlocal sent
        for piece in chunks(body):
            sent += len(piece)
            yield piece

    with serving(app) as url, httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as c:
        r = c.post("/embed", content=counted(), headers={"content-type": content_type})
        assert r.status_code == 413 and "larger than" in r.json()["detail"], r.text
        assert "content-length" not in r.request.headers and r.request.headers["transfer-encoding"] == "chunked"
        # The connection still serves the next request afterwards.
        assert c.get("/health").status_code == 200


def test_token_is_checked_before_the_body_is_read(mapped_run):
    """Without the token the request is refused before the app asks for a single byte of its body."""
    import asyncio

    app = create_app(mapped_run, token="right-token")
    sent: list[dict] = []
    reads = 0

    async def receive() -> dict:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}  # an endless upload

    async def send(message: dict) -> None:
        sent.append(message)

    async def call(path: str, authorization: bytes | None) -> None:
        headers = [(b"content-type", b"multipart/form-data; boundary=x")]
        if authorization is not None:
            headers.append((b"authorization", authorization))
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
                 "headers": headers, "client": (LOOPBACK, 1), "server": (LOOPBACK, 80)}
        await asyncio.wait_for(app(scope, receive, send), timeout=10)

    for path in GUARDED:
        for authorization in (None, b"Bearer wrong-token"):
            sent.clear()
            asyncio.run(call(path, authorization))
            assert sent[0]["status"] == 401 and reads == 0, (path, authorization, sent[0], reads)


def test_batches_are_bounded_by_pixels_and_results_stay_exact(mapped_run):
    """Pixel-heavy uploads are batched by pixels, not only by count, and each still gets its own embedding."""
    import asyncio

    app = create_app(mapped_run, max_pixels=100_000, max_batch=16, batch_wait_ms=200)
    digits = load_source("digits")
    images = [np.asarray(Image.fromarray(digits.read(i)).resize((200, 200))) for i in range(8)]  # 40 kP each

    async def fire() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as c:
            return await asyncio.gather(*[c.post("/embed", files={"image": (f"{i}.png", encode(im, "PNG"))})
                                          for i, im in enumerate(images)])

    responses = asyncio.run(fire())
    assert [r.status_code for r in responses] == [200] * 8
    sizes = dict(app.state.batcher.batch_sizes)
    assert sum(n * k for n, k in sizes.items()) == 8 and max(sizes) == 2, sizes  # 2 x 40 kP fit in 100 kP, 3 not
    assert app.state.pixel_budget.used == 0  # every request gave its share back
    want = app.state.batcher.fn(images)
    for r, vector in zip(responses, want, strict=True):
        assert np.abs(np.array(r.json()["embedding"]) - vector).max() < 1e-4


def test_batcher_cost_limit_and_pixel_budget():
    import asyncio

    from dinoscope.deploy.batcher import MicroBatcher, PixelBudget

    seen: list[list[int]] = []

    def record(items: list[int]) -> list[int]:
        seen.append(list(items))
        return items

    batcher = MicroBatcher(record, max_batch=4, wait_ms=50, max_cost=10)

    async def batches():
        costs = [3, 3, 3, 3, 12, 1, 1, 1, 1, 1]  # 12 is over the limit: it runs alone rather than never
        return await asyncio.gather(*[batcher.submit(i, cost=c) for i, c in enumerate(costs)])

    assert asyncio.run(batches()) == list(range(10))
    assert seen == [[0, 1, 2], [3], [4], [5, 6, 7, 8], [9]]
    batcher.close()

    async def budget() -> list[str]:
        limit = PixelBudget(10)
        order: list[str] = []

        async def job(name: str, n: int, seconds: float) -> None:
            async with limit.hold(n):
                order.append(f"+{name}")
                assert limit.used <= limit.limit
                await asyncio.sleep(seconds)
            order.append(f"-{name}")

        first = asyncio.ensure_future(job("a", 6, 0.05))
        await asyncio.sleep(0)
        big, small = asyncio.ensure_future(job("big", 50, 0.01)), asyncio.ensure_future(job("small", 1, 0.01))
        cancelled = asyncio.ensure_future(job("gone", 5, 0.01))
        await asyncio.sleep(0.01)
        cancelled.cancel()  # a waiter that leaves gives up its place in the queue
        await asyncio.gather(first, big, small, cancelled, return_exceptions=True)
        assert limit.used == 0 and not limit._waiting
        return order

    # First come, first served: the big share waits for "a" and then runs alone; the small one does not jump it.
    assert asyncio.run(budget()) == ["+a", "-a", "+big", "-big", "+small", "-small"]
