"""Property tests: for any input the array, embedding and config loaders give a valid result or a one-line
DinoscopeError naming the fix, never another exception (numpy, pyarrow, pydantic, yaml) or a traceback.

Hypothesis draws the inputs; every file is written into a temporary folder made inside the test body
(function-scoped pytest fixtures such as tmp_path are shared by all examples, so they are not used here).
"""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dinoscope.config import FLAGS, Settings, load_settings, settings_from_flags
from dinoscope.errors import DinoscopeError
from dinoscope.sources.arrays import load_arrays
from dinoscope.sources.base import Dataset
from dinoscope.sources.embeddings import embedded, load_parquet

BOUNDED = settings(max_examples=120, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def outcome(names: str | None, load, *args, **kwargs):
    """What `load` returns, or None when it refuses with a one-line DinoscopeError (naming `names` when given).

    Any other exception propagates, and so fails the property.
    """
    try:
        return load(*args, **kwargs)
    except DinoscopeError as exc:
        message = str(exc)
        assert len(message.splitlines()) == 1, repr(message)
        assert names is None or names in message, repr(message)
        return None


def loaded_or_refused(spec, load) -> Dataset | None:
    """Write `spec` into a temporary folder and load it: a valid Dataset, or None after a one-line error naming
    the file."""
    with tempfile.TemporaryDirectory() as folder:
        path = spec.write(Path(folder))
        ds = outcome(path.name, load, path)
        if ds is not None:
            check_dataset(ds)
        return ds


def check_dataset(ds: Dataset) -> None:
    """A valid Dataset: at least one item, unique string ids, columns one per item, finite float32 (N, D)
    embeddings or (H, W, 3) uint8 images for every item, labels within the classes."""
    assert isinstance(ds, Dataset)
    n = len(ds.ids)
    assert n >= 1
    assert all(isinstance(i, str) for i in ds.ids) and len(set(ds.ids)) == n
    assert len(ds.origins) == n and all(isinstance(o, str) for o in ds.origins)
    for column in (ds.labels, ds.splits):
        assert column is None or (len(column) == n and all(v is None or isinstance(v, str) for v in column))
    if ds.classes is not None:
        assert all(isinstance(c, str) for c in ds.classes)
        assert set(ds.labels or []) - {None} <= set(ds.classes)
    assert isinstance(ds.fingerprint, str) and ds.fingerprint
    if ds.is_embedded:
        emb = ds.embeddings
        assert emb.dtype == np.float32 and emb.ndim == 2 and emb.shape[0] == n and emb.shape[1] >= 1
        assert np.isfinite(emb).all()
    else:
        for i in range(n):
            img = ds.read(i)
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.size > 0


# --------------------------------------------------------------------------- arrays of anything

DTYPES = st.one_of(
    hnp.boolean_dtypes(), hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(), hnp.floating_dtypes(),
    hnp.complex_number_dtypes(), hnp.unicode_string_dtypes(max_len=3), hnp.byte_string_dtypes(max_len=3),
    hnp.datetime64_dtypes(), hnp.timedelta64_dtypes(),
    hnp.array_dtypes(subtype_strategy=hnp.scalar_dtypes(), max_size=2),  # structured
    st.just(np.dtype(object)),
)
OBJECTS = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=3), st.lists(st.integers(), max_size=2))
TEXTS = st.sampled_from(["a", "b", "", "None", "ü", "a\nb", " x "])


@st.composite
def any_array(draw, shape=None) -> np.ndarray:
    """An array of any dtype (objects and structs too) and any shape (0-d, 0-size, up to 5-D)."""
    dtype = draw(DTYPES)
    if shape is None:
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=3))
    elements = OBJECTS if dtype == np.dtype(object) else None
    return draw(hnp.arrays(dtype, shape, elements=elements))


