"""Sources: named datasets, folders, NumPy arrays and precomputed embeddings become a checked `Dataset`."""

from __future__ import annotations

import os
import pickle
import urllib.error

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from dinoscope.errors import DinoscopeError
from dinoscope.sources import UnreadableImage, load_source

# ---------------------------------------------------------------- digits


def test_digits_images_labels_and_ids():
    ds = load_source("digits")
    assert len(ds) == 1797 and not ds.is_embedded
    assert ds.ids[17] == "digits:all:00017" and len(set(ds.ids)) == 1797
    assert ds.classes == [str(d) for d in range(10)]
    assert ds.labels[:10] == ds.classes and ds.splits is None
    img = ds.read(0)
    assert img.shape == (8, 8, 3) and img.dtype == np.uint8
    assert img.max() > 200 and (img[..., 0] == img[..., 2]).all()  # 0..16 scaled up, grey on every channel


def test_digits_refuses_a_split():
    with pytest.raises(DinoscopeError, match="digits has no splits"):
        load_source("digits", split="train")


# ---------------------------------------------------------------- cifar10


def _write_batch(path, images: np.ndarray, labels: list[int]) -> None:
    """One batch in the real CIFAR python format: (N, 3072) rows of red, green, blue planes."""
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    with open(path, "wb") as f:
        pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"fake"}, f)


@pytest.fixture
def cifar_cache(tmp_path):
    """A tiny fake CIFAR-10 copy: two images per train batch, three test images, pixel (1, 2) coloured."""
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    names = [name.encode() for name in "airplane automobile bird cat deer dog frog horse ship truck".split()]
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, f)
    for b in range(1, 6):
        images = np.zeros((2, 32, 32, 3), np.uint8)
        images[:, 1, 2] = (10 * b, 20 * b, 30 * b)
        _write_batch(root / f"data_batch_{b}", images, [b, 9])
    test = np.zeros((3, 32, 32, 3), np.uint8)
    test[0, 1, 2] = (7, 8, 9)
    _write_batch(root / "test_batch", test, [3, 5, 0])
    return tmp_path


def test_cifar10_local_copy_splits(cifar_cache):
    train = load_source("cifar10", split="train", cache_dir=cifar_cache)
    assert len(train) == 10 and train.ids[0] == "cifar10:train:00000" and set(train.splits) == {"train"}
    assert train.labels[:2] == ["automobile", "truck"] and train.classes[3] == "cat"
    first = train.read(0)
    assert first.shape == (32, 32, 3) and first.dtype == np.uint8
    assert first[1, 2].tolist() == [10, 20, 30] and first[2, 1].tolist() == [0, 0, 0]  # RGB planes, row-major
    assert train.read(8)[1, 2].tolist() == [50, 100, 150]  # batch 5 comes last

    test = load_source("cifar10", split="test", cache_dir=cifar_cache)
    assert test.ids == ["cifar10:test:00000", "cifar10:test:00001", "cifar10:test:00002"]
    assert test.labels == ["cat", "dog", "airplane"] and test.read(0)[1, 2].tolist() == [7, 8, 9]

    everything = load_source("cifar10", cache_dir=cifar_cache)
    assert len(everything) == 13 and everything.ids[10:] == test.ids and everything.ids[:10] == train.ids
    assert everything.splits.count("test") == 3
    assert len({train.fingerprint, test.fingerprint, everything.fingerprint}) == 3


def test_cifar10_cache_from_environment(cifar_cache, monkeypatch):
    monkeypatch.setenv("DINOSCOPE_CACHE", str(cifar_cache))
    assert len(load_source("cifar10", split="test")) == 3


def test_cifar10_unknown_split(cifar_cache):
    with pytest.raises(DinoscopeError, match="cifar10 has no split 'val'; choose one of all, train, test"):
        load_source("cifar10", split="val", cache_dir=cifar_cache)


def test_cifar10_incomplete_copy(cifar_cache):
    (cifar_cache / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DinoscopeError, match="test_batch is missing"):
        load_source("cifar10", split="test", cache_dir=cifar_cache)


