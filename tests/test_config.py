"""Settings: defaults, flags, YAML, and clear errors."""

import pytest

from dinoscope.config import FLAGS, Settings, load_settings, settings_from_flags
from dinoscope.errors import DinoscopeError


def test_defaults_are_the_offline_recipe():
    s = Settings()
    assert s.source.source == "digits"
    assert s.model.model == "dinov2-vits14" and s.model.pool == "cls"
    assert s.maps.maps == ["pca", "tsne", "umap", "poincare"]
    assert s.maps.tsne.perplexity == 30 and s.metrics.k == 10 and s.metrics.sample == 5000


def test_flags_map_onto_settings():
    s = settings_from_flags(source="x", random_weights=True, perplexity=12, maps="tsne, pca", sample=100)
    assert s.source.source == "x" and s.model.random_weights
    assert s.maps.tsne.perplexity == 12 and s.maps.maps == ["tsne", "pca"] and s.metrics.sample == 100


def test_every_flag_points_at_a_real_setting():
    defaults = Settings().model_dump()
    for dotted in FLAGS.values():
        node = defaults
        for part in dotted.split("."):
            assert part in node, dotted
            node = node[part]


def test_yaml_then_flags(tmp_path):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("model:\n  pool: mean\n  batch_size: 8\nmaps:\n  tsne:\n    perplexity: 5\n")
    s = settings_from_flags(cfg, batch_size=4)
    assert s.model.pool == "mean" and s.model.batch_size == 4 and s.maps.tsne.perplexity == 5
    assert s.maps.umap.n_neighbors == 15  # untouched sections keep their defaults


def test_base_settings_are_kept_under_overrides():
    base = settings_from_flags(source="cifar10", k=20)
    s = settings_from_flags(base=base, perplexity=10)
    assert s.source.source == "cifar10" and s.neighbors.k == 20 and s.maps.tsne.perplexity == 10


@pytest.mark.parametrize(
    "flags, match",
    [
        ({"pool": "max"}, "model.pool"),
        ({"maps": "pca,foo"}, "unknown map 'foo'"),
        ({"batch_size": 0}, "model.batch_size"),
        ({"colour": "red"}, "unknown setting"),
    ],
)
def test_bad_settings_give_one_line_errors(flags, match):
    with pytest.raises(DinoscopeError, match=match) as err:
        settings_from_flags(**flags)
    assert "\n" not in str(err.value)


def test_unreadable_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(DinoscopeError, match="cannot read config"):
        load_settings(bad)
    with pytest.raises(DinoscopeError, match="cannot read config"):
        load_settings(tmp_path / "missing.yaml")