@st.composite
def plausible_array(draw, kind: str | None = None) -> np.ndarray:
    """Images or embeddings close to valid: a few items, maybe empty, maybe of the wrong dtype, NaN and inf."""
    n = draw(st.integers(0, 4))
    if (kind or draw(st.sampled_from(["images", "embeddings"]))) == "images":
        channels = draw(st.sampled_from([(), (), (1,), (3,), (3,), (4,), (2,)]))
        shape = (n, draw(st.integers(0, 3)), draw(st.integers(0, 3)), *channels)
        dtype = draw(st.sampled_from(["u1", "u1", "u1", "u1", "u1", "<u2", "f4", "i1", "?"]))
    else:
        shape = (n, draw(st.integers(0, 4)))
        dtype = draw(st.sampled_from(["f4", "f4", "f8", ">f8", "f2", "i8", "u8", "u1", "?", "c8", "U2"]))
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and draw(st.booleans()):  # finite values, to reach the valid results too
        return draw(hnp.arrays(dtype, shape, elements=st.floats(-100, 100, width=8 * dtype.itemsize)))
    return draw(hnp.arrays(dtype, shape))


@st.composite
def labels_for(draw, n: int) -> np.ndarray:
    """Labels for n items (or one too few / many): ints, strings, undecodable bytes, or any array at all."""
    m = draw(st.sampled_from([n, n, n, max(n - 1, 0), n + 1]))
    kind = draw(st.sampled_from(["int", "uint", "str", "bytes", "any"]))
    if kind == "int":
        return draw(hnp.arrays(st.sampled_from(["i8", "i1", ">i4"]), (m,), elements=st.integers(-1, 4)))
    if kind == "uint":
        return draw(hnp.arrays(st.sampled_from(["u1", "u8"]), (m,), elements=st.integers(0, 4)))
    if kind == "str":
        return np.array(draw(st.lists(TEXTS, min_size=m, max_size=m)), dtype="U3")
    if kind == "bytes":
        return np.array(draw(st.lists(st.sampled_from([b"a", b"\xff", b"\xc3\xbc", b""]), min_size=m, max_size=m)),
                        dtype="S2")
    return draw(any_array())


@st.composite
def classes_arrays(draw) -> np.ndarray:
    """Class names: strings, bytes, a 0-d or 2-D array, or anything."""
    kind = draw(st.sampled_from(["str", "bytes", "scalar", "any"]))
    if kind == "str":
        return np.array(draw(st.lists(TEXTS, max_size=5)), dtype="U3")
    if kind == "bytes":
        return np.array(draw(st.lists(st.sampled_from([b"a", b"\xff", b"b"]), max_size=5)), dtype="S1")
    if kind == "scalar":
        return np.array(draw(TEXTS))
    return draw(any_array())


@dataclass
class ArrayFile:
    """How to write one test file: a .npy of one array or a .npz of named arrays (plus raw members),
    perhaps compressed, then perhaps cut short or with flipped bytes; or raw bytes."""

    suffix: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    members: dict[str, bytes] = field(default_factory=dict)
    compressed: bool = False
    bare: bool = False  # one array written as a plain .npy, whatever the suffix
    raw: bytes | None = None
    cut: float | None = None
    flips: list[tuple[float, int]] = field(default_factory=list)

    def write(self, folder: Path) -> Path:
        path = folder / f"data{self.suffix}"
        if self.raw is not None:
            path.write_bytes(self.raw)
        elif self.bare:
            with open(path, "wb") as f:
                np.lib.format.write_array(f, next(iter(self.arrays.values())), allow_pickle=True)
        else:  # a zip of .npy members, written by hand so any name works (np.savez reserves 'file')
            method = zipfile.ZIP_DEFLATED if self.compressed else zipfile.ZIP_STORED
            with zipfile.ZipFile(path, "w", method) as zf:
                for name, array in self.arrays.items():
                    with zf.open(f"{name}.npy", "w") as f:
                        np.lib.format.write_array(f, array, allow_pickle=True)
                for name, blob in self.members.items():
                    zf.writestr(name, blob)
        blob = bytearray(path.read_bytes())
        for where, xor in self.flips:
            if blob:
                blob[int(where * (len(blob) - 1))] ^= xor
        if self.cut is not None:
            blob = blob[: int(self.cut * len(blob))]
        path.write_bytes(bytes(blob))
        return path


