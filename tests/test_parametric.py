"""Learned maps: students of t-SNE, UMAP and the disk, their TorchScript modules and held-out figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from dinoscope.config import MapSettings, settings_from_flags
from dinoscope.errors import DinoscopeError
from dinoscope.geometry import ball
from dinoscope.maps import ParametricPoincare, ParametricTSNE, ParametricUMAP, TSNEMap
from dinoscope.metrics.placement import heldout_figures, knn_heldout_figures, placement_figures, split, subgraph
from dinoscope.neighbors import knn_graph
from dinoscope.pipeline import build_map

FAST_STUDENT = dict(max_epochs=60, patience=8)
EPS32 = np.finfo(np.float32).eps  # 1.2e-7


@pytest.fixture(scope="module")
def digits():
    """500 digits to fit on, 100 to place, their labels, and a teacher: a short t-SNE of all 600 (a learned map's
    teachers are t-SNE, UMAP and the disk: maps of separated clusters, which its cells follow)."""
    X, y = load_digits(return_X_y=True)
    X = X[:600].astype(np.float32)
    tsne = TSNEMap(n_iter=250, early_exaggeration_iter=100, n_jobs=1)
    teacher = tsne.fit_transform(X, knn=knn_graph(X, k=30)).astype(np.float64)
    return X[:500], X[500:], y[:600], teacher


def _disk(Y: np.ndarray) -> np.ndarray:
    """A Euclidean layout squeezed into the disk (radius < 0.9) to stand in for a Poincaré teacher."""
    r = np.linalg.norm(Y, axis=1, keepdims=True)
    return 0.9 * np.tanh(r / r.max() * 2) * Y / np.maximum(r, 1e-12)


def test_tsne_student_learns_its_teacher_and_places_new_points(digits):
    X, X_new, _, teacher = digits
    m = ParametricTSNE(**FAST_STUDENT)
    Y = m.fit_transform(X, teacher=teacher[:500])
    assert Y.shape == (500, 2) and Y.dtype == np.float32
    assert m.training_["epochs"] <= 60
    # the student reproduces its teacher closely, and places points it never saw near the teacher's (measured: 0.01
    # and 0.08 of the map's extent)
    scale = np.abs(teacher).max()
    assert np.median(np.linalg.norm(Y - teacher[:500], axis=1)) < 0.05 * scale
    assert np.median(np.linalg.norm(m.transform(X_new) - teacher[500:], axis=1)) < 0.15 * scale
    np.testing.assert_array_equal(ParametricTSNE(**FAST_STUDENT).fit_transform(X, teacher=teacher[:500]), Y)


def test_poincare_student_stays_inside_the_disk(digits):
    X, X_new, _, teacher = digits
    T = _disk(teacher)
    m = ParametricPoincare(**FAST_STUDENT).fit(X, teacher=T[:500])
    d = ball.distance(m.embedding_.astype(np.float64), T[:500])
    assert np.median(d) < 0.3  # hyperbolic distance to the teacher's point (measured: 0.04)
    assert np.median(ball.distance(m.transform(X_new).astype(np.float64), T[500:])) < 1.0  # never seen (0.50)
    huge = m.transform(np.full((3, 64), 1e6, np.float32))
    # the network projects in float32: 1 - EPS and the scaling round by at most 6 eps32/2 (as `project` in float64)
    assert np.all(np.linalg.norm(huge.astype(np.float64), axis=1) <= 1 - ball.EPS + 4 * EPS32)
    with pytest.raises(DinoscopeError, match="inside the unit disk"):
        ParametricPoincare().fit(X, teacher=teacher[:500] * 10)


def test_students_choose_the_teachers_cells():
    """Two far-apart clusters in the teacher's map: every new point lands in its own cluster's cells (a regression
    network would put the ambiguous ones between them), and the cells follow 2√n up to the `cells` cap."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (300, 8)) + 3, rng.normal(0, 1, (300, 8)) - 3]).astype(np.float32)
    side = np.repeat([0, 1], 300)
    teacher = np.column_stack([np.where(side == 0, -50.0, 50.0) + rng.normal(0, 1, 600), rng.normal(0, 1, 600)])
    fit = np.r_[0:250, 300:550]
    for m, cells in ((ParametricUMAP(**FAST_STUDENT), 45), (ParametricTSNE(cells=8, **FAST_STUDENT), 8)):
        placed = m.fit(X[fit], teacher=teacher[fit]).transform(np.delete(X, fit, axis=0))
        assert m.training_["cells"] == cells  # round(2 * sqrt(500)) = 45
        assert np.array_equal(placed[:, 0] > 0, np.delete(side, fit) == 1)
        assert np.abs(np.abs(placed[:, 0]) - 50).max() < 10  # inside the clusters, not between them


