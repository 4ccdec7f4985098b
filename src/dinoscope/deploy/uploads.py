"""Uploaded files → decoded images, safely: a byte limit on the request body, a pixel limit checked from the
header before any pixel is decoded (decompression bombs), and a clear 4xx for anything that is not an image."""

from __future__ import annotations

import io

import numpy as np
from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_PIXELS = 40_000_000  # 40 MP: far above any photo a DINO model needs, far below a decompression bomb


def image_pixels(data: bytes, filename: str, max_pixels: int = MAX_PIXELS) -> int:
    """How many pixels an uploaded image has, read from its header alone (nothing is decoded yet); 400 when it
    is no image, 413 when it has more than `max_pixels`."""
    from PIL import Image

    if not data:
        raise HTTPException(400, f"{filename or 'the upload'} is empty; send an image file (JPEG, PNG, WebP, ...)")
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
    except Image.DecompressionBombError as exc:
        raise HTTPException(413, f"{filename or 'the image'} has too many pixels ({exc}); "
                                 "decompression-bomb protection") from None
    except Exception:  # PIL raises many types on bad files; all mean "not an image we can read"
        raise HTTPException(400, f"{filename or 'the upload'} is not an image PIL can read; send a JPEG, PNG, "
                                 "WebP, BMP or TIFF file") from None
    if width * height > max_pixels:
        raise HTTPException(413, f"{filename or 'the image'} is {width}x{height} pixels, more than the "
                                 f"{max_pixels:,} this service decodes (decompression-bomb protection)")
    return width * height


def decode_upload(data: bytes, filename: str, max_pixels: int = MAX_PIXELS, checked: bool = False) -> np.ndarray:
    """An uploaded file as (H, W, 3) uint8 RGB; 400 when it is no image, 413 when it has too many pixels
    (`checked`: `image_pixels` has already looked at its header)."""
    from ..sources.base import UnreadableImage
    from ..sources.folder import decode

    if not checked:
        image_pixels(data, filename, max_pixels)
    try:
        return decode(io.BytesIO(data), filename or "upload")
    except UnreadableImage as exc:
        raise HTTPException(400, f"{exc} (not a readable image); send a JPEG, PNG, WebP, BMP or TIFF file") from None


class BodyLimit:
    """ASGI middleware: 413 for a request body over `max_bytes`, by Content-Length or while it streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        refused = False

        async def counted() -> Message:
            # Past the limit: answer 413 now and tell the app the client left, whatever it does with that.
            nonlocal seen, refused
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes and not refused:
                refused = True
                await self._refuse(send)
            return {"type": "http.disconnect"} if refused else message

        async def guarded(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, guarded)

    async def _refuse(self, send: Send) -> None:
        import json

        body = json.dumps({"detail": f"request body larger than {self.max_bytes:,} bytes; "
                                     "send a smaller image (or start the service with a larger --max-upload-mb)"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body.encode()})