NAMES = st.one_of(st.sampled_from(["images", "embeddings", "labels", "classes", "arr_0", "x", "a\nb", "file"]),
                  st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/\\"),
                          max_size=4))
DAMAGE = st.fixed_dictionaries({}, optional={
    "cut": st.floats(0, 1),
    "flips": st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=1, max_size=3),
})


@st.composite
def array_files(draw) -> ArrayFile:
    suffix = draw(st.sampled_from([".npy", ".npz", ".NPZ"]))
    if draw(st.integers(0, 9)) == 0:
        raw = draw(st.sampled_from([b"", b"\x93NUMPY", b"PK\x03\x04"])) + draw(st.binary(max_size=40))
        return ArrayFile(suffix, raw=raw)
    main = draw(st.one_of(plausible_array(), plausible_array(), plausible_array(), any_array()))
    damage = draw(st.one_of(st.just({}), st.just({}), st.just({}), DAMAGE))
    if draw(st.integers(0, 5)) if suffix == ".npy" else draw(st.integers(0, 9)) == 0:
        return ArrayFile(suffix, {"x": main}, bare=True, **damage)
    arrays = {draw(st.sampled_from(["images", "embeddings", "arr_0", "images", "embeddings"])): main}
    n = len(main) if main.ndim else 1
    if draw(st.booleans()):
        arrays["labels"] = draw(labels_for(n))
    if draw(st.integers(0, 3)) == 0:
        arrays["classes"] = draw(classes_arrays())
    for name in draw(st.lists(NAMES, max_size=2)):
        arrays[name] = draw(st.one_of(plausible_array(), any_array()))
    members = {}
    if draw(st.integers(0, 5)) == 0:  # a member that is no .npy at all, or a broken one
        members[draw(st.sampled_from(["notes.txt", "x", "bad.npy"]))] = draw(st.binary(max_size=20))
    return ArrayFile(suffix, arrays, members, draw(st.booleans()), **damage)


@pytest.mark.filterwarnings("ignore:Stored array in format:UserWarning")  # the writer, for non-latin-1 names
@BOUNDED
@given(spec=array_files())
def test_load_arrays_gives_a_valid_dataset_or_one_line_error(spec):
    loaded_or_refused(spec, load_arrays)


@st.composite
def column_for(draw, n: int) -> list | None:
    """A per-item text column (one value too few / many sometimes), with duplicates and None."""
    m = draw(st.sampled_from([n] * 6 + [n + 1, max(n - 1, 0)]))
    if draw(st.booleans()):
        return [f"item {i}" for i in range(m)]
    return draw(st.lists(st.one_of(st.none(), TEXTS), min_size=m, max_size=m))


@BOUNDED
@given(vectors=st.one_of(*[plausible_array("embeddings")] * 3, any_array()), data=st.data())
def test_embedded_gives_a_valid_dataset_or_one_line_error(vectors, data):
    n = len(vectors) if vectors.ndim else 1
    columns = {name: data.draw(st.none() | column_for(n), label=name) for name in ("labels", "ids", "splits",
                                                                                     "origins")}
    labels = columns["labels"]
    classes = sorted(set(labels) - {None}) if labels is not None else None
    where = Path("/data/vectors.npy")
    ds = outcome(str(where), embedded, "vectors", where, vectors, classes=classes, **columns)
    if ds is not None:
        check_dataset(ds)
        assert len(ds) == len(vectors)
        if columns["ids"] is not None:
            assert ds.ids == columns["ids"]


# --------------------------------------------------------------------------- Parquet tables of anything

VALUE_TYPES = {
    "float32": (pa.float32(), st.floats(width=32)),
    "float64": (pa.float64(), st.floats()),
    "float16": (pa.float16(), st.floats(width=16)),
    "int64": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    "int8": (pa.int8(), st.integers(-128, 127)),
    "uint64": (pa.uint64(), st.integers(0, 2**64 - 1)),
    "bool": (pa.bool_(), st.booleans()),
    "string": (pa.string(), TEXTS),
}


