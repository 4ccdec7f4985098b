"""The JSON API over one run: embed an image, search the run, place an image on its maps.

`create_app(run_dir)` builds a FastAPI app holding the run's own backbone and learned maps (`rundir.model`) and a
similarity index over its embeddings (`analysis.SimilarityIndex`); concurrent image requests share forward passes
through a micro-batcher that bounds the pixels in flight. With a token, `TokenGuard` refuses a request without it
before any of its body is read. The app is a factory so the viewer's pages can be mounted beside it in one server.
"""

# No `from __future__ import annotations`: FastAPI must evaluate the endpoints' annotations, which name
# objects local to create_app.
import asyncio
import hashlib
import json
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import DinoscopeError
from .batcher import MicroBatcher, PixelBudget
from .uploads import MAX_PIXELS, BodyLimit, decode_upload, image_pixels

TOKEN_ENV = "DINOSCOPE_TOKEN"
# Open without the token: the health check, and the API's own documentation (no image, embedding or result of the
# run; a client needs the schema to learn how to authenticate). Every other path needs the token, new ones too.
OPEN_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})


class TokenGuard:
    """ASGI middleware: 401 for a request without the bearer token, before any of its body is read.

    Outside the body limit and FastAPI's form parsing, so a client without the token cannot make the service
    parse or spool an upload. The check compares SHA-256 digests with `secrets.compare_digest`: equal lengths
    whatever the client sends, so the time a refusal takes shows neither the token nor its length.
    """

    def __init__(self, app: ASGIApp, token: str, open_paths: frozenset[str] = OPEN_PATHS):
        self.app = app
        self.digest = hashlib.sha256(token.encode()).digest()
        self.open_paths = open_paths

    def allows(self, authorization: bytes | None) -> bool:
        scheme, _, given = (authorization or b"").partition(b" ")  # as HTTPBearer reads it
        same = secrets.compare_digest(hashlib.sha256(given).digest(), self.digest)
        return same and scheme.lower() == b"bearer"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, root = scope["path"], scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        if path in self.open_paths or self.allows(dict(scope.get("headers", [])).get(b"authorization")):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"detail": "missing or wrong bearer token; send 'Authorization: Bearer <token>'"})
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body.encode()})


class Embedding(BaseModel):
    """An image's embedding, computed by the run's backbone exactly as extraction did."""

    dim: int
    embedding: list[float]
    model: str
    random_weights: bool


class Neighbor(BaseModel):
    """One search result: cosine similarity and distance (1 - similarity) to the query."""

    rank: int
    id: str
    similarity: float
    distance: float
    label: str | None
    source: str


class SearchResult(BaseModel):
    query: str
    k: int
    hits: list[Neighbor]
    random_weights: bool


class Placement(BaseModel):
    """An image's coordinates on the run's maps (map name -> [x, y]) and how they were found."""

    maps: dict[str, list[float]]
    method: str
    random_weights: bool


class Health(BaseModel):
    status: str
    run: str
    model: str
    embed_dim: int
    n_images: int
    learned_maps: list[str]
    random_weights: bool
    batches: dict[str, float]


