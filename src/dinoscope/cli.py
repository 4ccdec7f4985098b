"""The `dinoscope` command: one subcommand per stage, plus `run` (all of them) and `demo`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import click
import typer

from . import pipeline
from .config import settings_from_flags
from .console import console, stdout
from .errors import DinoscopeError
from .maps import MAPS
from .memory import keep_freed_memory
from .options import settings_command
from .rundir.artifacts import REPORT

app = typer.Typer(
    name="dinoscope",
    help="Understand an image collection: DINO embeddings → faithful maps → plots, metrics and a report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# Options that are not settings, declared once; every setting is an option derived from `config` (see `options`).
Out = Annotated[Path, typer.Option("--out", "-o", help="Run directory to write (created if missing).")]
RunArg = Annotated[Path, typer.Argument(help="An existing run directory.", show_default=False)]
Config = Annotated[Path | None, typer.Option("--config", help="YAML file of settings (flags override it).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
Split = Annotated[str | None, typer.Option(help="train | test | all. [default: all]", show_default=False)]
Device = Annotated[str | None, typer.Option(help="auto | cpu | cuda[:N]. [default: the run's]", show_default=False)]
ALL = ("source", "model", "neighbors", "maps", "metrics", "analysis", "seed")


def _stages(run_dir: Path, stages: tuple[str, ...], flags: dict) -> None:
    """Run stages on an existing run directory, with flags over its stored settings."""
    run, stored = pipeline.open_run(run_dir, create=False)
    settings = settings_from_flags(base=stored, **flags)
    run.manifest["settings"] = settings.model_dump(mode="json")
    with run.writing():
        for name in stages:
            pipeline.STAGE_FUNCS[name](run, settings, True)


@settings_command(app, *ALL)
def run(out: Out = Path("runs/default"), config: Config = None, quiet: Quiet = False, **flags) -> None:
    """Run every stage: extract → neighbors → maps → metrics → analyze → plot → report.

    Stages whose inputs and settings did not change are skipped, so re-running is cheap.
    Every setting is an option (grouped below by stage and by map).

    [bold]Examples[/]

      dinoscope run --source cifar10 --model dinov2-vits14 --out runs/cifar10

      dinoscope run --source ~/photos --weights dinov2_vits14.safetensors --out runs/photos

      dinoscope run --source vectors.parquet --maps tsne,umap --out runs/mine

      dinoscope run --source cifar10 --center-class cat --superclasses classes.yaml

      dinoscope run --source /shared/photos --engine ray --ray-address auto --out runs/photos
    """
    settings = settings_from_flags(config, **flags)
    result = pipeline.run_pipeline(out, settings, progress=not quiet)
    console.print(f"[bold green]done[/] report: {result.file(REPORT)}")


@settings_command(app, "source", "model", "seed")
def extract(out: Out = Path("runs/default"), config: Config = None, quiet: Quiet = False, **flags) -> None:
    """Embed the images of a source into RUN/embeddings.parquet (resumable, in shards).

    [bold]Example[/]

      dinoscope extract --source ./images --model dino-vits16 --out runs/photos

      dinoscope extract --source ./images --engine ray --out runs/photos   (a local Ray instance)

      dinoscope extract --source s3://bucket/images.parquet --engine ray --ray-address ray://head:10001 --out runs/big
    """
    settings = settings_from_flags(config, **flags)
    pipeline.run_pipeline(out, settings, progress=not quiet, stages=("extract",))


@settings_command(app, "neighbors")
def neighbors(run_dir: RunArg, **flags) -> None:
    """Build the shared kNN graph RUN/neighbors.npz from the embeddings.

    [bold]Example[/]   dinoscope neighbors runs/photos --k 50
    """
    _stages(run_dir, ("neighbors",), flags)


@settings_command(app, "maps", "metrics", "seed", name="map")
def map_(run_dir: RunArg, **flags) -> None:
    """Fit the 2-D maps into RUN/maps.parquet (only those whose settings changed), then score them.

    [bold]Example[/]   dinoscope map runs/photos --maps tsne --perplexity 50
    """
    _stages(run_dir, ("maps", "metrics"), flags)


@settings_command(app, "metrics")
def metrics(run_dir: RunArg, **flags) -> None:
    """Score every map's faithfulness into RUN/metrics.json.

    [bold]Example[/]   dinoscope metrics runs/photos --sample 10000
    """
    _stages(run_dir, ("metrics",), flags)


@settings_command(app, "analysis")
def analyze(run_dir: RunArg, **flags) -> None:
    """Clusters, outliers, duplicates (exact, perceptual, semantic; train/test leaks) and label issues into
    RUN/analysis.parquet.

    The findings and their image grids go into RUN/analysis.json, RUN/plots/analysis/ and the report.

    [bold]Example[/]   dinoscope analyze runs/cifar10 --duplicate-threshold 0.99
    """
    _stages(run_dir, ("analyze",), flags)


@app.command()
def search(run_dir: RunArg,
           image: Annotated[Path | None, typer.Option(help="Query image file.")] = None,
           id: Annotated[str | None, typer.Option("--id", help="Query by the id of an image of the run.")] = None,
           vector: Annotated[Path | None, typer.Option(help="Query by a vector saved with np.save.")] = None,
           k: Annotated[int, typer.Option("-k", "--k", help="How many results.")] = 12,
           grid: Annotated[Path | None, typer.Option(help="Where to write the result grid. [default: "
                                                          "RUN/search/<query>.png]", show_default=False)] = None,
           ) -> None:
    """Find the k images of RUN most similar to an image file, an id, or a vector (cosine similarity).

    Prints a table and writes a grid image of the results.

    [bold]Examples[/]

      dinoscope search runs/cifar10 --image cat.jpg -k 12

      dinoscope search runs/cifar10 --id cifar10:test:00042
    """
    import numpy as np
    from rich.table import Table

    from .query.search import search as run_search

    query = np.load(vector) if vector is not None and vector.is_file() else None
    if vector is not None and query is None:
        raise DinoscopeError(f"{vector} is not a file; save the query vector with np.save")
    name = image.stem if image else (id or vector.stem).replace("/", "_").replace(":", "_")
    path = grid or run_dir / "search" / f"{name}.png"
    path.unlink(missing_ok=True)  # a grid left by an earlier search must not pass for this one's
    hits = run_search(run_dir, image=image, id=id, vector=query, k=k, grid=path)
    table = Table("rank", "id", "similarity", "label", "source")
    for h in hits:
        table.add_row(str(h.rank), h.id, f"{h.similarity:.4f}", h.label or "", h.source)
    stdout().print(table)
    if path.exists():
        console.print(f"grid: {path}")


@app.command()
def place(run_dir: RunArg,
          source: Annotated[str, typer.Option("--source", "-s", help="New images: a folder, .npz/.npy images, or "
                                              ".npy/.npz/.parquet embeddings made like the run's.",
                                              show_default=False)],
          method: Annotated[str, typer.Option(
              "--method", help="knn: every map, each new point among its nearest fitted points; learned: the "
                               "learned maps' forward pass (what export and serve ship).")] = "knn",
          split: Split = None, device: Device = None, quiet: Quiet = False) -> None:
    """Put new images on RUN's maps without refitting.

    Embeds them with the run's own backbone and settings, writes RUN/placed.parquet (id, source, label,
    <map>_x, <map>_y) and RUN/plots/placed_<map>.png (the run's map in grey, the new points on top).
    --method knn (the default) places on every map; --method learned needs the learned maps, fitted with
    --maps param_umap,param_tsne,param_poincare.

    [bold]Examples[/]

      dinoscope place runs/photos --source ~/photos/today

      dinoscope place runs/mine --source new_vectors.npy

      dinoscope map runs/photos --maps param_umap,param_tsne,param_poincare

      dinoscope place runs/photos --source ~/photos/today --method learned
    """
    from rich.table import Table

    from .query.place import place as place_points

    placed = place_points(run_dir, source, split=split or "all", device=device, method=method,
                          progress=not quiet)
    n = len(placed.ids)
    table = Table("map", "placed", "ms", "points/s", "plot")
    for name, seconds in placed.seconds.items():
        table.add_row(name, str(n), f"{seconds * 1000:.1f}", f"{n / max(seconds, 1e-9):,.0f}",
                      str(placed.plots[name]))
    stdout().print(table)
    if placed.embed_seconds:
        console.print(f"embedded {n} images in {placed.embed_seconds:.1f}s")
    console.print(f"[bold green]done[/] {placed.path}")


@app.command("export")
def export_(run_dir: RunArg,
            format: Annotated[str, typer.Option(
                "--format", "-f", help="torchscript | onnx | triton (LibTorch) | triton-onnx (ONNX Runtime).")
            ] = "triton",
            out: Annotated[Path | None, typer.Option(
                "--out", "-o", help="Folder to write. [default: RUN/export/FORMAT]", show_default=False)] = None,
            name: Annotated[str, typer.Option(help="Triton model name (the model folder's name).")] = "dinoscope",
            max_batch_size: Annotated[int, typer.Option(help="Triton max_batch_size.")] = 64) -> None:
    """Export the run's feature extractor: uint8 images (N, H, W, 3) in; embeddings and learned-map coordinates out.

    Resizing and normalising happen inside the model; batch size, height and width are dynamic; fp32.

    The written model is reloaded and checked against the run's model (max abs difference 1e-4) before it is kept.

    [bold]Examples[/]

      dinoscope export runs/photos --format triton --out model_repository

      dinoscope export runs/photos --format onnx --out deploy/
    """
    from .deploy.export import export_run

    with console.status(f"exporting {format}"):
        result = export_run(run_dir, format, out, name=name, max_batch_size=max_batch_size)
    sig = result.signature
    if sig.random_weights:
        console.print("[bold yellow]  warning[/] the run's backbone has RANDOM weights: so does the export")
    console.print(f"[bold green]done[/] {result.path}: outputs {', '.join(sig.outputs)} "
                  f"(max abs difference from the run's model {result.max_abs_diff:.1e})")


@app.command("export-embeddings")
def export_embeddings(run_dir: RunArg,
                      format: Annotated[str, typer.Option("--format", "-f", help="npy (an .npz of embeddings, ids, "
                                                          "labels, splits, sources) | csv | parquet.")] = "npy",
                      out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write. [default: "
                                                               "RUN/export/embeddings.npz|csv|parquet]",
                                                               show_default=False)] = None) -> None:
    """Write the run's embeddings, ids and labels for other tools: NumPy, CSV or Parquet.

    [bold]Examples[/]

      dinoscope export-embeddings runs/photos --format npy

      dinoscope export-embeddings runs/photos --format csv --out photos.csv
    """
    from .deploy.embeddings import export_embeddings as write

    console.print(f"[bold green]done[/] {write(run_dir, format, out)}")


@app.command("export-atlas")
def export_atlas(run_dir: RunArg,
                 map: Annotated[str | None, typer.Option("--map", help="Map the printed command opens on (every "
                                                         "map's columns are written). [default: tsne, else the "
                                                         "run's first map]", show_default=False)] = None,
                 out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write. [default: "
                                                          "RUN/export/atlas.parquet]", show_default=False)] = None,
                 images: Annotated[bool, typer.Option("--images/--no-images", help="Add an image column of PNG "
                                                      "thumbnails (when the run's images can be read).")] = True,
                 quiet: Quiet = False) -> None:
    """Write the run as one Parquet file for Apple's Embedding Atlas, and print the command that opens it.

    Columns: id, label, split, source, every map's <map>_x/<map>_y, the kNN graph (neighbors), thumbnails (image).

    Embedding Atlas itself is not needed to write the file: pip install embedding-atlas to view it.

    [bold]Examples[/]

      dinoscope export-atlas runs/photos

      dinoscope export-atlas runs/photos --map umap --no-images --out photos.parquet
    """
    from .deploy.atlas import export_atlas as write

    result = write(run_dir, out, map_name=map, images=images, progress=not quiet)
    console.print(f"[bold green]done[/] {result.path}: {result.rows} rows, maps {', '.join(result.maps)}"
                  f"{', neighbours' if result.neighbors else ''}{', thumbnails' if result.images else ''}")
    stdout().print(result.command, markup=False, emoji=False)


@app.command()
def serve(run_dir: RunArg,
          host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes the service to the network.")
                          ] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port.")] = 8000,
          token: Annotated[str | None, typer.Option(
              help="Require 'Authorization: Bearer TOKEN' (or set $DINOSCOPE_TOKEN).", show_default=False)] = None,
          max_upload_mb: Annotated[float, typer.Option(help="Largest request body accepted (413 above).")] = 20.0,
          max_batch: Annotated[int, typer.Option(help="Most images per forward pass.")] = 32,
          batch_wait_ms: Annotated[float, typer.Option(help="How long a request waits for others to batch with."
                                                       )] = 5.0,
          device: Device = None) -> None:
    """Serve the run over HTTP: POST /embed, /search, /place; GET /health; API docs at /docs.

    Concurrent requests share forward passes. Uploads are size-limited and decompression bombs refused.

    [bold]Examples[/]

      dinoscope serve runs/photos

      DINOSCOPE_TOKEN=s3cret dinoscope serve runs/photos --host 0.0.0.0 --port 9000

      curl -F image=@cat.jpg -F k=5 http://127.0.0.1:8000/search
    """
    import uvicorn

    from .deploy.service import create_app

    api = create_app(run_dir, token=token, max_upload_mb=max_upload_mb, max_batch=max_batch,
                     batch_wait_ms=batch_wait_ms, device=device)
    console.print(f"serving {run_dir} on http://{host}:{port} (docs: http://{host}:{port}/docs)")
    uvicorn.run(api, host=host, port=port, log_level="warning")


@app.command()
def plot(run_dir: RunArg) -> None:
    """Draw RUN/plots/<map>.png and the side-by-side RUN/plots/grid.png.

    [bold]Example[/]   dinoscope plot runs/photos
    """
    _stages(run_dir, ("plot",), {})


@app.command()
def report(run_dir: RunArg) -> None:
    """Write RUN/report.html: settings, plots, metrics and timings on one self-contained page.

    [bold]Example[/]   dinoscope report runs/photos
    """
    _stages(run_dir, ("report",), {})


@app.command()
def view(run_dir: RunArg,
         export: Annotated[Path | None, typer.Option("--export", help="Write a static folder here instead of "
                                                     "serving (works from any static file server).")] = None,
         host: Annotated[str, typer.Option(help="Address to bind; other machines can connect only if you "
                                                "bind a public one.")] = "127.0.0.1",
         port: Annotated[int, typer.Option(help="Port to serve on.")] = 8765,
         no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser.")] = False,
         thumb_size: Annotated[int, typer.Option(help="Thumbnail size in pixels.")] = 32,
         quiet: Quiet = False) -> None:
    """Show every map of RUN in the browser: WebGL scatter, thumbnails on hover, neighbours, lasso selection.

    The viewer's data is prepared once into RUN/viewer and RUN/thumbs and reused while the run is unchanged.

    [bold]Examples[/]

      dinoscope view runs/cifar10

      dinoscope view runs/cifar10 --port 9000 --no-browser

      dinoscope view runs/cifar10 --export site/   (then e.g. python -m http.server -d site)
    """
    from .viewer import app as viewer

    if export is not None:
        out = viewer.export(run_dir, export, thumb_size=thumb_size, progress=not quiet)
        console.print(f"[bold green]done[/] static viewer: {out.resolve()}")
        return
    viewer.serve(run_dir, host=host, port=port, open_browser=not no_browser, thumb_size=thumb_size)


@app.command()
def demo(out: Out = Path("runs/demo"), quiet: Quiet = False) -> None:
    """The demo: scikit-learn's digits, every stage and every map, learned maps included.

    With the model hub in reach (a 3 s check), it uses DINOv2 ViT-S/14's trained weights (a 90 MB download, cached);
    offline it uses a random-weights DINO ViT-S/16 and says so: the maps then show the pipeline working, not a
    trained model. (DINO v1's architecture offline, because an untrained DINOv2 scales every block by LayerScale's
    1e-5 and so gives nearly the same vector for every image.)
    """
    settings = settings_from_flags(source="digits", maps=list(MAPS), **_demo_model())
    result = pipeline.run_pipeline(out, settings, progress=not quiet)
    console.print(f"[bold green]done[/] open the report: {result.file(REPORT).resolve()}")
    console.print(f"next: dinoscope view {out}   ·   dinoscope place {out} --source NEW   ·   "
                  f"dinoscope export {out} --format onnx   ·   dinoscope serve {out}")


def _demo_model() -> dict:
    """The demo's backbone: trained DINOv2 ViT-S/14 from the hub when it answers, else random DINO ViT-S/16."""
    from .console import say, warn
    from .embed.backbones import build_backbone, hub_reachable

    if hub_reachable():
        try:
            build_backbone("dinov2-vits14")  # downloads into the hub cache once; the run then finds it there
            say("demo", "trained DINOv2 ViT-S/14 weights from the model hub")
            return {"model": "dinov2-vits14"}
        except DinoscopeError as exc:
            warn(f"{exc}")
    warn("the model hub cannot be reached, so the demo uses RANDOM weights (DINO ViT-S/16): the maps show the "
         "pipeline, not a trained model; with network, `make demo` fetches DINOv2 ViT-S/14 itself, or pass a "
         "downloaded checkpoint: dinoscope run --source digits --weights PATH")
    return {"model": "dino-vits16", "random_weights": True}


@app.command()
def models() -> None:
    """List the model aliases and the timm names they stand for."""
    from .embed.backbones import list_models

    for alias, name in list_models():
        print(f"{alias:24} {name}")


# Recent typer carries its own copy of click, whose exceptions are not click's: catch both kinds.
try:
    from typer._click.exceptions import ClickException as _TyperClickException
except ImportError:  # typer that uses click itself
    _TyperClickException = click.ClickException
_ABORT = (click.exceptions.Abort, typer.Abort)
_EXIT = (click.exceptions.Exit, typer.Exit)
_USAGE = (click.ClickException, _TyperClickException)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit status 2."""
    keep_freed_memory()
    try:
        app(args=argv, prog_name="dinoscope", standalone_mode=False)
    except DinoscopeError as exc:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        sys.exit(2)
    except _ABORT:
        console.print("[bold red]aborted[/]")
        sys.exit(130)
    except _EXIT as exc:
        sys.exit(exc.exit_code)
    except _USAGE as exc:
        exc.show()
        sys.exit(exc.exit_code)