@st.composite
def embedding_columns(draw, n: int) -> pa.Array:
    """An 'embedding' column: lists (plain, large, fixed size) of numbers or not, ragged or not, with null rows
    and null values; or a scalar, struct, nested or all-null column."""
    kind = draw(st.sampled_from(["list", "list", "list", "large_list", "fixed", "fixed", "plain", "nested",
                                 "struct", "null"]))
    if kind == "null":
        return pa.nulls(n)
    type_name = draw(st.sampled_from(["float32", "float32", "float64", *sorted(VALUE_TYPES)]))
    value_type, element = VALUE_TYPES[type_name]
    clean = draw(st.booleans())  # finite numbers and no null rows, to reach the valid results too
    if clean and pa.types.is_floating(value_type):
        element = st.floats(-100, 100, width=value_type.bit_width)
    elif draw(st.booleans()):
        element = st.one_of(st.none(), element)
    if kind == "plain":
        return _typed(draw(st.lists(element, min_size=n, max_size=n)), value_type)
    if kind == "struct":
        return pa.array([{"x": draw(element)} for _ in range(n)], pa.struct([("x", value_type)]))
    d = draw(st.integers(1 if kind == "fixed" else 0, 3))  # pyarrow's writer aborts on fixed_size_list[0]
    ragged = kind != "fixed" and draw(st.integers(0, 3)) == 0
    rows = []
    for _ in range(n):
        if not clean and draw(st.integers(0, 9)) == 0:
            rows.append(None)
            continue
        size = draw(st.integers(0, 3)) if ragged else d
        rows.append(draw(st.lists(element, min_size=size, max_size=size)))
    if kind == "nested":
        rows = [None if r is None else [r] for r in rows]
        return _typed(rows, pa.list_(pa.list_(value_type)))
    outer = {"list": pa.list_(value_type), "large_list": pa.large_list(value_type),
             "fixed": pa.list_(value_type, d)}[kind]
    return _typed(rows, outer)


def _typed(values: list, kind: pa.DataType) -> pa.Array:
    """pa.array(values, kind), through float32 for half floats (pyarrow does not convert Python floats to them)."""
    half = pa.float16()

    def via(t: pa.DataType) -> pa.DataType:
        if t == half:
            return pa.float32()
        if pa.types.is_fixed_size_list(t):
            return pa.list_(via(t.value_type), t.list_size)
        if pa.types.is_large_list(t):
            return pa.large_list(via(t.value_type))
        if pa.types.is_list(t):
            return pa.list_(via(t.value_type))
        return t

    return pa.array(values, via(kind)).cast(kind)


@st.composite
def side_columns(draw, n: int) -> pa.Array:
    """A label / id / split / source column of some type, with duplicates and None."""
    kind = draw(st.sampled_from(["string", "string", "string", "distinct", "distinct", "int", "float", "bool",
                                 "binary", "list", "dictionary", "null", "timestamp"]))
    pick = lambda values: draw(st.lists(st.one_of(st.none(), values), min_size=n, max_size=n))  # noqa: E731
    if kind == "string":
        return pa.array(pick(TEXTS), pa.string())
    if kind == "distinct":
        return pa.array([f"item {i}" for i in range(n)], pa.string())
    if kind == "int":
        return pa.array(pick(st.integers(-3, 3)), pa.int64())
    if kind == "float":
        return pa.array(pick(st.floats()), pa.float64())
    if kind == "bool":
        return pa.array(pick(st.booleans()), pa.bool_())
    if kind == "binary":
        return pa.array(pick(st.sampled_from([b"a", b"\xff", b""])), pa.binary())
    if kind == "list":
        return pa.array(pick(st.lists(st.integers(0, 2), max_size=2)), pa.list_(pa.int64()))
    if kind == "dictionary":
        return pa.array(pick(TEXTS), pa.string()).dictionary_encode()
    if kind == "timestamp":
        return pa.array(pick(st.integers(-(2**62), 2**62)), pa.int64()).cast(pa.timestamp("us"))
    return pa.nulls(n)


