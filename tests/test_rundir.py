"""The run directory: atomic writes, manifest versions, stage freshness."""

import json

import pytest

from dinoscope.errors import DinoscopeError
from dinoscope.hashing import fingerprint
from dinoscope.rundir.directory import FORMAT_VERSION, RunDir, atomic_path


def test_atomic_path_leaves_nothing_when_the_write_fails(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_whole_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_stage_freshness_needs_same_key_and_outputs(tmp_path):
    run = RunDir(tmp_path / "r")
    run.file("a.txt").parent.mkdir(parents=True)
    run.file("a.txt").write_text("x")
    run.mark_done("extract", "k1", 1.0, ["a.txt"])
    again = RunDir(tmp_path / "r")
    assert again.is_fresh("extract", "k1", ["a.txt"])
    assert not again.is_fresh("extract", "k2", ["a.txt"])
    run.file("a.txt").unlink()
    assert not again.is_fresh("extract", "k1", ["a.txt"])


def test_incompatible_version_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"format_version": FORMAT_VERSION + 1}))
    with pytest.raises(DinoscopeError, match="incompatible"):
        RunDir(tmp_path)


def test_corrupt_manifest_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(DinoscopeError, match="unreadable"):
        RunDir(tmp_path)


def test_missing_run_is_refused_when_not_creating(tmp_path):
    with pytest.raises(DinoscopeError, match="not a dinoscope run directory"):
        RunDir(tmp_path / "nope", create=False)


def test_fingerprint_is_order_independent_and_sensitive():
    assert fingerprint({"a": 1, "b": 2}) == fingerprint({"b": 2, "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