def test_torchscript_module_matches_transform(digits, tmp_path):
    X, X_new, _, teacher = digits
    for m, T in ((ParametricTSNE(max_epochs=3), teacher[:500]), (ParametricUMAP(max_epochs=3), teacher[:500]),
                 (ParametricPoincare(max_epochs=3), _disk(teacher)[:500])):
        m.fit(X, teacher=T)
        m.save(tmp_path / "map.pt")
        module = torch.jit.load(str(tmp_path / "map.pt"))
        with torch.no_grad():
            out = module(torch.from_numpy(X_new[:7]))  # another batch size than the trace's example
        assert out.dtype == torch.float32 and out.shape == (7, 2)
        # exact: the trace replays the float32 ops `transform` runs, on the same 7 rows, in this process
        np.testing.assert_array_equal(out.numpy(), m.transform(X_new[:7]))


def test_tsne_student_narrows_where_cells_are_many(digits):
    X, _, _, teacher = digits
    assert [ParametricTSNE().units(c) for c in (45, 128, 200, 256)] == [128, 128, 81, 64]  # hidden x cells <= 2^14
    assert ParametricUMAP().units(256) == ParametricPoincare().units(256) == 128
    assert ParametricTSNE(max_epochs=2).fit(X, teacher=teacher[:500]).net_.scores.in_features == 128  # 45 cells
    assert ParametricTSNE(hidden=32, max_epochs=2).fit(X, teacher=teacher[:500]).net_.scores.in_features == 32


def test_best_cell_is_torchs_argmax_first_of_equals():
    from dinoscope.maps.networks import best_cell, quiet_jit

    scores = torch.randn(300, 37, generator=torch.Generator().manual_seed(0))
    scores[:50, 5] = scores[:50, 20] = scores[:50].max(dim=1).values + 1  # ties: the first column wins, as in torch
    chosen = best_cell(scores)
    assert chosen.dtype == torch.int64
    assert torch.equal(chosen, scores.argmax(dim=1)) and (chosen[:50] == 5).all()
    with quiet_jit():  # traced, torch's own argmax: the module chooses on new rows too
        traced = torch.jit.trace(best_cell, scores[:3])
    assert torch.equal(traced(scores), chosen)


def test_bad_input_is_refused(digits):
    X, _, _, teacher = digits
    with pytest.raises(DinoscopeError, match="teacher"):
        ParametricTSNE().fit(X)
    with pytest.raises(DinoscopeError, match=r"shape \(500, 2\)"):
        ParametricTSNE().fit(X, teacher=teacher[:10])
    with pytest.raises(DinoscopeError, match="64-D"):
        ParametricTSNE(max_epochs=2).fit(X, teacher=teacher[:500]).transform(X[:, :5])
    with pytest.raises(DinoscopeError, match="kNN graph has"):
        ParametricUMAP().fit(X, knn=knn_graph(X[:100], k=20), teacher=teacher[:500])


