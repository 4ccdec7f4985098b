"""report.html: one self-contained page with the settings, the plots, the metrics and the timings."""

from __future__ import annotations

import base64
from html import escape

from ..maps import title
from ..rundir import artifacts
from ..rundir.directory import RunDir, atomic_path
from .scatter import RANDOM_BANNER

METRIC_COLUMNS = [
    ("trustworthiness", "trustworthiness"),
    ("continuity", "continuity"),
    ("knn_recall", "10-NN recall"),
    ("knn_accuracy", "10-NN accuracy (map)"),
    ("knn_accuracy_embedding", "10-NN accuracy (embedding, ceiling)"),
    ("hierarchy_score", "hierarchy score (disk)"),
    ("coarse_knn_accuracy", "10-NN superclass accuracy"),
    ("seconds", "seconds"),
]

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} table{border-collapse:collapse;margin:1em 0} td,th{padding:.3em .8em;
border-bottom:1px solid #ddd;text-align:left} td.num{text-align:right;font-variant-numeric:tabular-nums}
.banner{background:#b00020;color:#fff;padding:.7em 1em;font-weight:bold;border-radius:4px}
img{max-width:100%;border:1px solid #eee;margin:.5em 0} .muted{color:#666}
"""


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return escape(str(value))


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(
            f"<td class=num>{_fmt(c)}</td>" if isinstance(c, (int, float)) else f"<td>{_fmt(c)}</td>" for c in row
        ) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _png(run: RunDir, rel: str) -> str:
    data = base64.b64encode(run.file(rel).read_bytes()).decode()
    return f'<img alt="{escape(rel)}" src="data:image/png;base64,{data}">'


def render_report(run: RunDir) -> str:
    """The report page as a string (no external files, so it can be mailed or attached)."""
    manifest = run.manifest
    ext = manifest["stages"].get("extract", {})
    settings = manifest.get("settings", {})
    metrics = artifacts.read_json(run, artifacts.METRICS)
    random_weights = bool(manifest.get("random_weights"))
    parts = [f"<!doctype html><meta charset=utf-8><title>dinoscope · {escape(run.path.name)}</title>",
             f"<style>{STYLE}</style><h1>dinoscope report</h1>",
             f"<p class=muted>{escape(str(run.path))}</p>"]
    if random_weights:
        parts.append(f"<p class=banner>{escape(RANDOM_BANNER)}. Maps and metrics below show the pipeline "
                     "working, not what a trained DINO model sees.</p>")
    src = settings.get("source", {})
    model = settings.get("model", {})
    rows = [
        ["dataset", f"{src.get('source')} (split {src.get('split')})"],
        ["images", f"{ext.get('n')} embedded of {ext.get('n_items')}, {len(ext.get('skipped', []))} skipped"],
        ["model", ext.get("model") or "precomputed embeddings"],
        ["weights", ext.get("weights") or "–"],
        ["resolution · pooling", f"{ext.get('resolution', '–')} px · {ext.get('pool', '–')}"],
        ["precision · device", f"{ext.get('precision') or '–'} · {ext.get('device') or '–'}"],
        ["batch size", model.get("batch_size")],
        ["kNN graph", f"k={settings.get('neighbors', {}).get('k')}, {settings.get('neighbors', {}).get('metric')}"],
        ["seed", settings.get("seed")],
        ["versions", ", ".join(f"{k} {v}" for k, v in manifest.get("versions", {}).items())],
    ]
    parts += ["<h2>Settings</h2>", _table(["", ""], rows)]
    parts += ["<h2>Maps</h2>", _png(run, artifacts.plot_file("grid"))]
    parts.append(f"<h2>Faithfulness</h2><p class=muted>k = {metrics['k']}, exact on a seeded subsample; "
                 "higher is better for every figure but seconds.</p>")
    mrows = [[title(m)] + [v.get(c) for c, _ in METRIC_COLUMNS] for m, v in metrics["maps"].items()]
    parts.append(_table(["map"] + [h for _, h in METRIC_COLUMNS], mrows))
    if sampled := {m: v["fitted_on"] for m, v in metrics["maps"].items() if "fitted_on" in v}:
        parts.append(f"<p>{escape(', '.join(title(m) for m in sampled))} fitted on a seeded sample of "
                     f"{max(sampled.values()):,} of the {metrics['n']:,} images (maps.fit_max); the others are "
                     "placed among their nearest sampled images, as `dinoscope place` does.</p>")
    parts += _heldout_section(metrics)
    timings = [[stage, rec.get("seconds")] for stage, rec in manifest["stages"].items()]
    parts += ["<h2>Timings</h2>", _table(["stage", "seconds"], timings)]
    if ext.get("images_per_s"):
        parts.append(f"<p>Extraction: {ext['images_per_s']:.1f} images/s.</p>")
    if run.file(artifacts.FINDINGS).exists():
        parts += _analysis_sections(run, artifacts.read_json(run, artifacts.FINDINGS))
    skipped = ext.get("skipped", [])
    if skipped:
        parts += [f"<h2>Skipped images ({len(skipped)})</h2>",
                  _table(["id", "reason"], [[s["id"], s["reason"]] for s in skipped[:200]])]
    return "\n".join(parts) + "\n"


def _heldout_section(metrics: dict) -> list[str]:
    """Placing points the maps never saw, both ways `dinoscope place` can (metrics.json maps[name]["knn_heldout"]
    for every map, ["heldout"] for the learned ones), when there are any."""
    k = metrics["k"]
    rows = []
    for key, method in (("knn_heldout", "k-NN"), ("heldout", "learned")):
        for m, v in metrics["maps"].items():
            if h := v.get(key):
                rows.append([title(m), method, h["n_fit"], h["n_placed"], h["knn_recall"], h["trustworthiness"],
                             h["knn_accuracy"], h["agreement"], h.get("fit_seconds", h.get("seconds"))])
    if not rows:
        return []
    return [f"<h3>Placing new images (held out)</h3><p class=muted>k-NN (what <code>dinoscope place</code> does by "
            f"default, on every map): a tenth of the metrics' sample (every image up to metrics.sample) placed among "
            f"the rest at the weighted mean of their nearest images on the map; agreement is with where the map "
            f"itself put them. Learned: each learned map refitted on 90 % of the images places the other 10 %; "
            f"agreement is with the non-parametric map fitted on all images. Figures over each placed image's {k} "
            f"nearest fitted images.</p>",
            _table(["map", "method", "fitted", "placed", f"{k}-NN recall", "trustworthiness", f"{k}-NN accuracy",
                    "agreement", "seconds (fit or place)"], rows)]


def _agreement(c: dict) -> str:
    if c.get("nmi") is None:
        return "no labels to compare with"
    return f"NMI {c['nmi']:.3f}, ARI {c['ari']:.3f} against the labels"


def _analysis_sections(run: RunDir, a: dict) -> list[str]:
    """One section per analysis: what was found, and its image grid when the images could be read."""
    grids = a.get("grids", {})
    img = lambda name: _png(run, grids[name]) if name in grids else ""  # noqa: E731
    hd, km = a["hdbscan"], a["kmeans"]
    parts = ["<h2>Clusters</h2>",
             f"<p>HDBSCAN on a {hd['dims']}-D UMAP: {hd['n_clusters']} clusters, "
             f"{hd['noise_fraction']:.1%} noise; {_agreement(hd)}.<br>"
             f"k-means (k = {km['k']}) on the embeddings: {_agreement(km)}.</p>", img("clusters")]
    if "fitted_on" in hd:
        parts.insert(-1, f"<p>HDBSCAN fitted on a seeded sample of {hd['fitted_on']:,} of the {a['n']:,} images, "
                         "k-means too (analysis.cluster_max); every other image takes the cluster of its nearest "
                         "sampled images.</p>")
    out = a["outliers"]
    parts += ["<h2>Outliers</h2>",
              f"<p>Scored by the distance to the {out['k']}-th neighbour (and LOF over {out['lof_k']}); "
              f"the most outlying first: {escape(', '.join(out['top'][:10]))}.</p>", img("outliers")]
    dup = a["duplicates"]
    found = ", ".join(f"{n} {k}" for k, n in (dup.get("n_pairs") or {}).items() if n) or "none"
    test = (f"cosine similarity at least {dup['threshold']}" if dup.get("threshold") is not None else
            "a pair far closer than both images' ordinary neighbours")
    parts += ["<h2>Near-duplicates</h2>",
              f"<p>{dup['n_groups']} groups ({dup['n_images']} images); pairs by kind: {escape(found)} "
              f"(exact: same pixels; perceptual: image hashes; semantic: embeddings, {escape(test)}). "
              + (f"{escape(dup['note'])}. " if dup.get("note") else "")
              + f"<b>{dup['n_cross_split_pairs']}</b> pairs cross splits (train/test leaks).</p>",
              img("duplicates")]
    issues = a.get("label_issues")
    if issues:
        parts += ["<h2>Possible label mistakes</h2>",
                  f"<p>Images whose {issues['k']} nearest neighbours mostly carry another label.</p>",
                  _table(["id", "label", "suggested", "score"],
                         [[x["id"], x["label"], x["suggested"], x["score"]] for x in issues["top"]]),
                  img("label_issues")]
    return parts


def write_report(run: RunDir) -> None:
    """Write report.html atomically."""
    with atomic_path(run.file(artifacts.REPORT)) as tmp:
        tmp.write_text(render_report(run), encoding="utf-8")
