"""Duplicates of each kind on small planted data: exact copies, re-encoded / shifted / brightened copies that only
the perceptual hash finds, semantic copies that only the embedding finds, embedding neighbours the hash contradicts,
and flat images that must not pair."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dinoscope.analysis import (
    KINDS,
    analyze,
    duplicate_columns,
    duplicate_pairs,
    duplicates,
    perceptual_pairs,
    semantic_pairs,
)
from dinoscope.analysis.duplicates import hash_neighbors, standout_pairs
from dinoscope.hashing import PERCEPTUAL_HASH_BYTES, image_hashes, perceptual_hash
from dinoscope.neighbors import knn_graph
from dinoscope.rundir import artifacts

_spec = importlib.util.spec_from_file_location("bench_analysis", Path(__file__).parents[1] / "benchmarks/analysis.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@pytest.fixture(scope="module")
def planted():
    """300 digits (64 px) and 20 copies of them: JPEG q60, one-pixel shift, resize round trip, brightness."""
    images, _ = bench.digit_images()
    images = images[:300]
    rng = np.random.default_rng(3)
    originals = rng.choice(len(images), 20, replace=False)
    copies = [bench.near_copy(images[i], bench.KINDS[j % len(bench.KINDS)], rng) for j, i in enumerate(originals)]
    truth = {(int(o), 300 + j) for j, o in enumerate(originals)}
    return np.concatenate([images, np.stack(copies)]), truth


def _hashes(images):
    both = [image_hashes(x) for x in images]
    return [b[0] for b in both], [b[1] for b in both]


def _bits(code: bytes) -> np.ndarray:
    """A perceptual hash's 768 bits."""
    return np.unpackbits(np.frombuffer(code, np.uint8))


def _found(pairs, kinds, kind):
    return {tuple(p) for p in pairs[kinds == KINDS.index(kind)].tolist()}


def test_perceptual_copies_found_when_the_embedding_says_nothing(planted):
    images, truth = planted
    noise = np.random.default_rng(0).normal(size=(len(images), 32)).astype(np.float32)  # a useless embedding
    pixel, perceptual = _hashes(images)
    pairs, kinds, scores = duplicate_pairs(noise, knn_graph(noise, k=15), pixel, perceptual)
    found = _found(pairs, kinds, "perceptual")
    assert len(found & truth) >= 19 and len(found - truth) <= 1, (len(found & truth), found - truth)
    assert _found(pairs, kinds, "semantic") == set()  # noise stands out nowhere
    assert ((scores > 0) & (scores <= 1)).all()


def test_exact_copies_are_exact_with_score_one(planted):
    images, _ = planted
    images = np.concatenate([images[:100], images[[5, 7, 7]]])
    pixel, perceptual = _hashes(images)
    X = images[..., 0].reshape(len(images), -1).astype(np.float32)
    pairs, kinds, scores = duplicate_pairs(X, knn_graph(X, k=10), pixel, perceptual)
    assert _found(pairs, kinds, "exact") == {(5, 100), (7, 101), (7, 102)}
    cols = duplicate_columns(pairs, kinds, scores, [str(i) for i in range(len(images))])
    assert cols["duplicate_of"][100:] == ["5", "7", "7"] and cols["duplicate_kind"][100:] == ["exact"] * 3
    assert cols["duplicate_score"][100:] == [1.0] * 3
    assert cols["duplicate_of"][5] is None and cols["duplicate_kind"][5] is None  # the first member is the original


def test_semantic_copies_found_without_hashes():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 24)).astype(np.float32)
    X = np.vstack([X, X[:10] + 0.01 * rng.normal(size=(10, 24)).astype(np.float32)])
    graph = knn_graph(X, k=20)
    pairs, scores = semantic_pairs(X, graph)
    assert {tuple(p) for p in pairs.tolist()} == {(i, 400 + i) for i in range(10)}
    assert (scores > 0.9).all()
    fixed, _ = semantic_pairs(X, graph, threshold=0.99)  # the explicit cosine threshold still works
    assert {tuple(p) for p in fixed.tolist()} == {(i, 400 + i) for i in range(10)}
    columns, summary = analyze(X, [str(i) for i in range(len(X))], None, None, graph)  # vectors only
    dup = summary["duplicates"]
    assert dup["kinds"] == ["semantic"] and "semantic duplicates only" in dup["note"]
    assert dup["n_pairs"] == {"exact": 0, "perceptual": 0, "semantic": 10}
    assert columns["duplicate_kind"][400:] == ["semantic"] * 10 and columns["duplicate_of"][400] == "0"


def test_standout_pairs_in_blocks_are_the_pairs_of_one_block(monkeypatch):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 16)).astype(np.float32)
    X = np.vstack([X, X[:40] + 0.01 * rng.normal(size=(40, 16)).astype(np.float32)])  # copies in every block
    graph = knn_graph(X, k=15)
    whole = standout_pairs(graph.indices, graph.distances, 0.1)
    monkeypatch.setattr(duplicates, "ROWS", 7)
    blocked = standout_pairs(graph.indices, graph.distances, 0.1)
    assert len(whole[0]) >= 40
    np.testing.assert_array_equal(blocked[0], whole[0])
    np.testing.assert_array_equal(blocked[1], whole[1])