@dataclass
class ParquetFile:
    """Columns (names may repeat or be odd) written as one Parquet file, then perhaps damaged; or raw bytes."""

    columns: list[tuple[str, pa.Array]]
    raw: bytes | None = None
    cut: float | None = None
    flips: list[tuple[float, int]] = field(default_factory=list)

    def write(self, folder: Path) -> Path:
        path = folder / "table.parquet"
        if self.raw is not None:
            path.write_bytes(self.raw)
            return path
        names = [name for name, _ in self.columns]
        pq.write_table(pa.Table.from_arrays([col for _, col in self.columns], names=names), path)
        blob = bytearray(path.read_bytes())
        for where, xor in self.flips:
            blob[int(where * (len(blob) - 1))] ^= xor
        if self.cut is not None:
            blob = blob[: int(self.cut * len(blob))]
        path.write_bytes(bytes(blob))
        return path


@st.composite
def parquet_files(draw) -> ParquetFile:
    if draw(st.integers(0, 14)) == 0:
        return ParquetFile([], raw=draw(st.sampled_from([b"", b"PAR1"])) + draw(st.binary(max_size=40)))
    n = draw(st.integers(0, 5))
    columns = []
    if draw(st.integers(0, 19)):
        columns.append(("embedding", draw(embedding_columns(n))))
    for name in ("label", "id", "split", "source"):
        if draw(st.integers(0, 2)) == 0:
            columns.append((name, draw(side_columns(n))))
    for name in draw(st.lists(st.sampled_from(["embedding", "label", "id", "a\nb", "x"]), max_size=1)):
        columns.append((name, draw(side_columns(n))))
    columns = draw(st.permutations(columns))
    damage = draw(st.one_of(st.just({}), st.just({}), st.just({}), DAMAGE))
    return ParquetFile(columns, **damage)


@BOUNDED
@given(spec=parquet_files())
def test_load_parquet_gives_a_valid_dataset_or_one_line_error(spec):
    ds = loaded_or_refused(spec, load_parquet)
    assert ds is None or ds.is_embedded


# --------------------------------------------------------------------------- YAML settings of anything

