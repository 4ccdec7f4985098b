"""Kill anywhere, lose nothing; one writer per run directory; a full disk is a clear error, not a broken run.

The kills are real SIGKILLs of a `dinoscope run` process at chosen atomic writes (`rundir/faults.py`), spread over
every stage and chained: each rerun resumes from what the killed one left and is itself killed at a later point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from dinoscope.rundir import artifacts
from dinoscope.rundir.directory import TEMP_SUFFIX, writer_lock

from conftest import cli_exit_code

ARGS = ["run", "--source", "digits", "--model", "dino-vits16", "--random-weights", "--resolution", "32",
        "--limit", "150", "--shard-size", "64", "--batch-size", "32", "--quiet"]
# (file, moment, stage): the first atomic write of that file in the process is where it dies.
KILLS = [
    ("shard-00001.npz", "after", "extract"),  # mid-extraction: two of three shards whole
    ("embeddings.parquet", "before", "extract"),  # every shard whole, the table written but not renamed
    ("neighbors.npz", "before", "neighbors"),
    ("tsne.pkl", "after", "maps"),  # mid-maps: t-SNE fitted and saved, the others not
    ("maps.parquet", "before", "maps"),
    ("metrics.json", "before", "metrics"),
    ("analysis.parquet", "after", "analyze"),  # the table whole, its summary not written
    ("pca.png", "after", "plot"),  # one plot drawn
    ("report.html", "before", "report"),
]


def _dinoscope(out, crash: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DINOSCOPE_CRASH_AT": crash or ""}
    return subprocess.run([sys.executable, "-m", "dinoscope", *ARGS, "--out", str(out)], env=env,
                          capture_output=True, text=True, timeout=600)


def _temps(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(f".*{TEMP_SUFFIX}"))


def _untimed(figures):
    """The figures without their timings (``seconds``, ``fit_seconds``, at any depth): only those may differ."""
    if isinstance(figures, dict):
        return {k: _untimed(v) for k, v in figures.items() if not k.endswith("seconds")}
    return figures


def _state(root) -> dict:
    """What must be bit-identical between an interrupted and an uninterrupted run."""
    emb = artifacts.read_embeddings(root / artifacts.EMBEDDINGS)
    with np.load(root / artifacts.NEIGHBORS) as graph:
        neighbours = {k: graph[k] for k in ("indices", "distances")}
    metrics = json.loads((root / artifacts.METRICS).read_text())
    figures = _untimed(metrics["maps"])
    analysis = json.loads((root / artifacts.FINDINGS).read_text())
    analysis.pop("timings")
    return {"ids": emb.ids, "vectors": emb.vectors, **neighbours, "figures": figures, "analysis": analysis,
            "maps": pq.read_table(root / artifacts.MAPS).to_pydict(),
            "table": pq.read_table(root / artifacts.ANALYSIS).to_pydict()}


def _assert_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            assert a[key] == b[key], key


@pytest.mark.slow
def test_sigkill_in_every_stage_then_rerun_equals_an_uninterrupted_run(tmp_path):
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    assert _dinoscope(reference).returncode == 0
    survived: dict[str, int] = {}
    for name, moment, stage in KILLS:
        proc = _dinoscope(crashed, f"{name}:{moment}")
        assert proc.returncode == -9, (name, proc.stderr[-2000:])  # killed where asked, not failed before it
        if (crashed / "manifest.json").exists():  # (the first manifest is written when extraction finishes)
            manifest = json.loads((crashed / "manifest.json").read_text())  # never unparseable
            assert stage not in manifest["stages"], (name, list(manifest["stages"]))  # died inside that stage
        survived[stage] = survived.get(stage, 0) + 1
    proc = _dinoscope(crashed)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert _temps(crashed) == []  # what the killed writers left half-written is gone
    assert not (crashed / artifacts.SHARDS).exists()
    _assert_equal(_state(crashed), _state(reference))
    assert set(survived) == {"extract", "neighbors", "maps", "metrics", "analyze", "plot", "report"}
    print(f"kills survived per stage: {survived}")


def test_a_second_writer_is_refused_naming_the_first(tmp_path, capsys):
    out = tmp_path / "run"
    with writer_lock(out):
        code = subprocess.run([sys.executable, "-m", "dinoscope", *ARGS, "--out", str(out)], capture_output=True,
                              text=True, timeout=300)
    assert code.returncode == 2
    err = code.stderr.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    assert f"pid {os.getpid()}" in err and "in use" in err
    assert not (out / "manifest.json").exists()  # the refused run wrote nothing


def test_a_lock_left_by_a_killed_writer_is_taken_over(tmp_path):
    out = tmp_path / "run"
    assert _dinoscope(out, "manifest.json:after").returncode == -9  # dies holding the lock
    assert (out / ".lock").exists()
    with writer_lock(out):  # flock ended with its process: the lock is free at once
        assert json.loads((out / ".lock").read_text())["pid"] == os.getpid()


def _can_mount() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.mark.skipif(not _can_mount() and not os.environ.get("CI"), reason="mounting a small tmpfs needs root")
def test_a_full_disk_is_one_line_naming_the_path_and_a_rerun_with_space_completes(tmp_path, capsys):
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(disk)], check=True)
    try:
        out = disk / "run"
        argv = ["extract", *ARGS[1:], "--out", str(out)]
        assert cli_exit_code(argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()  # status lines, then the error
        errors = [line for line in lines if line.startswith("error:")]
        assert errors == lines[-1:] and "Traceback" not in "\n".join(lines), lines
        assert errors[0].startswith("error: no space left on the device to write")
        assert str(out) in errors[0] and "MB are free" in errors[0]
        assert _temps(out) == []  # nothing half-written remains
        if (out / "manifest.json").exists():
            json.loads((out / "manifest.json").read_text())
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        assert cli_exit_code(argv) == 0
        assert len(artifacts.read_embeddings(out / artifacts.EMBEDDINGS)) == 150
    finally:
        subprocess.run(["umount", str(disk)], check=False)
