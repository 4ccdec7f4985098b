"""The command line: end to end on digits, help texts, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import cli_exit_code

FAST_ARGS = ["--model", "dino-vits16", "--random-weights", "--resolution", "32", "--limit", "200", "--quiet"]


@pytest.mark.slow
def test_run_end_to_end_then_each_stage(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli_exit_code(["run", "--source", "digits", *FAST_ARGS, "--out", str(out)]) == 0
    assert (out / "report.html").is_file()
    assert "report.html" in capsys.readouterr().err
    # each stage alone on the same run directory: a cache hit, then a changed setting that reruns it
    for argv in (["neighbors", str(out)], ["map", str(out)], ["metrics", str(out)], ["analyze", str(out)],
                 ["plot", str(out)], ["report", str(out)]):
        assert cli_exit_code(argv) == 0, argv
        assert "up to date" in capsys.readouterr().err
    assert cli_exit_code(["map", str(out), "--maps", "pca", "--seed", "3"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["maps"]) == ["pca"]
    assert json.loads((out / "manifest.json").read_text())["settings"]["seed"] == 3


def test_help_has_examples():
    for cmd in ("run", "extract", "neighbors", "map", "metrics", "analyze", "search", "plot", "report"):
        proc = subprocess.run([sys.executable, "-m", "dinoscope", cmd, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "Example" in proc.stdout, cmd


def test_an_unknown_flag_is_a_usage_line_not_a_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dinoscope", "neighbors", str(tmp_path), "--no-such-flag"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "No such option: --no-such-flag" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) <= 4


def test_models_lists_aliases():
    proc = subprocess.run([sys.executable, "-m", "dinoscope", "models"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "dinov2-vits14" in proc.stdout and "vit_small_patch14_dinov2.lvd142m" in proc.stdout


def _bad_inputs(tmp_path):
    """(name, argv, expected message) for each kind of bad input the CLI must refuse."""
    empty = tmp_path / "empty"
    empty.mkdir()
    nan = np.ones((20, 4), np.float32)
    nan[3, 1] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    np.savez(tmp_path / "mismatch.npz", images=np.zeros((5, 8, 8, 3), np.uint8), labels=np.arange(4))
    return [
        ("unknown model", ["--model", "dinov9-huge"], "dinov9-huge"),
        ("unknown source", ["--source", "imagenet-42"], "unknown source"),
        ("missing folder", ["--source", str(tmp_path / "nope/")], "nope"),
        ("empty folder", ["--source", str(empty)], "no images"),
        ("NaN embeddings", ["--source", str(tmp_path / "nan.npy")], "NaN"),
        ("label mismatch", ["--source", str(tmp_path / "mismatch.npz")], "4"),
        ("bad setting", ["--pool", "max"], "pool"),
    ]


def test_bad_input_is_one_line_exit_2_and_leaves_run_alone(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    for name, argv, message in _bad_inputs(tmp_path):
        code = cli_exit_code(["run", "--model", "dino-vits16", "--random-weights", "--quiet", "--out", str(out),
                           *argv])
        err = capsys.readouterr().err.strip()
        assert code == 2, (name, err)
        assert err.startswith("error:") and len(err.splitlines()) == 1, (name, err)
        assert message.lower() in err.lower(), (name, err)
        assert sorted(p.name for p in out.iterdir()) == ["keep.txt"], name


def test_incompatible_run_directory(tmp_path, capsys):
    out = tmp_path / "old"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"format_version": 999}))
    assert cli_exit_code(["plot", str(out)]) == 2
    assert "incompatible" in capsys.readouterr().err
    assert cli_exit_code(["report", str(tmp_path / "never")]) == 2
    assert "not a dinoscope run directory" in capsys.readouterr().err


@pytest.mark.slow
def test_stage_before_its_input_says_what_to_run(tmp_path, capsys):
    src = tmp_path / "v.npy"
    np.save(src, np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32))
    out = tmp_path / "run"
    assert cli_exit_code(["extract", "--source", str(src), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert cli_exit_code(["map", str(out)]) == 2
    assert "dinoscope neighbors" in capsys.readouterr().err
    shutil.rmtree(out)


@pytest.mark.slow
def test_search_by_id_image_and_vector(tmp_path, capsys):
    from PIL import Image

    from dinoscope.sources import load_source

    out = tmp_path / "run"
    assert cli_exit_code(["run", "--source", "digits", *FAST_ARGS, "--maps", "pca", "--out", str(out)]) == 0
    capsys.readouterr()
    query = tmp_path / "three.png"
    Image.fromarray(load_source("digits").read(3)).save(query)
    assert cli_exit_code(["search", str(out), "--image", str(query), "-k", "4"]) == 0
    printed = capsys.readouterr()
    first = next(line for line in printed.out.splitlines() if " 1 " in line)
    assert "digits:all:00003" in first and "1.0000" in first  # the image finds itself, same backbone and weights
    assert (out / "search" / "three.png").is_file()

    assert cli_exit_code(["search", str(out), "--id", "digits:all:00003", "-k", "3"]) == 0
    assert "digits:all:00003" not in capsys.readouterr().out  # the query itself is left out

    vec = tmp_path / "v.npy"
    np.save(vec, load_vectors(out)[3])
    assert cli_exit_code(["search", str(out), "--vector", str(vec), "-k", "1"]) == 0
    assert "digits:all:00003" in capsys.readouterr().out

    not_image = tmp_path / "notes.jpg"
    not_image.write_text("hello")
    for argv, message in ((["--id", "digits:all:99999"], "unknown id"), (["--id", "digits:all:00003", "-k", "500"],
                          "k must be"), (["--image", str(not_image)], "not a readable image"),
                          (["--image", str(query), "--id", "x"], "exactly one query")):
        assert cli_exit_code(["search", str(out), *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def load_vectors(run_dir):
    from dinoscope.rundir.results import load_run

    return load_run(run_dir).embeddings.vectors