def create_app(run_dir: str | os.PathLike, *, token: str | None = None, max_upload_mb: float = 20.0,
               max_pixels: int = MAX_PIXELS, max_batch: int = 32, batch_wait_ms: float = 5.0,
               device: str | None = None) -> FastAPI:
    """The API app for one run; `token` (or $DINOSCOPE_TOKEN) makes every endpoint but /health and the API docs
    (`OPEN_PATHS`) need it."""
    from .. import __version__
    from ..analysis import SimilarityIndex
    from ..maps import registry
    from ..query.nearby import K, check_maps, place_among
    from ..query.search import to_hits
    from ..rundir import artifacts
    from ..rundir.access import open_run
    from ..rundir.model import RunModel

    run, settings = open_run(run_dir, create=False)
    ext = run.require("extract")
    emb = artifacts.read_embeddings(run.file(artifacts.EMBEDDINGS))
    index = SimilarityIndex(emb.vectors, emb.ids, seed=settings.seed)
    model = RunModel(run, settings, device=device)
    maps = list(model.maps)  # loaded now, so the first request does not wait for it
    _, fitted = artifacts.read_maps(run.file(artifacts.MAPS))  # every map's coordinates, for k-NN placement
    check_maps(fitted, len(emb.ids))
    disks = {name for name in fitted if registry.distance(name) == "poincare"}
    random_weights = bool(run.manifest.get("random_weights"))
    token = token or os.environ.get(TOKEN_ENV) or None

    def forward(images: list[np.ndarray]) -> list[np.ndarray]:
        """One batch of images → one embedding each (the learned maps run only for /place)."""
        return list(model.embed(images))

    # Memory is bounded by pixels, not by requests: a 100 kB PNG can decode to 40 MP, and the forward pass needs
    # some 30 bytes a pixel. A batch holds at most `max_pixels` in all, and decoded images in flight (the batch
    # running and the one gathering) at most twice that; a request over it waits for its turn.
    batcher = MicroBatcher(forward, max_batch=max_batch, wait_ms=batch_wait_ms, max_cost=max_pixels)
    in_flight = PixelBudget(2 * max_pixels)
    decoder = ThreadPoolExecutor(min(4, os.cpu_count() or 1), thread_name_prefix="dinoscope-decode")
    # The token is checked by TokenGuard, before the body is read; this only declares the scheme in the docs.
    bearer = HTTPBearer(auto_error=False, description=f"Needed when the service runs with --token or ${TOKEN_ENV}")

    app = FastAPI(title="dinoscope", version=__version__,
                  description=f"Embed, search and place images with the model of the run `{Path(run.path).name}`"
                              + (" (RANDOM weights: results say nothing about a trained model)."
                                 if random_weights else "."))
    app.add_middleware(BodyLimit, max_bytes=int(max_upload_mb * 2**20))
    if token is not None:  # added last, so it runs first: no body is read for a request without the token
        app.add_middleware(TokenGuard, token=token)
    app.state.batcher = batcher
    app.state.pixel_budget = in_flight
    guarded = [Depends(bearer)]

    @app.exception_handler(DinoscopeError)
    async def _user_error(request: Request, exc: DinoscopeError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    async def _embed_upload(image: UploadFile) -> np.ndarray:
        data, name = await image.read(), image.filename or ""
        pixels = image_pixels(data, name, max_pixels)  # 400/413 from the header, before any pixel is decoded
        async with in_flight.hold(pixels):
            picture = await asyncio.get_running_loop().run_in_executor(  # off the event loop, few at once
                decoder, decode_upload, data, name, max_pixels, True)
            return await batcher.submit(picture, cost=pixels)

    @app.get("/health", response_model=Health)
    async def health() -> Health:
        """Whether the service is up, and what it serves."""
        return Health(status="ok", run=Path(run.path).name, model=ext.get("model") or "", embed_dim=index.dim,
                      n_images=len(index), learned_maps=list(maps), random_weights=random_weights,
                      batches=batcher.stats())

    @app.post("/embed", response_model=Embedding, dependencies=guarded)
    async def embed_image(image: Annotated[UploadFile, File(description="An image file (JPEG, PNG, WebP, ...)")]
                          ) -> Embedding:
        """The image's embedding by the run's backbone."""
        vector = await _embed_upload(image)
        return Embedding(dim=len(vector), embedding=vector.tolist(), model=ext.get("model") or "",
                         random_weights=random_weights)

    @app.post("/search", response_model=SearchResult, dependencies=guarded)
    async def search(image: Annotated[UploadFile | None, File(description="Query image file")] = None,
                     id: Annotated[str | None, Form(description="Or: the id of an image of the run")] = None,
                     k: Annotated[int, Form(description="How many neighbours")] = 10) -> SearchResult:
        """The k images of the run nearest to an uploaded image or to one of the run's images (cosine)."""
        if (image is None) == (id is None):
            raise HTTPException(400, "give exactly one query: an image upload ('image') or an id ('id')")
        if id is not None:
            rows, sims = index.search_ids(id, k)
        else:
            vector = await _embed_upload(image)
            rows, sims = index.search(vector, k)
        hits = [Neighbor(rank=h.rank, id=h.id, similarity=h.similarity, distance=1.0 - h.similarity,
                         label=h.label, source=h.source) for h in to_hits(emb, rows[0], sims[0])]
        return SearchResult(query=id if id is not None else (image.filename or "upload"), k=k, hits=hits,
                            random_weights=random_weights)

    @app.post("/place", response_model=Placement, dependencies=guarded)
    async def place(image: Annotated[UploadFile, File(description="An image file (JPEG, PNG, WebP, ...)")],
                    method: Annotated[str, Form(description="knn: every map, among the image's nearest run images; "
                                                            "learned: the learned maps' forward pass")] = "knn"
                    ) -> Placement:
        """The image's coordinates on the run's maps: every map by k-NN placement, or the learned maps."""
        if method not in ("knn", "learned"):
            raise HTTPException(400, f"unknown method {method!r}; choose knn or learned")
        if not (maps if method == "learned" else fitted):
            raise HTTPException(404, "this run has no learned maps to place images on; fit one first "
                                     "(param_umap, param_tsne or param_poincare)" if method == "learned" else
                                     "this run has no maps yet; run `dinoscope map` on it first")
        vector = await _embed_upload(image)
        if method == "learned":
            coords = model.coordinates(vector[None])
        else:  # the neighbours by the index /search uses: the run's vectors are normalised once, at start-up
            rows, sims = index.search(vector, min(K, len(index) - 1))
            coords = place_among(rows, 1.0 - sims, fitted, disks=disks)
        return Placement(maps={name: xy[0].tolist() for name, xy in coords.items()}, method=method,
                         random_weights=random_weights)

    return app
