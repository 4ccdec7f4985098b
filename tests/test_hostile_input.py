"""A folder source fed a hostile corpus (see hostile_corpus.py) loses no file without a word.

The real CLI runs in this process on 270-odd files: truncated, bit-flipped, empty, text, decompression bombs,
symbolic link loops, a named pipe, ... among good images in every awkward pixel format. Every file must come out
either embedded or named as skipped with a one-line reason; with --strict the run fails in one error line.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
from hostile_corpus import (
    EITHER,
    HIDDEN_FILES,
    HIDDEN_FOLDERS,
    LINKED_FOLDERS,
    MUST_EMBED,
    MUST_SKIP,
    make_hostile_corpus,
)
from PIL import Image

from dinoscope.sources import load_source
from dinoscope.sources.reasons import printable

from conftest import cli_exit_code

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")  # PIL grumbles about the broken files

FAST_ARGS = ["--model", "dino-vits16", "--random-weights", "--resolution", "32", "--batch-size", "64", "--quiet"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(folder, {id: kind}) of the hostile corpus; ids are the relative paths as the folder source shows them."""
    root = tmp_path_factory.mktemp("hostile") / "corpus"
    kinds = make_hostile_corpus(root)
    return root, {printable(rel): kind for rel, kind in kinds.items()}


def test_corpus_is_hostile_enough(corpus):
    _, kinds = corpus
    assert len(kinds) >= 200
    assert set(kinds.values()) <= MUST_EMBED | MUST_SKIP | EITHER
    assert not (MUST_EMBED & MUST_SKIP or MUST_EMBED & EITHER or MUST_SKIP & EITHER)
    assert sum(kind == "good" for kind in kinds.values()) >= 80


@pytest.mark.slow
def test_extract_accounts_for_every_file(corpus, tmp_path, capsys):
    root, kinds = corpus
    out = tmp_path / "run"
    t0 = time.perf_counter()
    code = cli_exit_code(["extract", "--source", str(root), "--out", str(out), *FAST_ARGS])
    seconds = time.perf_counter() - t0
    printed = capsys.readouterr()
    output = printed.out + printed.err
    assert code == 0, output[-3000:]
    assert "Traceback" not in output

    stage = json.loads((out / "manifest.json").read_text())["stages"]["extract"]
    embedded = pq.read_table(out / "embeddings.parquet", columns=["id"]).column("id").to_pylist()
    skipped = {s["id"]: s["reason"] for s in stage["skipped"]}
    # Every file exactly once: embedded or skipped, never both, never missing, nothing made up.
    assert len(set(embedded)) == len(embedded) and len(skipped) == len(stage["skipped"])
    assert not set(embedded) & set(skipped)
    assert sorted([*embedded, *skipped]) == sorted(kinds)
    assert stage["n"] == len(embedded) and stage["n_items"] == len(kinds)
    for ident, reason in skipped.items():
        assert reason.strip() and len(reason.splitlines()) == 1 and "\r" not in reason, (ident, reason)
    wrongly_skipped = {i: (kinds[i], skipped[i]) for i in skipped if kinds[i] in MUST_EMBED}
    wrongly_embedded = {i: kinds[i] for i in embedded if kinds[i] in MUST_SKIP}
    assert not wrongly_skipped
    assert not wrongly_embedded

    # What is not an item is said, once each: hidden entries and links to folders that were not followed.
    warnings = [line for line in printed.err.splitlines() if line.lstrip().startswith("warning")]
    hidden = [line for line in warnings if "hidden" in line]
    assert len(hidden) == 1
    assert f"left out {len(HIDDEN_FILES)} hidden files and {len(HIDDEN_FOLDERS)} hidden folder " in hidden[0]
    linked = [line for line in warnings if "symbolic link" in line and "to folders" in line]
    assert len(linked) == 1 and f"did not follow {len(LINKED_FOLDERS)} symbolic links" in linked[0]

    # The fingerprint (names, sizes, times; a broken link's own) is stable: a second run is a cache hit.
    assert cli_exit_code(["extract", "--source", str(root), "--out", str(out), *FAST_ARGS]) == 0
    assert "up to date" in capsys.readouterr().err
    with capsys.disabled():
        print(f"\nhostile corpus: {len(kinds)} files tried, {len(embedded)} embedded, {len(skipped)} skipped, "
              f"extract took {seconds:.1f} s")


def test_strict_fails_with_one_error_line(corpus, tmp_path, capsys):
    root, _ = corpus
    out = tmp_path / "run"
    code = cli_exit_code(["extract", "--source", str(root), "--out", str(out), *FAST_ARGS, "--strict"])
    err = capsys.readouterr().err
    assert code == 2, err[-3000:]
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    # Status and warning lines come first; the failure itself is one line, the last one.
    assert len(errors) == 1 and lines[-1] == errors[0], err[-3000:]
    assert "cannot read" in errors[0] and "drop --strict" in errors[0]
    assert not (out / "embeddings.parquet").exists()
    with capsys.disabled():
        print(f"\nstrict: {errors[0]}")


def test_awkward_images_decode_upright_and_first_frame(corpus):
    root, kinds = corpus
    ds = load_source(str(root))
    read = {ident: ds.read(i) for i, ident in enumerate(ds.ids) if kinds[ident] in MUST_EMBED}
    for ident, pixels in read.items():
        assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.size, ident
    # Stored 32 wide and 16 high: orientations 5 to 8 turn it a quarter, so it shows 16 wide and 32 high.
    for orientation in range(1, 9):
        shape = read[f"modes/exif-{orientation}.jpg"].shape
        assert shape == ((32, 16, 3) if orientation >= 5 else (16, 32, 3)), (orientation, shape)
    with Image.open(root / "modes" / "animated.gif") as gif:
        assert gif.n_frames == 4
        first = np.asarray(gif.convert("RGB"))
    assert np.array_equal(read["modes/animated.gif"], first)
    assert read["modes/rgb48.png"].shape == (20, 28, 3) and read["modes/float.tiff"].shape == (20, 28, 3)
    assert read["good/large.jpg"].shape == (1200, 1600, 3)


def test_folder_that_cannot_be_listed_is_said(tmp_path, monkeypatch, capsys):
    import os

    from dinoscope.sources import folder

    (tmp_path / "locked").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "locked" / "a.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "b.png")
    real = os.scandir

    def scandir(path):
        if os.path.basename(path) == "locked":  # what a folder with permissions 000 does to anyone but root
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(folder.os, "scandir", scandir)
    ds = load_source(str(tmp_path))
    assert ds.ids == ["b.png"]
    warning = capsys.readouterr().err.strip()
    assert len(warning.splitlines()) == 1
    assert "could not list 1 folder (locked: Permission denied); the files in them are not in the source" in warning


def test_images_are_found_by_content_whatever_their_names(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (4, 4), (9, 9, 9)).save(src / "scan", format="JPEG")
    (src / "notes.txt").write_text("not an image")
    ds = load_source(str(src))
    assert ds.ids == ["notes.txt", "scan"] and ds.read(1).shape == (4, 4, 3)
    (src / "scan").unlink()  # then nothing there is an image: refused upfront, in one line
    assert cli_exit_code(["extract", "--source", str(src), "--out", str(tmp_path / "run"), *FAST_ARGS]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1 and "holds no images" in err, err
