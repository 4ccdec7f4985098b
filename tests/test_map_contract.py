"""The estimator contract, checked for every map of the registry: one test per property, parametrised over
`maps.MAPS`, so a map added to the registry is held to the same rules without a line of its own."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.utils.estimator_checks import check_no_attributes_set_in_init, check_parameters_default_constructible

from dinoscope.config import MapSettings, parameter_docs
from dinoscope.errors import DinoscopeError
from dinoscope.maps import MAPS
from dinoscope.maps.registry import CONTEXT
from dinoscope.neighbors import knn_graph

# The quickest settings that still run each map's real code path (tests, not results).
QUICK = {
    "pca": {},
    "tsne": dict(n_iter=50, early_exaggeration_iter=25, n_jobs=1),
    "umap": dict(n_epochs=20),
    "poincare": dict(n_iter=50, early_exaggeration_iter=25),
    "param_umap": dict(max_epochs=3, hidden=16, device="cpu"),
    "param_tsne": dict(max_epochs=3, hidden=16, device="cpu"),
    "param_poincare": dict(max_epochs=3, hidden=16, device="cpu"),
}
NAMES = list(MAPS)


@pytest.fixture(scope="module")
def data():
    """120 digits, their labels and their shared cosine graph."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:120].astype(np.float32), [str(v) for v in y[:120]]
    return X, y, knn_graph(X, k=30)


def _teacher(X: np.ndarray, disk: bool) -> np.ndarray:
    """Coordinates for a learned map to learn: a scaled PCA, inside the disk for disk maps."""
    Z = X @ np.linalg.svd(X - X.mean(0), full_matrices=False)[2][:2].T
    Z = (Z - Z.mean(0)) / np.abs(Z - Z.mean(0)).max()
    return 0.8 * Z if disk else 10.0 * Z


def _fit(name: str, data, **params):
    """A fitted estimator of map `name` on the shared data (with its teacher for learned maps)."""
    X, y, graph = data
    estimator = MAPS[name].estimator_class()(**{**QUICK[name], **params})
    extra = {"teacher": _teacher(X, MAPS[name].disk)} if MAPS[name].learned else {}
    return estimator, estimator.fit(X, y, knn=graph, **extra)


def test_registry_entries_are_consistent():
    for name, spec in MAPS.items():
        assert spec.teacher is None or (spec.teacher in MAPS and not MAPS[spec.teacher].learned), name
        assert spec.distance in ("euclidean", "poincare")
        params = spec.estimator_class()._get_param_names()
        assert set(spec.flags) <= set(params), name
    assert set(MapSettings.model_fields) == {"maps", "fit_max", *MAPS}  # which maps, how many points, each map


@pytest.mark.parametrize("name", NAMES)
def test_settings_derive_from_the_estimator(name):
    cls = MAPS[name].estimator_class()
    section = MapSettings.model_fields[name].annotation
    own = [p for p in cls._get_param_names() if p not in CONTEXT]
    assert sorted(section.model_fields) == sorted(own)
    defaults = cls().get_params()
    assert {k: v for k, v in section().model_dump().items()} == {k: defaults[k] for k in own}
    docs = parameter_docs(cls.__doc__)
    assert all(docs.get(p) for p in own), f"{name}: every setting needs a line in the docstring's Parameters"
    assert set(cls._parameter_constraints) == set(cls._get_param_names())


@pytest.mark.parametrize("name", NAMES)
def test_sklearn_construction_rules(name):
    cls = MAPS[name].estimator_class()
    check_parameters_default_constructible(cls.__name__, cls())
    check_no_attributes_set_in_init(cls.__name__, cls())


@pytest.mark.parametrize("name", NAMES)
def test_fit_returns_self_and_a_2d_map(name, data):
    estimator, fitted = _fit(name, data)
    assert fitted is estimator
    Y = estimator.embedding_
    assert Y.shape == (len(data[0]), 2) and np.isfinite(Y).all()
    assert Y.dtype == (np.float64 if name == "poincare" else np.float32)
    if MAPS[name].disk:
        assert (np.linalg.norm(Y.astype(np.float64), axis=1) < 1).all()
    np.testing.assert_array_equal(clone(estimator).fit_transform(*data[:2], knn=data[2],
                                                                 **_teacher_kw(name, data)), Y)


def _teacher_kw(name: str, data) -> dict:
    return {"teacher": _teacher(data[0], MAPS[name].disk)} if MAPS[name].learned else {}


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_map_other_seed_other_map(name, data):
    _, a = _fit(name, data, random_state=3)
    _, b = _fit(name, data, random_state=3)
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    if name != "pca":  # PCA is deterministic whatever the seed
        _, c = _fit(name, data, random_state=4)
        assert not np.array_equal(a.embedding_, c.embedding_)


@pytest.mark.parametrize("name", NAMES)
def test_clone_get_params_and_pickle(name, data):
    estimator, _ = _fit(name, data)
    params = estimator.get_params()
    copy = clone(estimator)
    assert copy.get_params() == params and not hasattr(copy, "embedding_")
    back = pickle.loads(pickle.dumps(estimator))
    np.testing.assert_array_equal(back.embedding_, estimator.embedding_)
    if hasattr(estimator, "transform") and name not in ("tsne", "umap"):  # openTSNE/umap-learn optimise anew
        np.testing.assert_array_equal(back.transform(data[0][:5]), estimator.transform(data[0][:5]))


@pytest.mark.parametrize("name", NAMES)
def test_a_graph_of_another_size_is_refused(name, data):
    X, y, graph = data
    cls = MAPS[name].estimator_class()
    with pytest.raises(DinoscopeError, match="kNN graph has 120 points but X has 60"):
        cls(**QUICK[name]).fit(X[:60], y[:60], knn=graph, **({"teacher": np.zeros((60, 2))} if MAPS[name].learned
                                                            else {}))


@pytest.mark.parametrize("name", NAMES)
def test_a_bad_setting_is_refused_by_its_constraint(name, data):
    cls = MAPS[name].estimator_class()
    numeric = next(p for p, cons in cls._parameter_constraints.items()
                   if any(getattr(c, "left", None) is not None for c in cons))
    with pytest.raises(ValueError, match=f"'{numeric}' parameter of {cls.__name__}"):
        cls(**{numeric: -10**6}).fit(*data[:2], knn=data[2], **_teacher_kw(name, data))
