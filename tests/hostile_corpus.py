"""A hostile folder of files for the folder source: broken, odd, huge-looking and plain wrong files among good images.

`make_hostile_corpus(root)` writes it and returns {relative path: kind} for every non-hidden file it made (the
paths as Python spells the names: a name that is not UTF-8 holds surrogate escapes). Each kind is in exactly one
of MUST_EMBED (a reasonable image, however unusual), MUST_SKIP (no image can be had from it) or EITHER (whether
it decodes depends on where a flipped bit fell, or on who runs the test: root reads files with permissions 000).

Also made, but no file of the source: hidden entries (HIDDEN_FILES, HIDDEN_FOLDERS), symbolic links to folders
(LINKED_FOLDERS) and folders, one of them named like an image (odd/folder.png/). Everything is deterministic
(seeded) and small; decompression bombs are headers that claim huge sizes, built byte by byte.
"""

from __future__ import annotations

import io
import os
import socket
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

MUST_EMBED = frozenset({
    "good", "good-uppercase-extension", "good-misnamed", "good-extensionless", "good-other-format",
    "good-odd-name", "good-symlink", "good-in-folder-named-like-image", "animated-gif", "animated-webp", "apng",
    "gif-truncated-after-first-frame", "16-bit-png", "16-bit-tiff", "float-tiff", "cmyk-jpeg", "cmyk-tiff",
    "palette-png", "palette-gif", "bilevel-png", "exif-rotated-jpeg", "exif-rotated-png", "exif-rotated-webp",
    "grey", "grey-alpha", "rgba",
})
MUST_SKIP = frozenset({
    "truncated-jpeg", "truncated-png", "truncated-webp", "truncated-tiff", "truncated-gif",
    "bitflip-magic-jpeg", "bitflip-magic-png", "bitflip-magic-webp", "bitflip-magic-tiff", "bitflip-ihdr-png",
    "zero-byte", "text-with-image-extension", "text-with-odd-name", "decompression-bomb", "png-text-bomb",
    "eps-ghostscript", "not-an-image", "symlink-loop", "dangling-symlink", "symlink-to-device", "fifo", "socket",
    "no-permission-text",
})
EITHER = frozenset({"bitflip-body-jpeg", "bitflip-body-png", "bitflip-body-webp", "bitflip-body-tiff",
                    "no-permission"})

HIDDEN_FILES = (".DS_Store", "good/.thumb.jpg", "other/.gitignore")
HIDDEN_FOLDERS = (".cache",)
LINKED_FOLDERS = ("links/to-good-folder", "links/up")


