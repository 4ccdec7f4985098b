"""The viewer in headless Debian chromium (Playwright): drawing, map switching, hover, lasso, neighbours, export.

Screenshots of each view go to test-artifacts/viewer/.
"""

from __future__ import annotations

import functools
import http.server
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from viewer_fixtures import CLASSES, COLOURS, CORNERS, make_run

from dinoscope.rundir import artifacts
from dinoscope.viewer.app import create_viewer_app, export

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "viewer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def server(run_dir) -> Iterator[str]:
    """The viewer served by uvicorn on a free localhost port, in a thread."""
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_viewer_app(run_dir, progress=False), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "the viewer server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """A page showing the viewer, checked to raise no script errors and no dialogs (escaping)."""
    context = browser.new_context(viewport={"width": 1100, "height": 720}, accept_downloads=True)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    open_viewer(page, server)
    yield page
    context.close()
    assert not problems, problems


def open_viewer(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready]", timeout=30000)


def wait_until(page, expression: str, timeout: float = 10.0) -> None:
    """Poll a JavaScript expression (page.wait_for_function evaluates strings, which the viewer's CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(50)


def shot(page, name: str) -> np.ndarray:
    """Save a screenshot of the page and return the map canvas's pixels (RGB)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    return np.asarray(Image.open(io.BytesIO(page.locator("#gl").screenshot())).convert("RGB")).astype(int)


def coloured(pixels: np.ndarray) -> int:
    """Pixels that are not the white background."""
    return int((np.abs(pixels - 255).sum(axis=2) > 30).sum())


def rows_of(run_dir: Path, label: str) -> list[int]:
    labels = artifacts.read_embeddings(run_dir / "embeddings.parquet").labels
    return [i for i, lab in enumerate(labels) if lab == label]


def show(page, name: str) -> None:
    page.click(f"#maps button[data-map='{name}']")
    page.wait_for_selector(f"body[data-map-shown='{name}']")
    page.wait_for_timeout(100)


def test_page_loads_draws_and_says_random_weights(page):
    assert page.evaluate("window.__dinoscopeFirstDraw") > 0
    assert page.locator("#banner").is_visible() and "RANDOM" in page.locator("#banner").inner_text()
    assert coloured(shot(page, "tsne")) > 500
    assert "120" in page.locator("#settings").inner_text()


def test_switching_maps_changes_the_picture(page):
    tsne = shot(page, "tsne")
    show(page, "pca")
    pca = shot(page, "pca")
    assert coloured(pca) > 500 and (np.abs(tsne - pca).sum(axis=2) > 30).sum() > 500
    show(page, "poincare")
    disk = shot(page, "poincare")
    assert (np.abs(disk - pca).sum(axis=2) > 30).sum() > 500
    overlay = page.evaluate("""() => { const c = document.getElementById('overlay');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""")
    assert overlay > 500  # the boundary circle and the class tree's geodesics


def test_hover_shows_the_thumbnail_label_and_id(page, run_dir):
    row = rows_of(run_dir, "dog")[3]
    x, y = page.evaluate(f"window.__dinoscope.screenOf({row})")
    page.mouse.move(x, y)
    tip = page.locator("#tooltip")
    tip.wait_for(state="visible")
    page.locator(f"#tooltip canvas[data-row='{row}']").wait_for()
    ids = artifacts.read_embeddings(run_dir / "embeddings.parquet").ids
    assert tip.locator(".label").inner_text() == "dog" and tip.locator(".id").inner_text() == ids[row]
    pixel = page.evaluate("Array.from(document.querySelector('#tooltip canvas').getContext('2d')"
                          ".getImageData(12, 12, 1, 1).data)")
    assert pixel[:3] == COLOURS[CLASSES.index("dog")].tolist()
    shot(page, "hover")


def lasso(page, points: list[tuple[float, float]]) -> None:
    page.click("#tool-lasso")
    page.mouse.move(*points[0])
    page.mouse.down()
    for p in points[1:] + points[:1]:
        page.mouse.move(*p, steps=4)
    page.mouse.up()


def test_lasso_over_a_known_region_selects_exactly_its_points(page, run_dir):
    cats = rows_of(run_dir, "cat")
    corner = CORNERS[CLASSES.index("cat")]
    ids, coords = artifacts.read_maps(run_dir / "maps.parquet")
    assert np.linalg.norm(coords["tsne"][cats] - corner, axis=1).max() < 6  # the cats' blob, far from the rest
    pts = page.evaluate(f"{cats}.map(r => window.__dinoscope.screenOf(r))")
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, x1, y0, y1 = min(xs) - 12, max(xs) + 12, min(ys) - 12, max(ys) + 12
    lasso(page, [(x0, y0), ((x0 + x1) / 2, y0 - 10), (x1, y0), (x1, y1), (x0, y1)])
    page.locator("#selection").wait_for(state="visible")
    assert sorted(page.evaluate("window.__dinoscope.selection()")) == sorted(ids[r] for r in cats)
    assert "30 points selected" in page.locator("#selection").inner_text()
    assert page.locator("#selection .grid canvas").count() == 30
    shot(page, "lasso")
    with page.expect_download() as download:
        page.click("#export-csv")
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0] == "id,label" and sorted(line.split(",")[0] for line in lines[1:]) == sorted(ids[r] for r in cats)


def test_box_selection_and_hidden_classes(page, run_dir):
    page.click("#legend .item[data-category='0']")  # most common first: every class has 30, sorted by name
    hidden = page.locator("#legend .item[data-category='0'] .name").inner_text()
    page.click("#tool-box")
    box = page.locator("#gl").bounding_box()
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] - 2, steps=5)
    page.mouse.up()
    page.locator("#selection").wait_for(state="visible")
    ids = artifacts.read_embeddings(run_dir / "embeddings.parquet").ids
    selected = set(page.evaluate("window.__dinoscope.selection()"))
    assert selected == {ids[r] for r in range(120) if r not in rows_of(run_dir, hidden)}


def test_labels_from_the_data_are_shown_as_text(page):
    assert page.locator("#legend").get_by_text(CLASSES[2], exact=True).count() == 1
    assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0


def test_click_shows_the_image_and_its_neighbours(page, run_dir):
    from dinoscope.neighbors import load_graph

    row = rows_of(run_dir, "fish")[0]
    page.mouse.click(*page.evaluate(f"window.__dinoscope.screenOf({row})"))
    detail = page.locator("#detail")
    detail.wait_for(state="visible")
    wait_until(page, "document.querySelector('#detail img.large')?.naturalWidth > 0")
    grid = detail.locator(".grid canvas")
    assert grid.count() == 12
    neighbours = load_graph(run_dir / "neighbors.npz").indices[row, :12].tolist()
    assert [int(grid.nth(j).get_attribute("data-row")) for j in range(12)] == neighbours
    shot(page, "detail")
    grid.nth(0).click()
    ids = artifacts.read_embeddings(run_dir / "embeddings.parquet").ids
    detail.get_by_text(ids[neighbours[0]], exact=True).wait_for()


def test_static_export_works_without_the_viewer_server(browser, run_dir, tmp_path):
    site = export(run_dir, tmp_path / "site", progress=False)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        page = browser.new_page(viewport={"width": 1100, "height": 720})
        open_viewer(page, f"http://127.0.0.1:{httpd.server_address[1]}/index.html")
        assert coloured(shot(page, "export")) > 500
        x, y = page.evaluate("window.__dinoscope.screenOf(7)")
        page.mouse.move(x, y)
        page.locator("#tooltip canvas[data-row='7']").wait_for()
        page.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