DEFAULTS = Settings().model_dump(mode="json")
KEYS = st.one_of(st.text(max_size=4), st.integers(-2, 2), st.none(), st.booleans())
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=6),
    st.sampled_from(["none", "None", "cls", "mean", "tsne", "pca", "pca, tsne", "auto", "1e3", "nan", "-1", "a\nb"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
                      max_leaves=6)


@st.composite
def config_trees(draw, defaults: dict = DEFAULTS) -> dict:
    """A nested mapping shaped like the settings: real section and field names (and made-up ones), holding
    the defaults, or values of any type."""
    out: dict = {}
    for key in draw(st.lists(st.one_of(st.sampled_from(sorted(defaults)), KEYS), max_size=4, unique_by=repr)):
        default = defaults.get(key) if isinstance(key, str) else None
        if isinstance(default, dict) and draw(st.integers(0, 4)):
            out[key] = draw(config_trees(default))
        elif isinstance(key, str) and key in defaults and draw(st.booleans()):
            out[key] = default
        else:
            out[key] = draw(VALUES)
    return out


HOSTILE = st.sampled_from([
    "2001-02-30", "0000-01-01", "!!int abc", "!!float x", "!!timestamp 2001-99-99", "!!binary ???", "!!set {a}",
    "!!python/object:os.system ls", "&a [*a]", "&a {x: *a}", "*undefined", "{[1]: 2}", "[" * 300, "'unclosed",
    "!!omap [a]", "<<: 1", "\t", "!!str", "? [a]\n: b", "1e999", "0x_", "~", "|\n  a\n  b",
])


@st.composite
def yaml_texts(draw) -> bytes:
    """YAML (or not) of any shape: random text or bytes, a nested mapping dumped, or hostile fragments."""
    kind = draw(st.sampled_from(["text", "bytes", "tree", "tree", "hostile"]))
    if kind == "text":
        return draw(st.text(max_size=60)).encode("utf-8", "surrogatepass")
    if kind == "bytes":
        return draw(st.binary(max_size=60))
    if kind == "tree":
        doc = draw(config_trees()) if draw(st.integers(0, 5)) else draw(VALUES)
        return yaml.safe_dump(doc).encode()
    section = draw(st.sampled_from([*DEFAULTS, "x"]))
    names = sorted(DEFAULTS[section]) if isinstance(DEFAULTS.get(section), dict) else ["y"]
    where = draw(st.sampled_from(["top", "section", "field"]))
    value = draw(HOSTILE)
    if where == "top":
        return value.encode()
    if where == "section":
        return f"{section}: {value}\n".encode()
    return f"{section}:\n  {draw(st.sampled_from(names))}: {value}\n".encode()


FLAG_VALUES = st.one_of(VALUES, st.sampled_from([5, 0.5, "mean", "tsne, pca", "none", True]))


# Made-up flag names are printable: settings_from_flags names unknown ones as they are (a name with a line
# break, possible only through dinoscope.run(**flags), would break its one-line message).
FLAG_NAMES = st.one_of(st.sampled_from(sorted(FLAGS)), st.text(st.characters(categories=("L", "N", "P")), max_size=3))


@BOUNDED
@given(text=yaml_texts(), flags=st.dictionaries(FLAG_NAMES, FLAG_VALUES, max_size=3))
def test_yaml_settings_are_settings_or_one_line_error(text, flags):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "settings.yaml"
        path.write_bytes(text)
        result = outcome(None, load_settings, path)
        if result is not None:
            assert isinstance(result, Settings)
        result = outcome(None, settings_from_flags, path, **flags)
        if result is not None:
            assert isinstance(result, Settings)


@BOUNDED
@given(tree=config_trees(), base=st.booleans(),
       dotted=st.lists(st.one_of(st.sampled_from(["source", "model", "maps", "tsne", "pool", "k", "seed"]),
                                 st.text(max_size=3)), min_size=1, max_size=3).map(".".join),
       value=FLAG_VALUES)
def test_settings_from_mappings_and_dotted_overrides(tree, base, dotted, value):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "settings.yaml"
        path.write_text(yaml.safe_dump(tree))
        result = outcome(None, load_settings, path, base=Settings() if base else None, **{dotted: value})
        if result is not None:
            assert isinstance(result, Settings)


# --------------------------------------------------------------------------- valid input always loads, unchanged


@st.composite
def valid_vectors(draw) -> np.ndarray:
    """(N, D) numbers that float32 holds exactly: small ints of any int type, or float32 values."""
    dtype = np.dtype(draw(st.sampled_from(["f4", "f8", ">f4", "i4", "u1"])))
    elements = st.floats(-1e6, 1e6, width=32) if dtype.kind == "f" else st.integers(0, 100)
    return draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=2, max_dims=2), elements=elements))


@BOUNDED
@given(vectors=valid_vectors(), label_kind=st.sampled_from([None, "int", "str"]),
       suffix=st.sampled_from([".npy", ".npz", ".parquet"]))
def test_valid_embeddings_load_as_they_are(vectors, label_kind, suffix):
    n = len(vectors)
    labels = {None: None, "int": np.arange(n) % 3, "str": np.array(["cat", "dog"] * n)[:n]}[label_kind]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"vectors{suffix}"
        if suffix == ".npy":
            np.save(path, vectors)
            labels = None
        elif suffix == ".npz":
            np.savez(path, embeddings=vectors, **({} if labels is None else {"labels": labels}))
        else:
            columns = {"embedding": pa.array(list(vectors.astype(vectors.dtype.newbyteorder("="))))}
            if labels is not None:
                columns["label"] = pa.array([str(x) for x in labels])
            pq.write_table(pa.table(columns), path)
        ds = (load_parquet if suffix == ".parquet" else load_arrays)(path)
        check_dataset(ds)
        assert np.array_equal(ds.embeddings, vectors.astype(np.float32))
        assert ds.labels == (None if labels is None else [str(x) for x in labels])


@BOUNDED
@given(tree=st.fixed_dictionaries({}, optional={key: st.just(value) for key, value in DEFAULTS.items()}))
def test_default_values_in_a_file_give_the_defaults(tree):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "settings.yaml"
        path.write_text(yaml.safe_dump(tree))
        assert load_settings(path) == Settings()