def make_hostile_corpus(root: Path) -> dict[str, str]:
    """Write the corpus under `root` (created); {relative path: kind} of every non-hidden file in it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    return _Corpus(root).build()


class _Corpus:
    def __init__(self, root: Path):
        self.root = root
        self.kinds: dict[str, str] = {}
        self.rng = np.random.default_rng(20240607)

    # ------------------------------------------------------------ writing

    def put(self, rel: str, data: bytes, kind: str | None) -> Path:
        """Write bytes at `rel`; `kind` None for a file that is not part of the source (hidden)."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if kind is not None:
            self.kinds[rel] = kind
        return path

    def link(self, rel: str, target: str, kind: str | None) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)
        if kind is not None:
            self.kinds[rel] = kind

    def picture(self, height: int, width: int, seed: int | None = None) -> np.ndarray:
        """A distinct RGB picture: a gradient, a few blocks and a little noise."""
        rng = np.random.default_rng(seed) if seed is not None else self.rng
        y, x = np.mgrid[0:height, 0:width]
        base = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1),
                         np.full_like(x, int(rng.integers(0, 256)))], axis=-1).astype(np.int32)
        for _ in range(3):
            y0, x0 = int(rng.integers(0, height)), int(rng.integers(0, width))
            base[y0:y0 + max(height // 3, 1), x0:x0 + max(width // 3, 1)] = rng.integers(0, 256, 3)
        base += rng.integers(-12, 13, base.shape)
        return np.clip(base, 0, 255).astype(np.uint8)

    def noise(self, height: int, width: int, channels: int = 3) -> np.ndarray:
        shape = (height, width, channels) if channels > 1 else (height, width)
        return self.rng.integers(0, 256, shape, dtype=np.uint8)

    # ------------------------------------------------------------ the corpus

    def build(self) -> dict[str, str]:
        self.good()
        self.modes()
        self.names()
        self.broken()
        self.links()
        self.odd()
        self.other()
        self.hidden()
        return dict(sorted(self.kinds.items()))

    def good(self) -> None:
        """Plenty of good images in every common format and many shapes, some in a second-level folder."""
        formats = [("jpg", "JPEG", {"quality": 90}), ("png", "PNG", {}), ("webp", "WEBP", {"quality": 85}),
                   ("bmp", "BMP", {}), ("tiff", "TIFF", {}), ("gif", "GIF", {}), ("jpeg", "JPEG", {}),
                   ("tif", "TIFF", {"compression": "tiff_lzw"})]
        sizes = [(48, 64), (64, 48), (33, 33), (1, 1), (1, 120), (120, 1), (17, 250), (96, 96), (40, 70), (300, 200)]
        for i in range(80):
            ext, fmt, kw = formats[i % len(formats)]
            h, w = sizes[i % len(sizes)]
            folder = "good" if i % 5 else "good/deeper"
            self.put(f"{folder}/img_{i:03d}.{ext}", encode(self.picture(h, w), fmt, **kw), "good")
        self.put("good/large.jpg", encode(self.picture(1200, 1600), "JPEG", quality=80), "good")
        self.put("good/UPPER.JPG", encode(self.picture(30, 40), "JPEG"), "good-uppercase-extension")
        self.put("good/Mixed.Png", encode(self.picture(30, 40), "PNG"), "good-uppercase-extension")
        # Content decides, not the name.
        self.put("good/png-named.jpg", encode(self.picture(20, 30), "PNG"), "good-misnamed")
        self.put("good/jpeg-named.png", encode(self.picture(20, 30), "JPEG"), "good-misnamed")
        self.put("good/webp-named.gif", encode(self.picture(20, 30), "WEBP"), "good-misnamed")
        self.put("good/tiff-named.bmp", encode(self.picture(20, 30), "TIFF"), "good-misnamed")
        self.put("good/photo", encode(self.picture(24, 24), "JPEG"), "good-extensionless")
        self.put("good/scan", encode(self.picture(24, 24), "PNG"), "good-extensionless")
        for ext, fmt in (("ppm", "PPM"), ("tga", "TGA"), ("pcx", "PCX"), ("ico", "ICO")):
            self.put(f"good/other.{ext}", encode(self.picture(32, 32), fmt), "good-other-format")

    def modes(self) -> None:
        """Every awkward pixel format: animations, 16-bit, float, CMYK, palettes, EXIF rotations, grey, alpha."""
        frames = [Image.fromarray(self.picture(40, 56)).quantize(32) for _ in range(4)]
        gif = encode_frames(frames, "GIF", duration=80, loop=0)
        self.put("modes/animated.gif", gif, "animated-gif")
        see_through = []
        for k in range(3):
            frame = Image.fromarray(self.picture(36, 36)).quantize(16)
            frame.info["transparency"] = k
            see_through.append(frame)
        self.put("modes/animated-transparent.gif",
                 encode_frames(see_through, "GIF", duration=50, disposal=2, transparency=0), "animated-gif")
        small = [Image.fromarray(self.picture(10 + 5 * k, 12)) for k in range(3)]  # frames of other sizes
        self.put("modes/animated-odd-frames.gif", encode_frames(small, "GIF", duration=30), "animated-gif")
        self.put("modes/two-frames.gif", encode_frames(frames[:2], "GIF", duration=500, loop=3), "animated-gif")
        rgb = [Image.fromarray(self.picture(32, 32)) for _ in range(3)]
        self.put("modes/animated.webp", encode_frames(rgb, "WEBP", duration=60), "animated-webp")
        self.put("modes/animated.png", encode_frames(rgb, "PNG", duration=60), "apng")
        self.put("modes/cut-after-first-frame.gif", gif[:int(len(gif) * 0.9)], "gif-truncated-after-first-frame")

        deep = self.rng.integers(0, 65536, (20, 28, 3), dtype=np.uint16)
        self.put("modes/grey16.png", encode(Image.fromarray(deep[..., 0]), "PNG"), "16-bit-png")
        self.put("modes/rgb48.png", png_bytes(28, 20, depth=16, colour=2, pixels=deep), "16-bit-png")
        self.put("modes/grey-alpha32.png", png_bytes(28, 20, depth=16, colour=4, pixels=deep[..., :2]), "16-bit-png")
        rgba64 = np.concatenate([deep, deep[..., :1]], axis=-1)
        self.put("modes/rgba64.png", png_bytes(28, 20, depth=16, colour=6, pixels=rgba64), "16-bit-png")
        self.put("modes/grey16.tiff", encode(Image.fromarray(deep[..., 1]), "TIFF"), "16-bit-tiff")
        self.put("modes/rgb48.tiff", tiff_bytes(28, 20, bits=16, samples=3, photometric=2,
                                                data=deep.astype("<u2").tobytes()), "16-bit-tiff")
        floats = (self.rng.random((20, 28)) * 300 - 20).astype(np.float32)  # some values outside 0..255
        self.put("modes/float.tiff", encode(Image.fromarray(floats, "F"), "TIFF"), "float-tiff")

        self.put("modes/cmyk.jpg", encode(Image.fromarray(self.picture(30, 40)).convert("CMYK"), "JPEG"), "cmyk-jpeg")
        self.put("modes/cmyk-2.jpeg", encode(Image.new("CMYK", (16, 16), (0, 200, 50, 10)), "JPEG"), "cmyk-jpeg")
        self.put("modes/cmyk.tiff", encode(Image.fromarray(self.picture(30, 40)).convert("CMYK"), "TIFF"), "cmyk-tiff")

        palette = Image.fromarray(self.picture(30, 40)).quantize(8)
        self.put("modes/palette.png", encode(palette, "PNG"), "palette-png")
        clear = palette.copy()
        clear.info["transparency"] = 0
        self.put("modes/palette-transparent.png", encode(clear, "PNG", transparency=0), "palette-png")
        self.put("modes/palette.gif", encode(palette, "GIF"), "palette-gif")
        self.put("modes/bilevel.png", encode(Image.fromarray(self.noise(30, 40, 1) > 127), "PNG"), "bilevel-png")

        wide = np.zeros((16, 32, 3), np.uint8)
        wide[:, :16] = (255, 0, 0)
        wide[:, 16:] = (0, 0, 255)
        for orientation in range(1, 9):
            exif = Image.Exif()
            exif[0x0112] = orientation
            self.put(f"modes/exif-{orientation}.jpg", encode(Image.fromarray(wide), "JPEG", exif=exif, quality=95),
                     "exif-rotated-jpeg")
        exif = Image.Exif()
        exif[0x0112] = 6
        self.put("modes/exif-6.png", encode(Image.fromarray(wide), "PNG", exif=exif), "exif-rotated-png")
        self.put("modes/exif-8.webp", encode(Image.fromarray(wide), "WEBP", exif=exif.tobytes()), "exif-rotated-webp")

        grey = Image.fromarray(self.picture(30, 40)[..., 0])
        for ext, fmt in (("png", "PNG"), ("jpg", "JPEG"), ("tiff", "TIFF"), ("bmp", "BMP"), ("webp", "WEBP")):
            self.put(f"modes/grey.{ext}", encode(grey, fmt), "grey")
        self.put("modes/grey-alpha.png", encode(Image.merge("LA", (grey, grey.point(lambda v: 255 - v))), "PNG"),
                 "grey-alpha")
        alpha = np.dstack([self.picture(30, 40), self.noise(30, 40, 1)])
        for ext, fmt in (("png", "PNG"), ("webp", "WEBP"), ("tiff", "TIFF")):
            self.put(f"modes/rgba.{ext}", encode(Image.fromarray(alpha, "RGBA"), fmt), "rgba")
        self.put("modes/invisible.png", encode(Image.new("RGBA", (20, 20), (255, 0, 0, 0)), "PNG"), "rgba")

    def names(self) -> None:
        """Names that are hard to print or store: spaces, accents, a newline, bytes that are not UTF-8."""
        for name in ("with space.jpg", "café ünïcode.png", " leading space.webp", "--help.png", "tab\there.png",
                     "new\nline.png", "x" * 200 + ".png"):
            self.put(f"names/{name}", encode(self.picture(20, 20), "PNG"), "good-odd-name")
        latin = os.fsdecode(b"names/latin-\xe9.jpg")  # not UTF-8: the name holds a surrogate escape
        self.put(latin, encode(self.picture(20, 20), "JPEG"), "good-odd-name")
        self.put("names/broken\nname.png", b"not an image\nat all\n", "text-with-odd-name")

    def broken(self) -> None:
        """Files that hold no image: truncated, bit-flipped, empty, text, decompression bombs, Ghostscript bait."""
        noisy = {"jpeg": encode(self.noise(96, 96), "JPEG", quality=90), "png": encode(self.noise(96, 96), "PNG"),
                 "webp": encode(self.noise(96, 96), "WEBP", quality=80),
                 "tiff": encode(self.noise(96, 96), "TIFF")}
        ext = {"jpeg": "jpg", "png": "png", "webp": "webp", "tiff": "tiff"}
        for fmt, data in noisy.items():
            for frac in (0.005, 0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.97):
                self.put(f"broken/truncated/{fmt}-{int(frac * 1000):03d}.{ext[fmt]}", data[:int(len(data) * frac)],
                         f"truncated-{fmt}")
            for offset in (0, 1):  # the format's signature: nothing recognises the file any more
                for bit in (0, 3, 7):
                    self.put(f"broken/bitflip/{fmt}-magic-{offset}-{bit}.{ext[fmt]}",
                             flip(data, [(offset, bit)]), f"bitflip-magic-{fmt}")
            for k in range(5):  # flips in the body: JPEG, WebP and TIFF may still decode (wrong pixels)
                spots = [(int(self.rng.integers(len(data) // 4, len(data))), int(self.rng.integers(8)))
                         for _ in range(6)]
                self.put(f"broken/bitflip/{fmt}-body-{k}.{ext[fmt]}", flip(data, spots), f"bitflip-body-{fmt}")
        small_png = encode(self.picture(8, 8), "PNG")
        for offset in (16, 19, 24):  # inside IHDR: its checksum no longer matches
            self.put(f"broken/bitflip/png-ihdr-{offset}.png", flip(small_png, [(offset, 2)]), "bitflip-ihdr-png")
        frames = [Image.fromarray(self.noise(48, 48)).quantize(64) for _ in range(3)]
        gif = encode_frames(frames, "GIF", duration=80)
        for frac in (0.02, 0.15):  # inside the first frame
            self.put(f"broken/truncated/gif-{int(frac * 100):02d}.gif", gif[:int(len(gif) * frac)], "truncated-gif")

        for name in ("empty.jpg", "empty.png", "empty.webp", "empty.tiff", "empty.gif", "empty"):
            self.put(f"broken/empty/{name}", b"", "zero-byte")
        texts = {"hello.jpg": b"hello", "hello.png": b"hello\n", "hello.webp": b"RIFF but not really",
                 "hello.tiff": b"II* but not a tiff", "hello.gif": b"GIF89a", "hello.bmp": b"BM",
                 "page.jpg": b"<!doctype html><html><body>404 not found</body></html>",
                 "data.png": b'{"error": "rate limited"}', "noise.jpg": self.noise(64, 64).tobytes()}
        for name, data in texts.items():
            self.put(f"broken/text/{name}", data, "text-with-image-extension")

        # Decompression bombs: headers claiming far more pixels than PIL's bomb limit, with almost no data.
        self.put("broken/bombs/png-30000.png", png_bytes(30000, 30000, depth=8, colour=2), "decompression-bomb")
        self.put("broken/bombs/png-100000.png", png_bytes(100000, 100000, depth=8, colour=0), "decompression-bomb")
        self.put("broken/bombs/rgba64-20000.png", png_bytes(20000, 20000, depth=16, colour=6), "decompression-bomb")
        self.put("broken/bombs/jpeg-65500.jpg", jpeg_claiming(encode(self.picture(8, 8), "JPEG"), 65500, 65500),
                 "decompression-bomb")
        gif_small = bytearray(encode(Image.fromarray(self.picture(8, 8)).quantize(4), "GIF"))
        gif_small[6:10] = struct.pack("<HH", 65535, 65535)  # the logical screen
        self.put("broken/bombs/gif-65535.gif", bytes(gif_small), "decompression-bomb")
        self.put("broken/bombs/tiff-100000.tiff", tiff_bytes(100000, 100000, bits=8, samples=1, photometric=1,
                                                            data=bytes(16)), "decompression-bomb")
        self.put("broken/bombs/webp-16384.webp", webp_canvas(16384, 16384), "decompression-bomb")
        text = b"Comment\0\0" + zlib.compress(b"A" * (4 << 20), 9)  # 4 MiB of text in a 4 KiB chunk
        self.put("broken/bombs/text-bomb.png", png_bytes(2, 2, depth=8, colour=0, extra=[(b"zTXt", text)]),
                 "png-text-bomb")
        self.put("broken/ghostscript.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
                 b"newpath 0 0 moveto 10 10 lineto stroke showpage\n%%EOF\n", "eps-ghostscript")

    def links(self) -> None:
        """Symbolic links: loops, dangling ones, one to a device, one to a good image, and two to folders."""
        self.link("links/self.png", "self.png", "symlink-loop")
        self.link("links/ping.jpg", "pong.jpg", "symlink-loop")
        self.link("links/pong.jpg", "ping.jpg", "symlink-loop")
        self.link("links/dangling.png", "missing.png", "dangling-symlink")
        self.link("links/dangling-absolute.webp", "/nonexistent-dinoscope-corpus/x.webp", "dangling-symlink")
        self.link("links/zero.jpg", "/dev/zero", "symlink-to-device")
        self.link("links/to-good.png", "../good/img_001.png", "good-symlink")
        self.link("links/to-good-folder", "../good", None)  # not followed: links to folders can loop
        self.link("links/up", "..", None)

    def odd(self) -> None:
        """A named pipe, a socket, files nobody may read, folders named like images."""
        odd = self.root / "odd"
        odd.mkdir(parents=True, exist_ok=True)
        os.mkfifo(odd / "pipe.png")  # opening it to read would wait for a writer forever
        self.kinds["odd/pipe.png"] = "fifo"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(odd / "socket.png"))
            self.kinds["odd/socket.png"] = "socket"
        except OSError:  # a socket's path has at most 107 bytes: a deep temporary folder goes without
            pass
        finally:
            sock.close()
        locked = self.put("odd/locked.png", encode(self.picture(20, 20), "PNG"), "no-permission")
        locked.chmod(0)
        self.put("odd/locked.txt", b"secret", "no-permission-text").chmod(0)
        self.put("odd/folder.png/inside.jpg", encode(self.picture(20, 20), "JPEG"), "good-in-folder-named-like-image")
        (self.root / "odd" / "empty-folder.jpg").mkdir()

    def other(self) -> None:
        """Files that are plainly no images, with names that say so."""
        zipped = io.BytesIO()
        with zipfile.ZipFile(zipped, "w") as z:
            z.writestr("a.txt", "zipped")
        buf = io.BytesIO()
        np.save(buf, np.zeros((4, 4), np.float32))
        files = {"notes.txt": b"some notes\n", "table.csv": b"a,b\n1,2\n", "data.json": b'{"a": 1}',
                 "README.md": b"# readme\n", "script.py": b"print('hi')\n", "LICENSE": b"MIT\n",
                 "page.html": b"<html></html>", "vector.svg": b'<svg xmlns="http://www.w3.org/2000/svg"/>',
                 "archive.zip": zipped.getvalue(), "array.npy": buf.getvalue(),
                 "random.bin": self.noise(32, 32).tobytes(),
                 "doc.pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"}
        for name, data in files.items():
            self.put(f"other/{name}", data, "not-an-image")

    def hidden(self) -> None:
        """Hidden entries, left out of the source (and counted in one warning)."""
        for rel in HIDDEN_FILES:
            self.put(rel, encode(self.picture(8, 8), "JPEG"), None)
        self.put(".cache/thumb.png", encode(self.picture(8, 8), "PNG"), None)


# ---------------------------------------------------------------- bytes of files


def encode(image: np.ndarray | Image.Image, fmt: str, **kwargs) -> bytes:
    """An image's bytes in `fmt`."""
    img = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def encode_frames(frames: list[Image.Image], fmt: str, **kwargs) -> bytes:
    """An animation's bytes in `fmt`."""
    buf = io.BytesIO()
    frames[0].save(buf, format=fmt, save_all=True, append_images=frames[1:], **kwargs)
    return buf.getvalue()


def flip(data: bytes, spots: list[tuple[int, int]]) -> bytes:
    """`data` with bit `bit` of byte `offset` flipped, for each (offset, bit)."""
    out = bytearray(data)
    for offset, bit in spots:
        out[offset] ^= 1 << bit
    return bytes(out)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int, height: int, *, depth: int, colour: int, pixels: np.ndarray | None = None,
              extra: list[tuple[bytes, bytes]] = ()) -> bytes:
    """A PNG built by hand (valid checksums): `pixels` as rows of big-endian samples, or one tiny IDAT when
    None (then the header may claim any size: a decompression bomb's header, no pixel allocated)."""
    if pixels is None:
        raw = b"\0"
    else:
        dtype = ">u2" if depth == 16 else np.uint8
        raw = b"".join(b"\0" + row.astype(dtype).tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    chunks = [(b"IHDR", header), *extra, (b"IDAT", zlib.compress(raw)), (b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(_chunk(kind, data) for kind, data in chunks)


def tiff_bytes(width: int, height: int, *, bits: int, samples: int, photometric: int, data: bytes) -> bytes:
    """An uncompressed little-endian TIFF built by hand, one strip; the header may claim any size."""
    n_entries = 9
    after_ifd = 8 + 2 + 12 * n_entries + 4
    per_sample = struct.pack(f"<{samples}H", *[bits] * samples) if samples > 1 else b""
    data_at = after_ifd + len(per_sample)
    bits_entry = (258, 3, samples, after_ifd if samples > 1 else bits)
    entries = [(256, 4, 1, width), (257, 4, 1, height), bits_entry, (259, 3, 1, 1), (262, 3, 1, photometric),
               (273, 4, 1, data_at), (277, 3, 1, samples), (278, 4, 1, height), (279, 4, 1, len(data))]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        packing = "<HHIH2x" if kind == 3 and count == 1 else "<HHII"
        ifd += struct.pack(packing, tag, kind, count, value)
    return b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + per_sample + data


def jpeg_claiming(jpeg: bytes, width: int, height: int) -> bytes:
    """A JPEG whose frame header (SOF0) claims width x height pixels."""
    out = bytearray(jpeg)
    sof = out.index(b"\xff\xc0")
    out[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(out)


def webp_canvas(width: int, height: int) -> bytes:
    """A WebP holding only an extended header (VP8X) that claims a width x height canvas."""
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (width - 1).to_bytes(3, "little") \
        + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x