def test_settings_add_teachers_before_their_students():
    settings = MapSettings(maps=["param_tsne", "pca", "param_poincare", "tsne"])
    assert settings.maps == ["tsne", "param_tsne", "pca", "poincare", "param_poincare"]
    m = build_map("param_umap", settings_from_flags(seed=4))
    assert isinstance(m, ParametricUMAP) and m.random_state == 4 and m.cells == 256


def test_subgraph_is_the_exact_graph_of_the_kept_rows(digits):
    X = digits[0]
    graph = knn_graph(X, k=40)
    keep, held = split(len(X), 0.1, seed=0)
    assert len(held) == 50 and not set(keep) & set(held)
    sub = subgraph(graph, keep)
    direct = knn_graph(X[keep], k=sub.k)
    assert sub.k >= 20
    # digits have ties: compare distances. Both graphs compute each float32 cosine distance the same way, but BLAS
    # may block the 450- and 500-row products differently: each is within (64 + 4) eps32 of exact (a 64-term dot of
    # unit vectors and their normalisation)
    np.testing.assert_allclose(sub.distances, direct.distances, rtol=0, atol=2 * (X.shape[1] + 4) * EPS32)
    assert (sub.indices == direct.indices).mean() > 0.95


def test_placement_figures_of_a_perfect_and_a_random_map():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    labels = (X[:, 0] > 0).astype(str).tolist()
    perfect = placement_figures(X[:300], X[:300], X[300:], X[300:], X[:300], X[300:], labels[:300], labels[300:],
                                metric="euclidean")
    assert perfect["knn_recall"] == 1.0 and perfect["trustworthiness"] == 1.0 and perfect["agreement"] == 1.0
    assert perfect["knn_accuracy"] > 0.9
    noise = rng.normal(size=(400, 2))
    bad = placement_figures(X[:300], noise[:300], X[300:], noise[300:], X[:300], X[300:], labels[:300],
                            labels[300:], metric="euclidean")
    assert bad["knn_recall"] < 0.2 and bad["agreement"] < 0.2 and bad["trustworthiness"] < 0.7


def test_knn_heldout_figures_of_a_faithful_and_a_shuffled_map():
    # four groups on a plane seen in 16-D: the plane itself is a faithful map of them
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 2000)
    plane = (np.array([[0, 0], [0, 6], [6, 0], [6, 6]])[labels] + rng.normal(size=(2000, 2))).astype(np.float32)
    X = plane @ rng.normal(size=(2, 16)).astype(np.float32) + 0.01 * rng.normal(size=(2000, 16)).astype(np.float32)
    X += 20  # away from the origin: k-NN placement searches by cosine
    good = knn_heldout_figures(X, [str(v) for v in labels], plane, sample=1000, metric="euclidean")
    assert (good["n_fit"], good["n_placed"]) == (900, 100)  # a tenth of the seeded sample
    assert good["knn_accuracy"] > 0.9 and good["agreement"] > 0.6 and good["trustworthiness"] > 0.95
    shuffled = knn_heldout_figures(X, [str(v) for v in labels], plane[rng.permutation(2000)], sample=1000,
                                   metric="euclidean")
    assert shuffled["knn_accuracy"] < 0.5 and shuffled["trustworthiness"] < good["trustworthiness"] - 0.2
    assert knn_heldout_figures(X[:22], None, plane[:22]) is None  # 20 fitted: too few for 10 neighbours


def test_heldout_figures_fit_on_ninety_percent(digits):
    X, X_new, y, teacher = digits
    X_all = np.vstack([X, X_new])
    out = heldout_figures(ParametricTSNE(**FAST_STUDENT), X_all, [str(v) for v in y], knn_graph(X_all, k=30),
                          teacher, seed=1)
    assert (out["n_fit"], out["n_placed"]) == (540, 60)
    assert out["knn_accuracy"] > 0.5 and out["agreement"] > 0.4 and out["trustworthiness"] > 0.8
