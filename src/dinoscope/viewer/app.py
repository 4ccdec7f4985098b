"""`dinoscope view`: the viewer's built page served over a run's prepared data, or exported as a static folder.

The page and its data have the same layout in both cases (index.html, assets/, data/, thumbs/), so the export
works from any static file server. The server serves nothing else: only named files of RUN/viewer and RUN/thumbs
(no sub-paths, no dot files), the built assets, and the run's images by row when they can be read.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
import threading
import webbrowser
from pathlib import Path

from ..console import say
from ..errors import DinoscopeError
from .data import THUMBS_DIR, prepare_viewer

STATIC = Path(__file__).parent / "static"
EXPORT_MARK = ".dinoscope-viewer"
LARGE = 384  # pixels a side of the image shown on click
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _check_static() -> None:
    if not (STATIC / "index.html").is_file():
        raise DinoscopeError(f"the viewer's built assets are missing from {STATIC}; run `npm ci && npm run build` "
                             "in viewer/ (or reinstall dinoscope)")


def _inside(folder: Path, name: str) -> Path | None:
    """folder/name when name is a plain file name of a file directly inside folder, else None."""
    if not _NAME.match(name) or ".." in name:
        return None
    path = (folder / name).resolve()
    return path if path.parent == folder.resolve() and path.is_file() else None


def create_viewer_app(run_dir: str | Path, *, thumb_size: int = 32, progress: bool = True):
    """A FastAPI app showing one run: the page at /, its data under /data and /thumbs, images under /image."""
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import FileResponse, Response

    _check_static()
    data_dir = prepare_viewer(run_dir, thumb_size=thumb_size, progress=progress)
    thumbs_dir = data_dir.parent / THUMBS_DIR
    folders = {"data": data_dir, "thumbs": thumbs_dir, "assets": STATIC / "assets"}
    reader = _LazyReader(data_dir.parent)
    app = FastAPI(title="dinoscope viewer", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/image/{row}", include_in_schema=False)
    def image(row: int) -> Response:
        png = reader.png(row)
        if png is None:
            raise HTTPException(404, "no such image")
        return Response(png, media_type="image/png")

    @app.get("/{folder}/{name}", include_in_schema=False)
    def file(folder: str, name: str) -> FileResponse:
        path = _inside(folders[folder], name) if folder in folders else None
        if path is None:
            raise HTTPException(404, "not found")
        return FileResponse(path, headers={"X-Content-Type-Options": "nosniff"})

    return app


class _LazyReader:
    """The run's images by row as PNG bytes, opened on first use (None when the images cannot be read)."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.lock = threading.Lock()
        self.read = None
        self.n = -1

    def _open(self) -> None:
        from ..rundir import artifacts
        from ..rundir.access import image_reader, open_run

        run, settings = open_run(self.run_dir, create=False)
        ids = artifacts.read_maps(run.file(artifacts.MAPS))[0]
        self.read, self.n = image_reader(run, settings, ids), len(ids)

    def png(self, row: int) -> bytes | None:
        from ..render.grids import thumbnail

        with self.lock:
            if self.n < 0:
                self._open()
        if self.read is None or not 0 <= row < self.n:
            return None
        buf = io.BytesIO()
        thumbnail(self.read(row), LARGE).save(buf, format="PNG")
        return buf.getvalue()


def serve(run_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8765, open_browser: bool = True,
          thumb_size: int = 32) -> None:
    """Serve the viewer of a run until interrupted (localhost only unless `host` says otherwise)."""
    import uvicorn

    app = create_viewer_app(run_dir, thumb_size=thumb_size)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    say("view", f"serving {run_dir} at {url} (Ctrl+C to stop)")
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")


def export(run_dir: str | Path, out: str | Path, *, thumb_size: int = 32, progress: bool = True) -> Path:
    """Write the viewer of a run as a static folder (index.html, assets/, data/, thumbs/) for any file server."""
    _check_static()
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / EXPORT_MARK).exists())):
        raise DinoscopeError(f"{out} exists and is not an earlier viewer export; choose an empty or new folder")
    data_dir = prepare_viewer(run_dir, thumb_size=thumb_size, progress=progress)
    run_path = data_dir.parent
    if out.resolve() == run_path.resolve() or run_path.resolve() in out.resolve().parents:
        raise DinoscopeError(f"{out} is inside the run directory; export somewhere else")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        shutil.copytree(STATIC, tmp, dirs_exist_ok=True)
        shutil.copytree(data_dir, tmp / "data")
        if (run_path / THUMBS_DIR).is_dir():
            shutil.copytree(run_path / THUMBS_DIR, tmp / "thumbs")
        (tmp / EXPORT_MARK).write_text(f"viewer of {run_path.name}\n")
        for path in tmp.rglob("*"):  # readable by whichever user a web server runs as
            path.chmod(0o755 if path.is_dir() else 0o644)
        tmp.chmod(0o755)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    say("view", f"static viewer written to {out} (serve it with any static file server)")
    return out


__all__ = ["create_viewer_app", "export", "serve"]
