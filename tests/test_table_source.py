"""Parquet image tables as a source: bytes or datasets' {bytes, path} structs, labels and ids by column, streamed
by row group, embedded exactly as the same images in a folder are."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from dinoscope.errors import DinoscopeError
from dinoscope.rundir import artifacts
from dinoscope.sources import load_source

from conftest import cli_exit_code

ARGS = ["--model", "dino-vits16", "--random-weights", "--resolution", "32", "--precision", "fp32", "--quiet"]


def _png(rng, shape=(20, 24, 3)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _images(n: int = 17) -> list[bytes | None]:
    rng = np.random.default_rng(0)
    images: list[bytes | None] = [_png(rng) for _ in range(n)]
    images[5] = None  # a row without an image: reported and skipped, like an unreadable file
    images[9] = b"not an image"
    return images


def _write_table(path, images, as_structs: bool) -> None:
    column = (pa.array([None if b is None else {"bytes": b, "path": f"{i}.png"} for i, b in enumerate(images)],
                       pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
              if as_structs else pa.array(images, pa.binary()))
    table = pa.table({"photo": column, "label": pa.array([i % 3 for i in range(len(images))]),
                      "key": pa.array([f"k{i:03d}" for i in range(len(images))])})
    pq.write_table(table, path, row_group_size=4)  # several row groups: rows are read group by group


@pytest.mark.parametrize("as_structs", [True, False])
def test_a_parquet_image_table_embeds_like_the_same_folder(tmp_path, as_structs):
    images = _images()
    _write_table(tmp_path / "set.parquet", images, as_structs)
    folder = tmp_path / "folder"
    folder.mkdir()
    for i, data in enumerate(images):
        (folder / f"k{i:03d}.png").write_bytes(data if data is not None else b"")
    assert cli_exit_code(["extract", "--source", str(tmp_path / "set.parquet"), "--id-column", "key", *ARGS,
                          "--out", str(tmp_path / "table")]) == 0
    assert cli_exit_code(["extract", "--source", str(folder), *ARGS, "--out", str(tmp_path / "files")]) == 0
    table = artifacts.read_embeddings(tmp_path / "table" / artifacts.EMBEDDINGS)
    files = artifacts.read_embeddings(tmp_path / "files" / artifacts.EMBEDDINGS)
    assert table.ids == [f"k{i:03d}" for i in range(17) if i not in (5, 9)]
    assert table.labels == [str(i % 3) for i in range(17) if i not in (5, 9)]
    np.testing.assert_array_equal(table.vectors, files.vectors)  # the same pixels, batches and model: same bits
    skipped = json.loads((tmp_path / "table" / "manifest.json").read_text())["stages"]["extract"]["skipped"]
    assert [s["id"] for s in skipped] == ["k005", "k009"]
    assert "no image bytes" in skipped[0]["reason"] and "\n" not in skipped[1]["reason"]


def test_columns_are_found_by_type_and_named_ones_must_exist(tmp_path):
    _write_table(tmp_path / "set.parquet", _images(), as_structs=True)
    data = load_source(str(tmp_path / "set.parquet"))  # the struct column found by its type, 'label' by name
    assert len(data) == 17 and data.labels[:3] == ["0", "1", "2"] and data.ids[0].startswith("set:all:")
    assert data.read(0).shape == (20, 24, 3)
    from dinoscope.sources.tables import Columns

    with pytest.raises(DinoscopeError, match="no column 'pixels' for the images"):
        load_source(str(tmp_path / "set.parquet"), columns=Columns(image="pixels"))
    with pytest.raises(DinoscopeError, match="column 'label' is int64, not image bytes"):
        load_source(str(tmp_path / "set.parquet"), columns=Columns(image="label"))
    pq.write_table(pa.table({"x": [1, 2]}), tmp_path / "plain.parquet")
    with pytest.raises(DinoscopeError, match="has no 'embedding' column \\(it has: x\\) nor a column of image bytes"):
        load_source(str(tmp_path / "plain.parquet"))


def test_a_datasets_save_to_disk_folder_embeds_like_the_same_folder(tmp_path):
    import datasets
    rng = np.random.default_rng(0)
    pictures = [Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)) for _ in range(9)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["cat", "dog"])})
    saved = datasets.Dataset.from_dict({"image": pictures, "label": [i % 2 for i in range(9)]}, features=features)
    saved.save_to_disk(str(tmp_path / "saved"))
    folder = tmp_path / "folder"
    folder.mkdir()
    for i, picture in enumerate(pictures):
        picture.save(folder / f"{i:03d}.png")
    assert cli_exit_code(["extract", "--source", str(tmp_path / "saved"), *ARGS, "--out", str(tmp_path / "a")]) == 0
    assert cli_exit_code(["extract", "--source", str(folder), *ARGS, "--out", str(tmp_path / "b")]) == 0
    a = artifacts.read_embeddings(tmp_path / "a" / artifacts.EMBEDDINGS)
    b = artifacts.read_embeddings(tmp_path / "b" / artifacts.EMBEDDINGS)
    assert a.labels == ["cat", "dog"] * 4 + ["cat"]  # ClassLabel integers become their names
    np.testing.assert_array_equal(a.vectors, b.vectors)  # datasets stores the PNGs losslessly: same pixels, same bits
    datasets.DatasetDict({"train": saved}).save_to_disk(str(tmp_path / "dict"))
    with pytest.raises(DinoscopeError, match="holds several splits \\(train\\); point --source at one"):
        load_source(str(tmp_path / "dict"))