def test_cifar10_download_failure_says_where_to_put_a_copy(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DinoscopeError, match="cifar10 could not be downloaded") as err:
        load_source("cifar10", cache_dir=tmp_path / "cache")
    assert str(tmp_path / "cache" / "cifar-10-batches-py") in str(err.value)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- folders


def _save(path, img: Image.Image, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kwargs)


@pytest.fixture
def image_folder(tmp_path):
    """Two labelled sub-folders holding every awkward kind of file, plus hidden and non-image files."""
    root = tmp_path / "pets"
    _save(root / "cats" / "grey.png", Image.new("L", (5, 4), 100))
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 0)  # fully transparent red: shows the white page
    rgba[0, 1] = (255, 0, 0, 128)  # half transparent red on white
    rgba[0, 2] = (0, 0, 255, 255)  # opaque blue
    _save(root / "cats" / "rgba.png", Image.fromarray(rgba, "RGBA"))
    palette = Image.new("P", (3, 3))
    palette.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    palette.putpixel((1, 1), 1)
    _save(root / "cats" / "palette.PNG", palette)
    # Stored 16 wide, 8 high (left red, right blue) with orientation 6: shown upright it is 8 wide, 16 high.
    wide = np.zeros((8, 16, 3), np.uint8)
    wide[:, :8] = (255, 0, 0)
    wide[:, 8:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    _save(root / "dogs" / "rotated.jpg", Image.fromarray(wide), exif=exif, quality=95)
    _save(root / "dogs" / "deep" / "sixteen.png", Image.fromarray(np.array([[65535, 32896]], np.uint16)))
    _save(root / "dogs" / "cmyk.tiff", Image.new("CMYK", (2, 2), (0, 0, 0, 0)))
    _save(root / "dogs" / "good.png", Image.new("RGB", (6, 6), (1, 2, 3)))
    noise = root / "dogs" / "truncated.png"
    _save(noise, Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)))
    noise.write_bytes(noise.read_bytes()[:6000])  # cut mid-stream: the header still reads
    (root / "dogs" / "notes.txt").write_text("not an image")
    _save(root / "dogs" / ".hidden.png", Image.new("RGB", (2, 2)))
    _save(root / ".thumbs" / "t.png", Image.new("RGB", (2, 2)))
    return root


def _read(ds, rel: str) -> np.ndarray:
    return ds.read(ds.ids.index(rel))


def test_folder_lists_labels_and_ids(image_folder, capsys):
    ds = load_source(str(image_folder))
    # Every non-hidden file is listed, images or not (notes.txt is skipped when read, never silently left out).
    assert ds.ids == sorted(ds.ids) and ds.ids == [
        "cats/grey.png", "cats/palette.PNG", "cats/rgba.png", "dogs/cmyk.tiff", "dogs/deep/sixteen.png",
        "dogs/good.png", "dogs/notes.txt", "dogs/rotated.jpg", "dogs/truncated.png",
    ]
    assert ds.labels == ["cats"] * 3 + ["dogs"] * 6 and ds.classes == ["cats", "dogs"]
    warning = capsys.readouterr().err.strip()
    assert len(warning.splitlines()) == 1 and "left out 1 hidden file and 1 hidden folder" in warning
    with pytest.raises(UnreadableImage, match=r"^dogs/notes\.txt: cannot identify image file"):
        _read(ds, "dogs/notes.txt")
    assert ds.name == "pets" and ds.origins[0] == str(image_folder.absolute() / "cats" / "grey.png")
    assert ds.splits is None and not ds.is_embedded


def test_folder_converts_every_mode_to_rgb(image_folder):
    ds = load_source(str(image_folder))
    for rel in ds.ids:
        if rel in ("dogs/notes.txt", "dogs/truncated.png"):
            continue
        img = _read(ds, rel)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, rel
    assert _read(ds, "cats/grey.png").shape == (4, 5, 3) and (_read(ds, "cats/grey.png") == 100).all()
    rgba = _read(ds, "cats/rgba.png")
    assert rgba[0, 0].tolist() == [255, 255, 255]
    assert rgba[0, 1].tolist() == [255, 127, 127]
    assert rgba[0, 2].tolist() == [0, 0, 255]
    palette = _read(ds, "cats/palette.PNG")
    assert palette[1, 1].tolist() == [0, 255, 0] and palette[0, 0].tolist() == [0, 0, 0]
    assert _read(ds, "dogs/deep/sixteen.png")[0].tolist() == [[255] * 3, [128] * 3]
    assert (_read(ds, "dogs/cmyk.tiff") == 255).all()


