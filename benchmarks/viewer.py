"""The viewer in headless chromium: navigation → first full draw, and bytes per point, against a JSON-per-point payload.

Synthetic runs (written directly with `artifacts`: no backbone, no map fitting, no images, so no thumbnails) of
70,000 and 1,000,000 points, four maps (three Euclidean, one Poincaré disk) and ten classes. For each: the time to
prepare RUN/viewer, the time from navigation to the first complete frame (`window.__dinoscopeFirstDraw`), bytes
fetched until then and once the page is ready (ids and neighbours load after the first draw), frames per second
while switching maps (software WebGL through SwiftShader: a floor, not what a GPU gives), and the peer: the same
points as one JSON array of {id, x, y, label} objects — bytes per point and the time just to fetch and parse it.

    python benchmarks/viewer.py                      # 70,000 and 1,000,000 points
    python benchmarks/viewer.py --sizes 100000       # one size
"""

from __future__ import annotations

import functools
import http.server
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from dinoscope.config import settings_from_flags
from dinoscope.neighbors import KNNGraph, save_graph
from dinoscope.rundir import artifacts
from dinoscope.rundir.directory import RunDir
from dinoscope.viewer.app import create_viewer_app
from dinoscope.viewer.data import prepare_viewer

from _common import free_port, make_parser, median_spread, print_columns, timed

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
CLASSES = 10


def synthetic_run(root: Path, n: int, seed: int = 0) -> Path:
    """A run directory of n points in ten blobs on each of four maps; its source does not exist (no images)."""
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, CLASSES, n)
    ids = [f"synthetic:all:{i:07d}" for i in range(n)]
    labels = [f"class {c}" for c in cls]
    run = RunDir(root / f"run{n}")
    run.manifest["settings"] = settings_from_flags(source=str(root / "no-images.npz")).model_dump(mode="json")
    run.manifest["random_weights"] = False
    vectors = (np.eye(CLASSES, 16)[cls] * 3 + rng.normal(0, 1, (n, 16))).astype(np.float32)
    artifacts.write_embeddings(run.file("embeddings.parquet"), artifacts.Embeddings(ids, ids, labels, None, vectors))
    run.mark_done("extract", f"extract-{n}", 0.0, ["embeddings.parquet"], n=n)
    save_graph(KNNGraph(rng.integers(0, n, (n, 12)), np.zeros((n, 12), np.float32), "cosine", False),
               run.file("neighbors.npz"))
    run.mark_done("neighbors", f"neighbors-{n}", 0.0, ["neighbors.npz"])
    centres = rng.normal(0, 10, (3, CLASSES, 2))
    coords = {name: centres[m][cls] + rng.normal(0, 1.5, (n, 2)) for m, name in enumerate(("pca", "tsne", "umap"))}
    angle, radius = rng.uniform(0, 2 * np.pi, n), np.tanh(rng.gamma(2.0, 0.6, n))
    coords["poincare"] = np.stack([np.cos(angle + cls), np.sin(angle + cls)], 1) * radius[:, None] * 0.999
    artifacts.write_maps(run.file("maps.parquet"), ids, coords)
    run.mark_done("maps", f"maps-{n}", 0.0, ["maps.parquet"], maps={m: {"key": m, "seconds": 0.0} for m in coords})
    artifacts.write_table(run.file("analysis.parquet"), {"id": ids, "cluster": cls, "outlier_score": rng.random(n)})
    run.mark_done("analyze", f"analyze-{n}", 0.0, ["analysis.parquet"])
    return run.path


def json_baseline(run_dir: Path, out: Path) -> Path:
    """The peer payload: one map's points as a JSON array of {id, x, y, label} objects, as many tools send."""
    emb = artifacts.read_embeddings(run_dir / "embeddings.parquet")
    _, coords = artifacts.read_maps(run_dir / "maps.parquet")
    xy = coords["pca"]
    points = [{"id": i, "x": round(float(x), 5), "y": round(float(y), 5), "label": lab}
              for i, (x, y), lab in zip(emb.ids, xy, emb.labels, strict=True)]
    out.mkdir(parents=True, exist_ok=True)
    (out / "points.json").write_text(json.dumps(points))
    (out / "blank.html").write_text("<!doctype html><title>baseline</title>")
    return out


