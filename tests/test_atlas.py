"""dinoscope export-atlas: one Parquet file that Apple's Embedding Atlas loads with its own code, values unchanged."""

from __future__ import annotations

import io
import json
import shlex
import shutil
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from dinoscope.rundir import artifacts
from dinoscope.rundir.directory import RunDir

from conftest import cli_exit_code

if sys.version_info < (3, 11):  # embedding-atlas itself needs Python 3.11 (the test extras install it from there on)
    pytest.skip("embedding-atlas needs Python >= 3.11", allow_module_level=True)
import embedding_atlas.cli as atlas_cli  # noqa: E402


@pytest.fixture
def atlas_cache(tmp_path, monkeypatch):
    """Embedding Atlas keeps a cache under the user cache folder: keep it inside the test's folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _printed_command(capsys) -> list[str]:
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return shlex.split(lines[0])


def test_embedding_atlas_loads_the_export_and_finds_every_column(digits_run, tmp_path, capsys, atlas_cache):
    out = tmp_path / "atlas.parquet"
    assert cli_exit_code(["export-atlas", str(digits_run), "--out", str(out)]) == 0
    argv = _printed_command(capsys)
    assert argv == ["embedding-atlas", str(out), "--x", "tsne_x", "--y", "tsne_y",
                    "--neighbors", "neighbors", "--image", "image"]
    assert out.is_file()

    # Embedding Atlas's own command, in this process, on the printed arguments: it loads the file, validates the
    # neighbours (PageRank is computed from them since --image is given), builds the viewer's props and writes
    # the static application instead of starting a server (an empty --static keeps it small).
    static, app = tmp_path / "static", tmp_path / "app"
    static.mkdir()
    atlas_cli.main.main(args=[*argv[1:], "--static", str(static), "--export-application", str(app)],
                        standalone_mode=False)
    props = json.loads((app / "data" / "metadata.json").read_text())["props"]["data"]
    assert props["projection"] == {"x": "tsne_x", "y": "tsne_y"}
    assert props["neighbors"] == "neighbors" and props["image"] == "image"
    shown = pq.read_table(app / "data" / "dataset.parquet")
    for column in ("tsne_x", "tsne_y", "neighbors", "image", props["id"], props["importance"]):
        assert column in shown.column_names
    assert np.isfinite(shown.column(props["importance"]).to_numpy()).all()

    # The values, as Embedding Atlas's loader reads them, are the run's.
    df = atlas_cli.load_datasets([str(out)])
    emb = artifacts.read_embeddings(digits_run / artifacts.EMBEDDINGS)
    map_ids, coords = artifacts.read_maps(digits_run / artifacts.MAPS)
    graph = artifacts.read_graph(RunDir(digits_run, create=False))
    assert len(df) == len(emb) and df["id"].tolist() == emb.ids == map_ids
    assert df["label"].tolist() == emb.labels and df["source"].tolist() == emb.origins
    assert {f"{m}_{a}" for m in coords for a in "xy"} <= set(df.columns)
    for name, xy in coords.items():
        np.testing.assert_array_equal(df[f"{name}_x"].to_numpy(), xy[:, 0])
        np.testing.assert_array_equal(df[f"{name}_y"].to_numpy(), xy[:, 1])
    np.testing.assert_array_equal(np.stack([np.asarray(r["ids"]) for r in df["neighbors"]]), graph.indices)
    np.testing.assert_array_equal(np.stack([np.asarray(r["distances"]) for r in df["neighbors"]]), graph.distances)
    for value in df["image"].iloc[[0, len(df) - 1]]:
        png = value["bytes"]
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(io.BytesIO(png)) as img:
            assert max(img.size) == 96 and img.mode == "RGB"


def test_no_images_other_map_and_unknown_map(digits_run, tmp_path, capsys):
    _, coords = artifacts.read_maps(digits_run / artifacts.MAPS)
    other = next(m for m in coords if m != "tsne")
    out = tmp_path / "plain.parquet"
    assert cli_exit_code(["export-atlas", str(digits_run), "--map", other, "--no-images", "--out", str(out)]) == 0
    assert _printed_command(capsys) == ["embedding-atlas", str(out), "--x", f"{other}_x", "--y", f"{other}_y",
                                        "--neighbors", "neighbors"]
    names = pq.read_schema(out).names
    assert "image" not in names and "neighbors" in names and "tsne_x" in names

    assert cli_exit_code(["export-atlas", str(digits_run), "--map", "nope", "--out", str(out)]) == 2
    assert "no map 'nope'" in capsys.readouterr().err


def test_default_path_is_inside_the_run(digits_run, tmp_path, capsys):
    run = shutil.copytree(digits_run, tmp_path / "run")  # the shared run stays as it was
    assert cli_exit_code(["export-atlas", str(run), "--no-images"]) == 0
    path = run / artifacts.EXPORT / "atlas.parquet"
    assert _printed_command(capsys)[1] == str(path) and path.is_file()
