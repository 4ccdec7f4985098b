"""dinoscope export-embeddings: the run's vectors, ids and labels as NumPy, CSV and Parquet, read back unchanged."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from dinoscope.deploy.embeddings import export_embeddings
from dinoscope.errors import DinoscopeError
from dinoscope.rundir import artifacts
from dinoscope.sources import load_source

from conftest import cli_exit_code


@pytest.mark.parametrize("fmt", ["npy", "parquet"])
def test_npy_and_parquet_read_back_as_a_source(mapped_run, tmp_path, fmt):
    emb = artifacts.read_embeddings(mapped_run / artifacts.EMBEDDINGS)
    path = export_embeddings(mapped_run, fmt, tmp_path / f"out.{'npz' if fmt == 'npy' else fmt}")
    back = load_source(str(path))
    np.testing.assert_array_equal(back.embeddings, emb.vectors)  # float32 stored as float32: exact
    assert back.labels == emb.labels
    if fmt == "parquet":
        assert back.ids == emb.ids and back.origins == emb.origins
    else:
        with np.load(path) as z:
            assert z["ids"].tolist() == emb.ids and z["sources"].tolist() == emb.origins


def test_csv_has_one_row_per_image_with_exact_values(mapped_run, capsys):
    assert cli_exit_code(["export-embeddings", str(mapped_run), "--format", "csv"]) == 0
    path = mapped_run / artifacts.EXPORT / "embeddings.csv"
    assert str(path) in capsys.readouterr().err
    emb = artifacts.read_embeddings(mapped_run / artifacts.EMBEDDINGS)
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:4] == ["id", "label", "split", "source"] and len(rows[0]) == 4 + emb.vectors.shape[1]
    assert [r[0] for r in rows[1:]] == emb.ids and [r[1] for r in rows[1:]] == emb.labels
    values = np.array([[float(v) for v in r[4:]] for r in rows[1:]], dtype=np.float32)
    np.testing.assert_array_equal(values, emb.vectors)  # repr of a float32's float64 value round-trips exactly


def test_an_unknown_format_is_one_line(mapped_run):
    with pytest.raises(DinoscopeError, match="choose one of npy, csv, parquet"):
        export_embeddings(mapped_run, "xlsx")