def serve_in_thread(app) -> tuple[str, object]:
    """Run an ASGI app with uvicorn on a free localhost port; returns its URL and the server."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}/", server


BYTES = """(until) => performance.getEntries().filter(e => 'transferSize' in e && e.responseEnd <= until)
  .reduce((s, e) => s + e.transferSize, 0)"""
FPS = """async (name) => {
  let frames = 0; const t0 = performance.now();
  const done = window.__dinoscope.setMap(name);
  await new Promise(r => { const f = () => { frames++; performance.now() - t0 < 700 ? requestAnimationFrame(f) : r(); };
                          requestAnimationFrame(f); });
  await done; return frames / ((performance.now() - t0) / 1000);
}"""
PARSE = """async () => { const t0 = performance.now(); const r = await fetch('points.json'); const j = await r.json();
  return [performance.now() - t0, j.length]; }"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def measure(browser, run_dir: Path, n: int, repeats: int) -> dict:
    """Prepare, serve and load the viewer of one run `repeats` times; the JSON peer in the same browser."""
    _, prepare_s = timed(lambda: prepare_viewer(run_dir, progress=False))
    url, server = serve_in_thread(create_viewer_app(run_dir, progress=False))
    draws, fps = [], 0.0
    try:
        for _ in range(repeats):
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            page.wait_for_selector("body[data-first-draw]", timeout=300_000)
            draws.append(page.evaluate("window.__dinoscopeFirstDraw"))
            first_bytes = page.evaluate(BYTES, draws[-1])
            page.wait_for_selector("body[data-ready]", timeout=300_000)
            ready_bytes = page.evaluate(BYTES, 1e12)
            fps = page.evaluate(FPS, "tsne")
            page.close()
    finally:
        server.should_exit = True
    with tempfile.TemporaryDirectory() as tmp:
        site = json_baseline(run_dir, Path(tmp))
        handler = functools.partial(QuietHandler, directory=str(site))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/blank.html")
            parse_ms, count = page.evaluate(PARSE)
            assert count == n
            page.close()
        finally:
            httpd.shutdown()
        json_bytes = (site / "points.json").stat().st_size
    return {"n": n, "prepare_s": prepare_s, "first_draw_ms": median_spread(draws)[0], "first_bytes": first_bytes,
            "ready_bytes": ready_bytes, "fps": fps, "json_bytes": json_bytes, "json_parse_ms": parse_ms}


def main() -> None:
    parser = make_parser(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[70_000, 1_000_000], help="points per run")
    parser.add_argument("--repeats", type=int, default=3, help="page loads per size (median first draw)")
    parser.add_argument("--keep", type=Path, help="write the runs here instead of a temporary folder")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        root = args.keep or Path(tmp)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for n in args.sizes:
            rows.append(measure(browser, synthetic_run(root, n), n, args.repeats))
        browser.close()
    print("headless chromium, software WebGL (SwiftShader), localhost, no compression; "
          "bytes are per point; the JSON peer is one map only and is fetched and parsed, never drawn")
    table = []
    for r in rows:
        n = r["n"]
        table.append([f"{n:,}", f"{r['prepare_s']:.2f}", f"{r['first_draw_ms']:.0f}", f"{r['first_bytes'] / n:.1f}",
                      f"{r['ready_bytes'] / n:.1f}", f"{r['fps']:.1f}", f"{r['json_bytes'] / n:.1f}",
                      f"{r['json_parse_ms']:.0f}", f"{r['first_bytes'] / r['json_bytes']:.2f}x",
                      f"{r['first_draw_ms'] / r['json_parse_ms']:.2f}x"])
    print_columns(["points", "prepare s", "first draw ms", "B/pt to draw", "B/pt ready", "switch fps", "JSON B/pt",
                   "JSON parse ms", "bytes vs JSON", "draw vs JSON parse"], [10, 11, 15, 14, 12, 12, 11, 15, 15, 20],
                  table, left=0)


if __name__ == "__main__":
    main()
