"""The viewer's server (only the run's prepared files, no path traversal, localhost), its static export and CLI."""

from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from viewer_fixtures import make_run

from dinoscope.cli import main
from dinoscope.errors import DinoscopeError
from dinoscope.viewer import app as viewer
from dinoscope.viewer.app import create_viewer_app, export


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("viewer"))


@pytest.fixture(scope="module")
def client(run_dir):
    return TestClient(create_viewer_app(run_dir, progress=False))


def test_serves_the_page_and_the_prepared_data(client):
    page = client.get("/")
    assert page.status_code == 200 and "assets/viewer.js" in page.text
    assert "Content-Security-Policy" in page.text and "default-src 'self'" in page.text  # no inline or remote code
    assert client.get("/assets/viewer.js").status_code == 200
    index = client.get("/data/index.json").json()
    assert index["n"] == 120
    coords = client.get(f"/data/{index['maps'][0]['file']}")
    assert coords.status_code == 200 and len(coords.content) == 120 * 2 * 4
    assert client.get(f"/thumbs/{index['thumbs']['files'][0]}").headers["content-type"] == "image/png"


def test_serves_the_images_by_row(client):
    res = client.get("/image/5")
    assert res.status_code == 200
    assert Image.open(io.BytesIO(res.content)).size == (viewer.LARGE, viewer.LARGE)
    assert client.get("/image/120").status_code == 404
    assert client.get("/image/-1").status_code == 404
    assert client.get("/image/abc").status_code == 422


@pytest.mark.parametrize("url", [
    "/data/../manifest.json", "/data/..%2fmanifest.json", "/data/%2e%2e%2fmanifest.json",
    "/data/%2e%2e/manifest.json", "/thumbs/..%2f..%2f..%2fetc%2fpasswd", "/data/..%5cmanifest.json",
    "/assets/..%2findex.html", "/data/.%2e", "/manifest.json", "/maps.parquet", "/embeddings.parquet",
    "/run/manifest.json", "/data/%2fetc%2fpasswd", "/data/.hidden", "/static/index.html", "/models/x.pt",
])
def test_path_traversal_and_other_files_are_refused(client, run_dir, url):
    (run_dir / "viewer" / ".hidden").write_text("secret")
    res = client.get(url)
    assert res.status_code in (404, 422), url
    assert "format_version" not in res.text and "root:" not in res.text


def test_the_server_binds_localhost_by_default(run_dir, monkeypatch):
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw))
    main(["view", str(run_dir), "--no-browser", "--port", "8999"])
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8999


def test_export_writes_a_static_folder(run_dir, tmp_path):
    out = export(run_dir, tmp_path / "site", progress=False)
    assert (out / "index.html").is_file() and (out / "assets" / "viewer.js").is_file()
    index = json.loads((out / "data" / "index.json").read_text())
    assert all((out / "data" / m["file"]).is_file() for m in index["maps"])
    assert all((out / "thumbs" / f).is_file() for f in index["thumbs"]["files"])
    export(run_dir, out, progress=False)  # an earlier export is replaced
    assert (out / "index.html").is_file()


def test_export_refuses_folders_it_does_not_own(run_dir, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DinoscopeError, match="not an earlier viewer export"):
        export(run_dir, tmp_path / "mine", progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(DinoscopeError, match="inside the run directory"):
        export(run_dir, run_dir / "site", progress=False)


def test_cli_view_export_and_help(run_dir, tmp_path, capsys):
    main(["view", str(run_dir), "--export", str(tmp_path / "site"), "--quiet"])
    assert (tmp_path / "site" / "data" / "index.json").is_file()
    main(["view", "--help"])
    assert "--export" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["view", str(tmp_path / "nothing"), "--export", str(tmp_path / "x")])
    assert exit_.value.code == 2