def test_folder_applies_exif_orientation(image_folder):
    img = _read(load_source(str(image_folder)), "dogs/rotated.jpg")
    assert img.shape == (16, 8, 3)
    top, bottom = img[2, 4].astype(int), img[13, 4].astype(int)
    assert top[0] > 200 and top[2] < 60  # the stored left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def _photo(path, size, orientation=None, cmyk=False) -> None:
    """A smooth colour gradient JPEG of `size` (w, h), optionally with an EXIF orientation or in CMYK."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    rgb = np.stack([255 * xx / w, 255 * yy / h, 128 + 0 * xx], axis=-1).astype(np.uint8)
    img = Image.fromarray(rgb)
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    (img.convert("CMYK") if cmyk else img).save(path, quality=95, exif=exif)


def test_folder_decodes_large_jpegs_at_a_reduced_scale(tmp_path):
    _photo(tmp_path / "wide.jpg", (1600, 1200))
    _photo(tmp_path / "turned.jpg", (1600, 1200), orientation=6)  # stored landscape, shown portrait
    _photo(tmp_path / "cmyk.jpg", (1600, 1200), cmyk=True)
    Image.new("RGB", (1600, 1200), (9, 99, 199)).save(tmp_path / "flat.png")
    ds = load_source(str(tmp_path))
    small, full = ds.reader(100), ds.reader(None)
    assert full == ds.read
    for ident in ("wide.jpg", "cmyk.jpg"):
        reduced = small(ds.ids.index(ident))
        assert reduced.shape == (300, 400, 3)  # 1/4: the smallest scale keeping both sides >= 2 x 100
        whole = np.asarray(Image.fromarray(full(ds.ids.index(ident))).resize((400, 300), Image.Resampling.BOX))
        assert np.abs(reduced.astype(int) - whole).mean() < 3  # the same picture, not a crop or another mode
    assert small(ds.ids.index("turned.jpg")).shape == (400, 300, 3)  # still upright
    assert small(ds.ids.index("flat.png")).shape == (1200, 1600, 3)  # PNG has no reduced decoding
    assert ds.reader(800)(0).shape == (1200, 1600, 3)  # no reduction that keeps 1600 x 1600
    sub = ds.subset([2, 0])
    assert sub.reader(100)(0).shape == small(2).shape and sub.ids[0] == ds.ids[2]


def test_folder_unreadable_file_names_its_path(image_folder):
    ds = load_source(str(image_folder))
    with pytest.raises(UnreadableImage, match=r"^dogs/truncated\.png: image file is truncated") as err:
        _read(ds, "dogs/truncated.png")
    assert "\n" not in str(err.value)


def test_folder_decompression_bomb_is_unreadable(image_folder, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4)  # the 6x6 image is more than twice that
    with pytest.raises(UnreadableImage, match=r"^dogs/good\.png: .*decompression bomb"):
        _read(load_source(str(image_folder)), "dogs/good.png")


def test_flat_folder_is_unlabelled(tmp_path):
    for name in ("b.jpeg", "a.webp", "c.bmp"):
        _save(tmp_path / name, Image.new("RGB", (3, 3), (9, 9, 9)))
    _save(tmp_path / "sub" / "d.png", Image.new("RGB", (3, 3)))  # one image at the top: no labels at all
    ds = load_source(str(tmp_path))
    assert ds.ids == ["a.webp", "b.jpeg", "c.bmp", "sub/d.png"]
    assert ds.labels is None and ds.classes is None
    assert ds.read(0).shape == (3, 3, 3)


def test_folder_errors(tmp_path):
    with pytest.raises(DinoscopeError, match="source '.*missing' does not exist: give a dataset name"):
        load_source(str(tmp_path / "missing"))
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(DinoscopeError, match=r"holds no images \(looked for \.jpg, \.jpeg, \.png"):
        load_source(str(tmp_path / "empty"))
    _save(tmp_path / "folder" / "a.png", Image.new("RGB", (2, 2)))
    with pytest.raises(DinoscopeError, match="folder' has no splits .* use split 'all'"):
        load_source(str(tmp_path / "folder"), split="test")


def test_folder_fingerprint_is_stable_and_follows_changes(tmp_path):
    _save(tmp_path / "a.png", Image.new("RGB", (4, 4), (1, 1, 1)))
    _save(tmp_path / "b.png", Image.new("RGB", (4, 4), (2, 2, 2)))
    first = load_source(str(tmp_path)).fingerprint
    assert load_source(str(tmp_path)).fingerprint == first
    _save(tmp_path / "b.png", Image.new("RGB", (5, 4), (3, 3, 3)))
    os.utime(tmp_path / "b.png", ns=(1, 1))
    assert load_source(str(tmp_path)).fingerprint != first


# ---------------------------------------------------------------- NumPy images


def test_npz_images_with_int_labels_and_classes(tmp_path):
    images = np.zeros((3, 4, 5, 4), np.uint8)
    images[1, ..., 1] = 200
    images[1, ..., 3] = 255
    path = tmp_path / "shapes.npz"
    np.savez(path, images=images, labels=np.array([1, 0, 1]), classes=np.array(["circle", "square"]))
    ds = load_source(str(path))
    assert ds.ids == ["shapes:all:00000", "shapes:all:00001", "shapes:all:00002"]
    assert ds.origins[2] == "shapes[all][2]"
    assert ds.labels == ["square", "circle", "square"] and ds.classes == ["circle", "square"]
    assert ds.read(1).shape == (4, 5, 3) and ds.read(1)[0, 0].tolist() == [0, 200, 0]
    assert ds.read(0)[0, 0].tolist() == [255, 255, 255]  # transparent pixels on white


def test_npz_and_npy_images_without_labels(tmp_path):
    grey = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    np.savez(tmp_path / "only.npz", grey)  # the only array, whatever its name
    ds = load_source(str(tmp_path / "only.npz"))
    assert ds.labels is None and ds.classes is None
    assert ds.read(1)[..., 2].tolist() == grey[1].tolist()
    np.save(tmp_path / "grey.npy", grey[..., None])
    npy = load_source(str(tmp_path / "grey.npy"))
    assert len(npy) == 2 and npy.read(0)[..., 0].tolist() == grey[0].tolist() and not npy.is_embedded


def test_npz_string_labels(tmp_path):
    np.savez(tmp_path / "s.npz", images=np.zeros((3, 2, 2, 3), np.uint8), labels=np.array(["b", "a", "b"]))
    ds = load_source(str(tmp_path / "s.npz"))
    assert ds.labels == ["b", "a", "b"] and ds.classes == ["a", "b"]


def test_npz_label_count_mismatch(tmp_path):
    np.savez(tmp_path / "bad.npz", images=np.zeros((3, 2, 2), np.uint8), labels=np.array([0, 1]))
    with pytest.raises(DinoscopeError, match="2 labels for 3 items"):
        load_source(str(tmp_path / "bad.npz"))


def test_array_errors(tmp_path):
    np.save(tmp_path / "float.npy", np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(DinoscopeError, match="images must be uint8 .*found float32.*astype"):
        load_source(str(tmp_path / "float.npy"))
    np.save(tmp_path / "channels.npy", np.zeros((2, 4, 4, 2), np.uint8))
    with pytest.raises(DinoscopeError, match=r"found \(2, 4, 4, 2\)"):
        load_source(str(tmp_path / "channels.npy"))
    np.savez(tmp_path / "range.npz", images=np.zeros((2, 2, 2), np.uint8), labels=[0, 2], classes=["a", "b"])
    with pytest.raises(DinoscopeError, match="label 2 has no class name"):
        load_source(str(tmp_path / "range.npz"))
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 2, 2), np.uint8), b=np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(DinoscopeError, match="holds arrays a, b; name the images 'images'"):
        load_source(str(tmp_path / "two.npz"))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DinoscopeError, match="cannot read .*objects.npy"):
        load_source(str(tmp_path / "objects.npy"))
    np.savez(tmp_path / "empty.npz", images=np.zeros((0, 2, 2), np.uint8))
    with pytest.raises(DinoscopeError, match="is empty"):
        load_source(str(tmp_path / "empty.npz"))
    np.save(tmp_path / "fine.npy", np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(DinoscopeError, match="fine.npy' has no splits"):
        load_source(str(tmp_path / "fine.npy"), split="train")


def test_array_fingerprint_follows_content(tmp_path):
    images = np.zeros((2, 3, 3), np.uint8)
    np.save(tmp_path / "a.npy", images)
    first = load_source(str(tmp_path / "a.npy")).fingerprint
    assert load_source(str(tmp_path / "a.npy")).fingerprint == first
    images[1, 2, 2] = 1
    np.save(tmp_path / "a.npy", images)
    assert load_source(str(tmp_path / "a.npy")).fingerprint != first


# ---------------------------------------------------------------- precomputed embeddings


def test_npy_and_npz_embeddings(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(5, 7))
    np.save(tmp_path / "vec.npy", vectors)
    ds = load_source(str(tmp_path / "vec.npy"))
    assert ds.is_embedded and ds.read is None and ds.embeddings.dtype == np.float32
    assert np.allclose(ds.embeddings, vectors, atol=1e-6) and ds.ids[4] == "vec:all:00004"
    np.savez(tmp_path / "vec.npz", embeddings=vectors, labels=np.array([0, 1, 0, 1, 1]))
    npz = load_source(str(tmp_path / "vec.npz"))
    assert npz.is_embedded and npz.labels == ["0", "1", "0", "1", "1"] and npz.classes == ["0", "1"]
    vectors[3, 2] = np.nan
    vectors[4, 0] = np.inf
    np.save(tmp_path / "nan.npy", vectors)
    with pytest.raises(DinoscopeError, match=r"2 of 5 rows hold NaN, inf or missing values \(first: row 3\)"):
        load_source(str(tmp_path / "nan.npy"))
    np.save(tmp_path / "none.npy", np.zeros((0, 4), np.float32))
    with pytest.raises(DinoscopeError, match="holds no embeddings"):
        load_source(str(tmp_path / "none.npy"))


def _parquet(path, embedding: pa.Array, **columns) -> str:
    pq.write_table(pa.table({"embedding": embedding, **columns}), path)
    return str(path)


def test_parquet_embeddings_with_columns_and_splits(tmp_path):
    flat = pa.array(np.arange(8, dtype=np.float32))
    path = _parquet(
        tmp_path / "emb.parquet", pa.FixedSizeListArray.from_arrays(flat, 2),
        id=["w", "x", "y", "z"], label=["cat", "dog", None, "cat"], split=["train", "test", "train", "train"],
        source=["a.png", "b.png", "c.png", "d.png"],
    )
    ds = load_source(path)
    assert ds.ids == ["w", "x", "y", "z"] and ds.origins[1] == "b.png"
    assert ds.labels == ["cat", "dog", None, "cat"] and ds.classes == ["cat", "dog"]
    assert ds.embeddings.tolist() == [[0, 1], [2, 3], [4, 5], [6, 7]] and ds.read is None
    train = load_source(path, split="train")
    assert train.ids == ["w", "y", "z"] and train.embeddings[1].tolist() == [4, 5]
    test = load_source(path, split="test")
    assert test.ids == ["x"] and len({ds.fingerprint, train.fingerprint, test.fingerprint}) == 3
    with pytest.raises(DinoscopeError, match="has no split 'val'; choose one of all, test, train"):
        load_source(path, split="val")


def test_parquet_plain_list_column(tmp_path):
    path = _parquet(tmp_path / "plain.parquet", pa.array([[1.0, 2.0], [3, 4]], pa.list_(pa.float64())))
    ds = load_source(path)
    assert ds.embeddings.dtype == np.float32 and ds.embeddings.tolist() == [[1, 2], [3, 4]]
    assert ds.ids == ["plain:all:00000", "plain:all:00001"] and ds.labels is None


@pytest.mark.parametrize(
    ("embedding", "message"),
    [
        (pa.array([[1.0, 2.0], [1.0, 2.0], [3.0]]), "row 2 has 1 values but row 0 has 2"),
        (pa.array([[1.0, None], [1.0, 2.0]]), "1 of 2 rows hold NaN, inf or missing values"),
        (pa.array([[1.0, float("nan")], [1.0, 2.0]]), r"\(first: row 0\)"),
        (pa.array([[1.0], None]), "row 1 has no embedding"),
        (pa.array([["a"], ["b"]]), "holds non-numbers"),
        (pa.array([1.0, 2.0]), "store one list of numbers per row"),
        (pa.array([], pa.list_(pa.float32())), "holds no embeddings"),
    ],
)
def test_parquet_bad_embeddings(tmp_path, embedding, message):
    with pytest.raises(DinoscopeError, match=message):
        load_source(_parquet(tmp_path / "bad.parquet", embedding))


def test_parquet_errors(tmp_path):
    pq.write_table(pa.table({"vector": [[1.0]]}), tmp_path / "x.parquet")
    with pytest.raises(DinoscopeError, match="has no 'embedding' column \\(it has: vector\\)"):
        load_source(str(tmp_path / "x.parquet"))
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DinoscopeError, match="cannot read .*junk.parquet as Parquet"):
        load_source(str(tmp_path / "junk.parquet"))
    with pytest.raises(DinoscopeError, match="ids must be present and unique; 'a'"):
        load_source(_parquet(tmp_path / "dup.parquet", pa.array([[1.0], [2.0]]), id=["a", "a"]))


def test_embedding_fingerprint_follows_content(tmp_path):
    np.save(tmp_path / "v.npy", np.ones((3, 2)))
    first = load_source(str(tmp_path / "v.npy")).fingerprint
    assert load_source(str(tmp_path / "v.npy")).fingerprint == first
    np.save(tmp_path / "v.npy", np.ones((3, 2)) * 2)
    assert load_source(str(tmp_path / "v.npy")).fingerprint != first


# ---------------------------------------------------------------- unknown specs


def test_unknown_spec(tmp_path):
    with pytest.raises(DinoscopeError) as err:
        load_source("imagenet")
    assert str(err.value) == (
        "unknown source 'imagenet': give a dataset name (cifar10, digits), a folder, "
        "or a .npz/.npy/.parquet/.txt file"
    )
    (tmp_path / "table.csv").write_text("a,b\n")
    with pytest.raises(DinoscopeError, match=r"unknown source .*table.csv' \(a \.csv file\)"):
        load_source(str(tmp_path / "table.csv"))


def test_list_of_paths_with_labels_relative_and_absolute(tmp_path):
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (6, 4), (255, 0, 0)).save(tmp_path / "imgs" / "red.png")
    Image.new("RGB", (6, 4), (0, 0, 255)).save(tmp_path / "blue.jpg")
    listing = tmp_path / "todo.txt"
    listing.write_text(f"# images for the cluster\nimgs/red.png\tred\n\n{tmp_path / 'blue.jpg'}\tblue\ngone.png\tred\n")
    ds = load_source(str(listing))
    assert ds.ids == ["imgs/red.png", str(tmp_path / "blue.jpg"), "gone.png"] and ds.name == "todo"
    assert ds.labels == ["red", "blue", "red"] and ds.classes == ["blue", "red"]
    assert ds.read(0)[0, 0].tolist() == [255, 0, 0] and ds.read(1).shape == (4, 6, 3)
    with pytest.raises(UnreadableImage, match="gone.png: the file no longer exists"):
        ds.read(2)
    before = ds.fingerprint
    Image.new("RGB", (6, 5), (255, 0, 0)).save(tmp_path / "imgs" / "red.png")
    assert load_source(str(listing)).fingerprint != before  # a listed file changed


@pytest.mark.parametrize("text, message", [
    ("# nothing\n\n", "lists no images"),
    ("a.png\tx\nb.png\n", "all lines alike"),
    ("a.png\na.png\n", "more than once"),
])
def test_list_of_paths_errors(tmp_path, text, message):
    (tmp_path / "l.txt").write_text(text)
    with pytest.raises(DinoscopeError, match=message):
        load_source(str(tmp_path / "l.txt"))