def test_semantic_pairs_the_hash_contradicts_are_dropped(planted):
    """A random network put crops of plain sky side by side; here an embedding does so for a 0 and a 1. The hash
    vetoes that pair, keeps a brightened copy it finds only weakly, and cannot judge two flat images."""
    images, _ = planted
    bright = np.clip(images[2] * 1.6, 0, 255).astype(np.uint8)  # hash ratio ~0.75: not a perceptual pair
    flat = [np.full_like(images[0], 40), np.full_like(images[0], 41)]
    images = np.concatenate([images[:300], np.stack([bright, *flat])])
    rng = np.random.default_rng(4)
    X = rng.normal(size=(len(images), 32)).astype(np.float32)
    for a, b in ((0, 1), (2, 300), (301, 302)):
        X[b] = X[a] + 1e-3 * rng.normal(size=32).astype(np.float32)
    pixel, perceptual = _hashes(images)
    graph = knn_graph(X, k=15)
    pairs, kinds, _ = duplicate_pairs(X, graph, pixel, perceptual)
    assert _found(pairs, kinds, "semantic") == {(2, 300), (301, 302)}  # the strongest kind: not perceptual
    assert [0, 1] not in pairs.tolist()
    embedding_alone, _ = semantic_pairs(X, graph)
    assert {tuple(p) for p in embedding_alone.tolist()} == {(0, 1), (2, 300), (301, 302)}


def test_flat_images_get_no_hash_and_never_pair():
    rng = np.random.default_rng(2)
    flat = [np.full((32, 32, 3), v, np.uint8) for v in range(0, 250, 10)]
    nearly = [np.clip(f.astype(int) + rng.integers(-1, 2, f.shape), 0, 255).astype(np.uint8) for f in flat]
    assert all(perceptual_hash(x) is None for x in flat + nearly)
    textured = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(30)]
    hashes = [perceptual_hash(x) for x in flat + nearly + textured]
    assert all(len(h) == PERCEPTUAL_HASH_BYTES for h in hashes[-30:])
    pairs, _ = perceptual_pairs(hashes)
    assert len(pairs) == 0


def test_hash_neighbors_leave_self_out_even_among_identical_codes():
    codes = np.zeros((5, 8), np.uint8)
    codes[4] = 255
    indices, distances = hash_neighbors(codes, 3)
    assert all(i not in row for i, row in enumerate(indices.tolist()))
    assert distances[:4, 0].tolist() == [0.0] * 4 and distances[4].tolist() == [64.0] * 3
    few, _ = hash_neighbors(codes[:2], 3)
    assert few.tolist() == [[1, -1, -1], [0, -1, -1]]
    pairs, ratios = standout_pairs(few, np.array([[0, np.inf, np.inf], [0, np.inf, np.inf]]), 0.5)
    assert pairs.tolist() == [[0, 1]] and ratios.tolist() == [0.0]


def test_embeddings_artifact_carries_hashes_or_none(tmp_path):
    images = [np.random.default_rng(i).integers(0, 256, (16, 16, 3), dtype=np.uint8) for i in range(3)]
    images.append(np.zeros((16, 16, 3), np.uint8))
    pixel, perceptual = _hashes(images)
    emb = artifacts.Embeddings(list("abcd"), list("abcd"), None, None, np.eye(4, dtype=np.float32), pixel, perceptual)
    artifacts.write_embeddings(tmp_path / "e.parquet", emb)
    back = artifacts.read_embeddings(tmp_path / "e.parquet")
    assert back.pixel_hashes == pixel and back.perceptual_hashes == perceptual and perceptual[3] is None
    artifacts.write_embeddings(tmp_path / "v.parquet", artifacts.Embeddings(list("ab"), list("ab"), None, None,
                                                                            np.eye(2, dtype=np.float32)))
    vectors_only = artifacts.read_embeddings(tmp_path / "v.parquet")
    assert vectors_only.pixel_hashes is None and vectors_only.perceptual_hashes is None


def test_jpeg_copy_hash_is_close_and_other_digit_far(planted):
    images, _ = planted
    buf = io.BytesIO()
    Image.fromarray(images[0]).save(buf, format="JPEG", quality=60)
    copy = np.asarray(Image.open(buf).convert("RGB"))
    near = int((_bits(perceptual_hash(images[0])) != _bits(perceptual_hash(copy))).sum())
    far = int((_bits(perceptual_hash(images[0])) != _bits(perceptual_hash(images[1]))).sum())
    assert near < far / 3, (near, far)


def test_brightened_copy_whose_highlights_saturate_keeps_its_hash():
    """Brightened by 20 %, a digit's strokes saturate at 255 and lose their gradients; hashed clipped at a quantile
    of its own grey levels, the copy keeps the original's hash (a few bits of 768; unclipped: ~70)."""
    images, _ = bench.digit_images()
    near, far = [], []
    for i in range(40):
        bright = np.clip(images[i] * 1.2, 0, 255).astype(np.uint8)
        assert (bright == 255).mean() > (images[i] == 255).mean()  # the copy saturates where the original did not
        own = _bits(perceptual_hash(images[i]))
        near.append(int((own != _bits(perceptual_hash(bright))).sum()))
        far.append(int((own != _bits(perceptual_hash(images[i + 1]))).sum()))
    assert np.median(near) < np.median(far) / 10, (np.median(near), np.median(far))
