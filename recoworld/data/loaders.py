"""Loaders: a folder of a known dataset format → one :class:`~recoworld.data.dataset.Dataset`.

One function per format, each taking the folder and never downloading anything:

==============  ==========================================================================
``movielens``   MovieLens ``ml-latest-small`` / ``ml-latest`` (``ratings.csv``, ``movies.csv``,
                optional ``tags.csv``)
``ml1m``        MovieLens-1M in its original ``::`` format (``ratings.dat``, ``movies.dat``,
                optional ``users.dat``)
``agent4rec``   Agent4Rec's split of ML-1M (``train.txt``, ``valid.txt``, ``test.txt``,
                ``movie_detail.csv`` and optional user files)
``lastfm``      HetRec 2011 Last.fm (``user_artists.dat``, ``artists.dat``, optional
                ``user_friends.dat``, ``tags.dat``, ``user_taggedartists*.dat``)
``filmtrust``   FilmTrust (``ratings.txt``, optional ``trust.txt``)
``ciaodvd``     CiaoDVD (``ciao_ratings.txt`` or ``movie-ratings.txt``, optional
                ``ciao_trusts.txt`` or ``trusts.txt``)
``generic``     recoworld's own CSV format (``interactions.csv`` and optional ``items.csv``,
                ``users.csv``, ``edges.csv``; see :func:`load_generic`)
==============  ==========================================================================

:func:`load_dataset` picks the format from the files present. Rules shared by every loader
(``docs/data.md`` has the details):

- dense ids are assigned in sorted order of the raw ids (numeric order when the raw ids are
  numbers), so they do not depend on row order; Agent4Rec keeps its own re-mapped ids;
- every user and every item that any file of the dataset names is included: items listed in an
  item file without interactions, users listed in a user file or only in the social graph;
- every row of an interaction file is kept (repeated user–item pairs are not merged); social
  edges lose self-loops and repeats, and undirected friendships are stored in both directions;
- files are read in full with pandas, UTF-8 or, when not valid UTF-8, Latin-1;
- malformed input raises :class:`~recoworld.errors.DatasetError` naming the file, the line and
  what was expected there.
"""

from __future__ import annotations

import csv
import difflib
import io
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recoworld.data.dataset import SPLITS, Dataset
from recoworld.errors import DatasetError

__all__ = [
    "FORMATS",
    "ML1M_AGES",
    "ML1M_OCCUPATIONS",
    "detect_format",
    "load_agent4rec",
    "load_ciaodvd",
    "load_dataset",
    "load_filmtrust",
    "load_generic",
    "load_lastfm",
    "load_ml1m",
    "load_movielens",
    "write_generic",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

#: ML-1M's age codes (``users.dat``) → the range each stands for. The ``age`` column of the users
#: table keeps the code (the range's lower bound, 1 for "under 18").
ML1M_AGES: dict[int, str] = {
    1: "under 18",
    18: "18-24",
    25: "25-34",
    35: "35-44",
    45: "45-49",
    50: "50-55",
    56: "56+",
}

#: ML-1M's occupation codes (``users.dat``, 0–20) → the names the ``occupation`` column holds.
ML1M_OCCUPATIONS: tuple[str, ...] = (
    "other",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
)

#: Agent4Rec's user levels (``user_statistic.csv``), as user columns.
_A4R_LEVELS = ("a4r_activity", "a4r_diversity", "a4r_conformity")

#: How many of an artist's most used tags become its topics (Last.fm).
LASTFM_TOPICS = 5

_WHITESPACE = r"\s+"
_Kind = Literal["int", "float", "str", "any"]
_Int64Array = NDArray[np.int64]


# ---------------------------------------------------------------------------------------------
# Reading files
# ---------------------------------------------------------------------------------------------


def _folder(path: PathLike, fmt: str) -> Path:
    """The dataset folder, or a :class:`DatasetError` saying why it cannot be one."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise DatasetError(
            f"{folder}: no such folder (the {fmt} loader reads a folder of dataset files; "
            "recoworld never downloads data)",
            path=str(folder),
        )
    if not folder.is_dir():
        raise DatasetError(
            f"{folder}: is a file; pass the folder that holds it ({fmt} format)", path=str(folder)
        )
    return folder


def _listing(folder: Path) -> str:
    names = sorted(p.name for p in folder.iterdir())
    shown = ", ".join(names[:20]) + (", …" if len(names) > 20 else "")
    return shown or "nothing"


def _require(folder: Path, fmt: str, *names: str, why: str) -> Path:
    """The first of ``names`` present in ``folder``; a :class:`DatasetError` when none is."""
    for name in names:
        if (folder / name).is_file():
            return folder / name
    wanted = " or ".join(names)
    raise DatasetError(
        f"{folder}: missing {wanted}, which the {fmt} format needs ({why}); "
        f"the folder holds: {_listing(folder)}",
        path=str(folder / names[0]),
    )


def _optional(folder: Path, *names: str) -> Path | None:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def _read_text(path: Path) -> str:
    """The whole file as text: UTF-8 (a BOM is dropped) or, when not valid UTF-8, Latin-1."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc})", path=str(path)) from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        logger.debug("%s is not UTF-8; read as Latin-1", path)
        return data.decode("latin-1")


def _records(text: str, sep: str, quoting: int) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of every non-blank record, split as pandas splits them.

    Only used on error paths, to turn a row of a parsed table into the line an editor shows.
    """
    if sep == _WHITESPACE or quoting == csv.QUOTE_NONE:
        for number, raw in enumerate(text.split("\n"), 1):
            line = raw.rstrip("\r")
            if sep == _WHITESPACE:
                fields = line.split()
            else:
                fields = line.split(sep) if line else []
            if fields:
                yield number, fields
        return
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    last = 0
    for fields in reader:
        start, last = last + 1, reader.line_num
        if fields:
            yield start, fields


def _describe_sep(sep: str) -> str:
    return {",": "comma", "\t": "tab", _WHITESPACE: "whitespace"}.get(sep, repr(sep))


@dataclass(frozen=True, slots=True)
class _Col:
    """One column a file must (or may) have.

    ``name`` is the column in the returned frame; ``header`` its name in the file's header row
    (files with a header); ``what`` says what a value is, for messages ("a user id").
    """

    name: str
    kind: _Kind
    what: str
    header: str | None = None
    must_exist: bool = True
    may_be_empty: bool = False


@dataclass(slots=True)
class _Table:
    """A parsed file, with what it takes to point at the line of any of its rows."""

    path: Path
    fmt: str
    df: pd.DataFrame
    text: str = field(repr=False)
    sep: str
    quoting: int
    header: bool
    labels: dict[str, str] = field(default_factory=dict)

    def label(self, column: str) -> str:
        """How messages name ``column``: ``column 'rating'`` or ``field 3 (rating)``."""
        return self.labels.get(column, f"column {column!r}")

    def line(self, row: int) -> int:
        """The 1-based line of data row ``row`` (0-based, header excluded)."""
        wanted = row + (1 if self.header else 0)
        for k, (number, _) in enumerate(_records(self.text, self.sep, self.quoting)):
            if k == wanted:
                return number
        return wanted + 1  # not reached for rows pandas produced

    def error(self, row: int, message: str) -> DatasetError:
        line = self.line(row)
        return DatasetError(
            f"{self.path}, line {line}: {message} ({self.fmt} format)",
            path=str(self.path),
            line=line,
        )

    def unique(self, column: str, what: str) -> None:
        """Raise if a value of ``column`` (an id) repeats."""
        repeated = self.df[column].duplicated(keep=False).to_numpy()
        if not repeated.any():
            return
        rows = np.flatnonzero(repeated)
        first = rows[0]
        value = self.df[column].iloc[first]
        again = rows[1:][self.df[column].iloc[rows[1:]].to_numpy() == value][0]
        raise self.error(
            int(again),
            f"{what} {value} appears again (first on line {self.line(int(first))}); "
            "expected each once",
        )


def _read_table(
    path: Path,
    fmt: str,
    columns: Sequence[_Col],
    *,
    sep: str = ",",
    header: bool = True,
    quoting: int = csv.QUOTE_MINIMAL,
    keep_extra: bool = False,
    text: str | None = None,
    display_sep: str | None = None,
) -> _Table:
    """Parse a delimited file in one vectorized pass and check its columns.

    With ``header``, ``columns`` are found by their header names (``must_exist=False`` ones may be
    absent; other header columns are dropped unless ``keep_extra``). Without, ``columns`` are the
    fields in order, the trailing ones with ``must_exist=False`` optional. Values are converted
    to ``kind`` (``int`` → int64, or Int64 where empty values are allowed; ``float`` → float64;
    ``str`` → strings, "" where empty; ``any`` → as pandas read them); any value that does not
    convert, or is empty where it may not be, raises a :class:`DatasetError` naming the line.
    """
    if text is None:
        text = _read_text(path)
    shown_sep = display_sep or _describe_sep(sep)
    if not text.strip():
        raise DatasetError(
            f"{path}: the file is empty; expected {shown_sep}-separated "
            f"{', '.join(c.header or c.name for c in columns)} ({fmt} format)",
            path=str(path),
        )
    options: dict[str, Any] = {
        "sep": sep,
        "quoting": quoting,
        "keep_default_na": False,
        "na_values": [""],
        "low_memory": False,
    }
    names = [c.header or c.name for c in columns]
    if header:
        head = pd.read_csv(io.StringIO(text), nrows=0, **options)
        found = [str(c) for c in head.columns]
        missing = [
            n for c, n in zip(columns, names, strict=True) if c.must_exist and n not in found
        ]
        if missing:
            first = next(iter(_records(text, sep, quoting)), (1, []))[0]
            raise DatasetError(
                f"{path}, line {first}: the header lacks {', '.join(map(repr, missing))}; "
                f"expected {shown_sep}-separated columns {', '.join(names)} "
                f"(found {', '.join(found)}; {fmt} format)",
                path=str(path),
                line=first,
            )
        dtype: dict[Any, Any] = {
            n: str for c, n in zip(columns, names, strict=True) if c.kind == "str"
        }
        dtype = {k: v for k, v in dtype.items() if k in found}
        parse_options = {**options, "header": 0, "dtype": dtype or None}
        n_fields = range(len(found), len(found) + 1)
    else:
        dtype = {k: str for k, c in enumerate(columns) if c.kind == "str"}
        parse_options = {**options, "header": None, "dtype": dtype or None}
        least = max((k + 1 for k, c in enumerate(columns) if c.must_exist), default=1)
        n_fields = range(least, len(columns) + 1)

    def field_count_error() -> DatasetError:
        return _field_count_error(
            path, fmt, text, sep, quoting, header, n_fields, found if header else names, shown_sep
        )

    try:
        df = pd.read_csv(io.StringIO(text), **parse_options)
    except pd.errors.ParserError as exc:
        error = field_count_error()
        if header or error.line is not None:
            raise error from exc
        # every line has an allowed number of fields, but a later line more than the first
        width = n_fields.stop - 1
        df = pd.read_csv(io.StringIO(text), **parse_options, names=list(range(width)))
    if header:
        if not isinstance(df.index, pd.RangeIndex):
            raise field_count_error()  # a line longer than the header became an index
        if not keep_extra:
            df = df[[n for n in names if n in found]]
        df = df.rename(columns={n: c.name for c, n in zip(columns, names, strict=True)})
    else:
        if df.shape[1] not in n_fields:
            raise field_count_error()
        df.columns = pd.Index([c.name for c in columns[: df.shape[1]]])
    df = df.reset_index(drop=True)
    labels = {
        c.name: f"column {n!r}" if header else f"field {k + 1} ({c.name})"
        for k, (c, n) in enumerate(zip(columns, names, strict=True))
    }
    table = _Table(path, fmt, df, text, sep, quoting, header, labels)
    for col in columns:
        if col.name in df.columns:
            df[col.name] = _convert(table, col)
    return table


def _field_count_error(
    path: Path,
    fmt: str,
    text: str,
    sep: str,
    quoting: int,
    header: bool,
    n_fields: range,
    names: Sequence[str],
    shown_sep: str,
) -> DatasetError:
    records = _records(text, sep, quoting)
    if header:
        first = next(records, None)
        n_fields = range(len(first[1]), len(first[1]) + 1) if first else n_fields
    for number, fields in records:
        if len(fields) not in n_fields:
            count = (
                str(n_fields.start)
                if len(n_fields) == 1
                else f"{n_fields.start} to {n_fields.stop - 1}"
            )
            return DatasetError(
                f"{path}, line {number}: expected {count} {shown_sep}-separated fields "
                f"({', '.join(names[: n_fields.stop - 1])}), found {len(fields)} ({fmt} format)",
                path=str(path),
                line=number,
            )
    return DatasetError(f"{path}: cannot be parsed as {fmt} data", path=str(path))


def _first(mask: NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(mask)[0])


def _convert(table: _Table, col: _Col) -> pd.Series:
    """Column ``col`` of ``table`` converted to its kind (see :func:`_read_table`)."""
    values = table.df[col.name]
    label = table.label(col.name)
    empty = values.isna().to_numpy()
    if empty.any() and not col.may_be_empty:
        raise table.error(_first(empty), f"{label} is empty; expected {col.what}")
    if col.kind == "any":
        return values
    if col.kind == "str":
        return values.fillna("") if empty.any() else values
    if values.dtype == bool or not pd.api.types.is_numeric_dtype(values.dtype):
        numbers = pd.to_numeric(values, errors="coerce")
        bad = numbers.isna().to_numpy() & ~empty
        if bad.any():
            row = _first(bad)
            raise table.error(row, f"{label}: expected {col.what}, got {values.iloc[row]!r}")
        values = numbers
    if col.kind == "float":
        return values.astype(np.float64)
    if not pd.api.types.is_integer_dtype(values.dtype):
        floats = values.to_numpy(np.float64, na_value=np.nan)
        fractional = ~np.isnan(floats) & (floats != np.round(floats))
        if fractional.any():
            row = _first(fractional)
            raise table.error(
                row, f"{label}: expected {col.what} (an integer), got {values.iloc[row]!r}"
            )
        if empty.any():
            return values.astype("Int64")
        return values.astype(np.int64)
    return values.astype("Int64") if empty.any() else values.astype(np.int64)


def _check_range(
    table: _Table, column: str, what: str, low: float, high: float, step: float | None
) -> None:
    """Raise unless every value of ``column`` is in ``[low, high]`` (on the ``step`` grid)."""
    values = table.df[column].to_numpy(np.float64, na_value=np.nan)
    bad = (values < low) | (values > high)
    expected = f"{what} from {low:g} to {high:g}"
    if step is not None:
        grid = (values - low) / step
        bad |= np.abs(grid - np.round(grid)) > 1e-6
        expected += f" in steps of {step:g}"
    if bad.any():
        row = _first(bad)
        raise table.error(
            row, f"{table.label(column)}: expected {expected}, got {table.df[column].iloc[row]:g}"
        )


def _check_not_negative(table: _Table, *columns: str) -> None:
    for column in columns:
        values = table.df[column].to_numpy(np.float64, na_value=np.nan)
        bad = values < 0
        if bad.any():
            row = _first(bad)
            raise table.error(
                row, f"{table.label(column)}: expected a value ≥ 0, got {values[row]:g}"
            )


def _seconds(table: _Table, column: str, what: str, date_format: str | None = None) -> _Int64Array:
    """Column ``column`` as Unix seconds (−1 where empty): integers are seconds already; other
    values are parsed as dates (``date_format``, else ISO 8601) in UTC."""
    values = table.df[column]
    if pd.api.types.is_numeric_dtype(values.dtype) and values.dtype != bool:
        floats = values.to_numpy(np.float64, na_value=np.nan)
        fractional = ~np.isnan(floats) & (floats != np.round(floats))
        if fractional.any():
            row = _first(fractional)
            raise table.error(row, f"{table.label(column)}: expected {what}, got {floats[row]:g}")
        return np.where(np.isnan(floats), -1, floats).astype(np.int64)
    empty = values.isna().to_numpy()
    out = np.full(len(values), -1, np.int64)
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    whole = ~np.isnan(numbers) & (numbers == np.round(numbers))
    out[whole] = numbers[whole].astype(np.int64)
    dates = ~empty & ~whole
    if dates.any():
        stamps = pd.to_datetime(
            values[dates], format=date_format or "ISO8601", errors="coerce", utc=True
        )
        bad = np.zeros(len(values), bool)
        bad[dates] = stamps.isna().to_numpy()
        if bad.any():
            row = _first(bad)
            raise table.error(
                row, f"{table.label(column)}: expected {what}, got {values.iloc[row]!r}"
            )
        seconds = (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
        out[dates] = seconds.to_numpy(np.int64)
    return out


# ---------------------------------------------------------------------------------------------
# Building the Dataset
# ---------------------------------------------------------------------------------------------


def _str_dtype() -> Any:
    """pandas' default dtype for strings (``str`` in pandas 3, ``object`` before)."""
    return pd.Series(["x"]).dtype


class _Ids:
    """Raw ids in dense-id order, and the map from raw ids to dense ids."""

    def __init__(self, raw: np.ndarray) -> None:
        self.raw = raw
        self.index = pd.Index(raw)

    @classmethod
    def of(cls, *parts: Any) -> _Ids:
        """The distinct raw ids of ``parts``, sorted (numerically when they are numbers)."""
        arrays = [np.asarray(p) for p in parts if len(p)]
        if not arrays:
            return cls(np.zeros(0, np.int64))
        values = np.concatenate(arrays)
        if values.dtype.kind in "iu":
            return cls(np.unique(values.astype(np.int64)))
        return cls(_sorted_strings(pd.unique(values.astype(str))))

    def __len__(self) -> int:
        return len(self.raw)

    def __call__(self, values: Any) -> _Int64Array:
        return np.asarray(self.index.get_indexer(np.asarray(values)), dtype=np.int64)

    def strings(self) -> list[str]:
        return [str(v) for v in self.raw]


def _sorted_strings(values: np.ndarray) -> np.ndarray:
    """Distinct string ids sorted: numerically (ties by text) when every id is a number."""
    strings = pd.Series(values, dtype=object).astype(str)
    numbers = pd.to_numeric(strings, errors="coerce")
    if len(strings) and numbers.notna().all() and np.isfinite(numbers.to_numpy(float)).all():
        order = pd.DataFrame({"n": numbers, "s": strings}).sort_values(["n", "s"]).index
    else:
        order = strings.sort_values().index
    return np.asarray(strings.loc[order].to_numpy(), dtype=object)


def _interactions(
    user: _Int64Array,
    item: _Int64Array,
    *,
    rating: Any = None,
    weight: Any = None,
    timestamp: Any = None,
    split: Any = "all",
) -> pd.DataFrame:
    n = len(user)
    if isinstance(split, str):
        codes = np.full(n, SPLITS.index(split), np.int8)
        splits = pd.Categorical.from_codes(codes, categories=pd.Index(list(SPLITS)))
    else:
        splits = pd.Categorical(np.asarray(split, dtype=object), categories=list(SPLITS))
    return pd.DataFrame(
        {
            "user": np.asarray(user, np.int64),
            "item": np.asarray(item, np.int64),
            "rating": np.full(n, np.nan, np.float32)
            if rating is None
            else np.asarray(rating, np.float32),
            "weight": np.ones(n, np.float32) if weight is None else np.asarray(weight, np.float32),
            "timestamp": np.full(n, -1, np.int64)
            if timestamp is None
            else np.asarray(timestamp, np.int64),
            "split": splits,
        }
    )


def _aligned(ids: _Ids, info: pd.DataFrame | None, index_name: str) -> pd.DataFrame:
    """A frame with one row per dense id; ``info`` (indexed by raw id) reindexed onto it."""
    frame = pd.DataFrame(
        {"raw_id": pd.Series(ids.strings(), dtype=_str_dtype())},
        index=pd.RangeIndex(len(ids), name=index_name),
    )
    if info is None or info.empty:
        return frame
    aligned = info.reindex(ids.raw)
    for column in info.columns:
        frame[column] = aligned[column].set_axis(frame.index)
    return frame


def _items(ids: _Ids, info: pd.DataFrame | None = None) -> pd.DataFrame:
    """The items table: ``raw_id``, ``title``, ``topics``, ``text``, ``mean_rating`` and any
    further columns of ``info`` (indexed by raw id; items it lacks get the defaults)."""
    frame = _aligned(ids, info, "item")
    n = len(frame)
    for column in ("title", "text"):
        if column in frame.columns:
            frame[column] = frame[column].fillna("").astype(_str_dtype())
        else:
            frame[column] = pd.Series([""] * n, index=frame.index, dtype=_str_dtype())
    topics = frame["topics"].tolist() if "topics" in frame.columns else [()] * n
    frame["topics"] = pd.Series(
        [t if isinstance(t, tuple) else () for t in topics], index=frame.index, dtype=object
    )
    if "mean_rating" in frame.columns:
        frame["mean_rating"] = frame["mean_rating"].astype(np.float64)
    else:
        frame["mean_rating"] = np.full(n, np.nan)
    front = ["raw_id", "title", "topics", "text", "mean_rating"]
    return frame[front + [c for c in frame.columns if c not in front]]


def _users(ids: _Ids, info: pd.DataFrame | None = None) -> pd.DataFrame:
    """The users table: ``raw_id``, ``gender``, ``age``, ``occupation`` (NA where unknown) and any
    further columns of ``info`` (indexed by raw id)."""
    frame = _aligned(ids, info, "user")
    n = len(frame)
    for column in ("gender", "occupation"):
        if column not in frame.columns:
            frame[column] = pd.Series([None] * n, index=frame.index, dtype=_str_dtype())
    if "age" in frame.columns:
        frame["age"] = frame["age"].astype("Int64")
    else:
        frame["age"] = pd.Series([pd.NA] * n, index=frame.index, dtype="Int64")
    front = ["raw_id", "gender", "age", "occupation"]
    return frame[front + [c for c in frame.columns if c not in front]]


def _edges(src: _Int64Array, dst: _Int64Array, *, directed: bool, label: str) -> pd.DataFrame:
    """Edges as the Dataset keeps them: no self-loops, no repeats, both directions of an
    undirected friendship, sorted by ``(src, dst)``."""
    src = np.asarray(src, np.int64)
    dst = np.asarray(dst, np.int64)
    loops = src == dst
    if loops.any():
        logger.info("%s: dropped %d self-loop edges", label, int(loops.sum()))
        src, dst = src[~loops], dst[~loops]
    given = pd.DataFrame({"src": src, "dst": dst}).drop_duplicates()
    if len(given) < len(src):
        logger.info("%s: dropped %d repeated edges", label, len(src) - len(given))
    distinct = given
    if not directed:
        reverse = given.rename(columns={"src": "dst", "dst": "src"})
        distinct = pd.concat([given, reverse], ignore_index=True).drop_duplicates()
        if len(distinct) > len(given):
            logger.info(
                "%s: %d friendships listed one way only; stored both ways",
                label,
                len(distinct) - len(given),
            )
    edges = distinct.sort_values(["src", "dst"], kind="stable")
    return edges.reset_index(drop=True)


def _topics(values: pd.Series, sep: str = "|", drop: Sequence[str] = ()) -> list[tuple[str, ...]]:
    """``"a|b|c"`` → ``("a", "b", "c")`` per row, without empty parts or those in ``drop``."""
    skip = set(drop) | {""}
    return [
        tuple(part.strip() for part in str(v).split(sep) if part.strip() not in skip)
        if isinstance(v, str)
        else ()
        for v in values
    ]


def _dataset(
    folder: Path,
    fmt: str,
    name: str | None,
    *,
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    users: pd.DataFrame,
    edges: pd.DataFrame | None = None,
    directed: bool = False,
    rating_scale: tuple[float, float, float] | None = None,
    started: float,
) -> Dataset:
    dataset = Dataset(
        name=name or folder.resolve().name,
        format=fmt,
        source=str(folder.resolve()),
        interactions=interactions,
        items=items,
        users=users,
        edges=edges,
        directed=directed,
        rating_scale=rating_scale,
    )
    logger.info(
        "loaded %s (%s): %d interactions, %d users, %d items, %s edges in %.2f s",
        dataset.name,
        fmt,
        len(interactions),
        dataset.n_users,
        dataset.n_items,
        "no" if edges is None else len(edges),
        time.perf_counter() - started,
    )
    return dataset


# ---------------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------------


def load_movielens(path: PathLike, *, name: str | None = None) -> Dataset:
    """MovieLens ``ml-latest-small`` (or ``ml-latest``): CSV files with a header row.

    - ``ratings.csv`` (``userId,movieId,rating,timestamp``; 0.5–5 stars in steps of 0.5) → the
      interactions, split ``all``, with their Unix timestamps;
    - ``movies.csv`` (``movieId,title,genres``, genres separated by ``|``) → titles and topics
      (``(no genres listed)`` gives no topic); every listed movie is an item, rated or not;
    - ``tags.csv`` (optional; ``userId,movieId,tag,timestamp``) → the item text
      ``"Tags: a, b, …"``, the movie's distinct tags, most applied first.

    ``links.csv`` is not read. There are no user attributes and no social graph.
    """
    started = time.perf_counter()
    fmt = "movielens"
    folder = _folder(path, fmt)
    ratings = _read_table(
        _require(folder, fmt, "ratings.csv", why="the ratings"),
        fmt,
        [
            _Col("user", "int", "a user id", header="userId"),
            _Col("item", "int", "a movie id", header="movieId"),
            _Col("rating", "float", "a star rating", header="rating"),
            _Col("timestamp", "int", "a Unix time in seconds", header="timestamp"),
        ],
    )
    _check_range(ratings, "rating", "a rating", 0.5, 5.0, 0.5)
    movies = _read_table(
        _require(folder, fmt, "movies.csv", why="the movie titles and genres"),
        fmt,
        [
            _Col("item", "int", "a movie id", header="movieId"),
            _Col("title", "str", "a title", header="title", may_be_empty=True),
            _Col("genres", "str", "genres separated by '|'", header="genres", may_be_empty=True),
        ],
    )
    movies.unique("item", "movie id")
    tags_path = _optional(folder, "tags.csv")
    tags = (
        _read_table(
            tags_path,
            fmt,
            [
                _Col("user", "int", "a user id", header="userId"),
                _Col("item", "int", "a movie id", header="movieId"),
                _Col("tag", "str", "a tag", header="tag", may_be_empty=True),
            ],
        ).df
        if tags_path
        else pd.DataFrame({"user": [], "item": [], "tag": []})
    )
    r = ratings.df
    users = _Ids.of(r["user"].to_numpy(), tags["user"].to_numpy(np.int64))
    items = _Ids.of(
        r["item"].to_numpy(), movies.df["item"].to_numpy(), tags["item"].to_numpy(np.int64)
    )
    info = pd.DataFrame(
        {
            "title": movies.df["title"].to_numpy(),
            "topics": pd.Series(
                _topics(movies.df["genres"], drop=["(no genres listed)"]), dtype=object
            ).to_numpy(),
        },
        index=movies.df["item"].to_numpy(),
    )
    info = info.join(_tag_text(tags), how="outer")
    return _dataset(
        folder,
        fmt,
        name,
        interactions=_interactions(
            users(r["user"]),
            items(r["item"]),
            rating=r["rating"],
            timestamp=r["timestamp"],
        ),
        items=_items(items, info),
        users=_users(users),
        rating_scale=(0.5, 5.0, 0.5),
        started=started,
    )


def _tag_text(tags: pd.DataFrame) -> pd.DataFrame:
    """Per item, ``"Tags: a, b, …"``: its distinct tags (case-insensitively; the first spelling
    kept), most applied first, then alphabetically."""
    if tags.empty:
        return pd.DataFrame({"text": pd.Series([], dtype=_str_dtype())})
    t = pd.DataFrame({"item": tags["item"].to_numpy(), "tag": tags["tag"].astype(str).str.strip()})
    t = t[t["tag"] != ""]
    t["key"] = t["tag"].str.lower()
    counted = (
        t.groupby(["item", "key"], sort=False)
        .agg(tag=("tag", "first"), n=("tag", "size"))
        .reset_index()
        .sort_values(["item", "n", "key"], ascending=[True, False, True])
    )
    text = counted.groupby("item", sort=True)["tag"].agg(lambda s: "Tags: " + ", ".join(s))
    return text.to_frame("text")


def _ml1m_table(path: Path, fmt: str, columns: Sequence[_Col]) -> _Table:
    """A ``::``-separated ML-1M file (no header; UTF-8 or Latin-1)."""
    text = _read_text(path).replace("::", "\t")
    return _read_table(
        path,
        fmt,
        columns,
        sep="\t",
        header=False,
        quoting=csv.QUOTE_NONE,
        text=text,
        display_sep="'::'",
    )


def _ml1m_users(path: Path, fmt: str) -> pd.DataFrame:
    """ML-1M ``users.dat`` (``UserID::Gender::Age::Occupation::Zip-code``) indexed by the
    original user id: ``gender`` (``F``/``M``), ``age`` (the code, see :data:`ML1M_AGES`),
    ``occupation`` (its name, see :data:`ML1M_OCCUPATIONS`), ``zip_code``."""
    table = _ml1m_table(
        path,
        fmt,
        [
            _Col("user", "int", "a user id"),
            _Col("gender", "str", "a gender (F or M)", may_be_empty=True),
            _Col("age", "int", "an age code", may_be_empty=True),
            _Col("occupation", "int", "an occupation code (0-20)", may_be_empty=True),
            _Col("zip_code", "str", "a zip code", must_exist=False, may_be_empty=True),
        ],
    )
    table.unique("user", "user id")
    df = table.df
    codes = df["occupation"].to_numpy(np.float64, na_value=np.nan)
    bad = ~np.isnan(codes) & ((codes < 0) | (codes >= len(ML1M_OCCUPATIONS)))
    if bad.any():
        row = _first(bad)
        raise table.error(
            row, f"{table.label('occupation')}: expected a code 0-20, got {codes[row]:g}"
        )
    index = pd.Index(df["user"].to_numpy(np.int64))

    def text(values: Any) -> pd.Series:
        """Strings with "" as NA."""
        out = pd.Series(list(values), index=index, dtype=object)
        return out.where(out != "", None).astype(_str_dtype())

    zip_code = df["zip_code"] if "zip_code" in df.columns else [""] * len(df)
    return pd.DataFrame(
        {
            "gender": text(df["gender"]),
            "age": pd.Series(df["age"].to_numpy(), index=index).astype("Int64"),
            "occupation": text("" if np.isnan(c) else ML1M_OCCUPATIONS[int(c)] for c in codes),
            "zip_code": text(zip_code),
        }
    )


def _ml1m_movies(path: Path, fmt: str) -> pd.DataFrame:
    """ML-1M ``movies.dat`` (``MovieID::Title::Genres``) indexed by the original movie id."""
    table = _ml1m_table(
        path,
        fmt,
        [
            _Col("item", "int", "a movie id"),
            _Col("title", "str", "a title", may_be_empty=True),
            _Col("genres", "str", "genres separated by '|'", may_be_empty=True),
        ],
    )
    table.unique("item", "movie id")
    return pd.DataFrame(
        {
            "title": table.df["title"].to_numpy(),
            "topics": pd.Series(_topics(table.df["genres"]), dtype=object).to_numpy(),
        },
        index=table.df["item"].to_numpy(),
    )


def load_ml1m(path: PathLike, *, name: str | None = None) -> Dataset:
    """MovieLens-1M in its original format: ``::``-separated, no header, Latin-1 (UTF-8 read too).

    - ``ratings.dat`` (``UserID::MovieID::Rating::Timestamp``; 1–5 stars) → interactions, split
      ``all``;
    - ``movies.dat`` (``MovieID::Title::Genres``) → titles and topics (genres); every listed movie
      is an item;
    - ``users.dat`` (optional; ``UserID::Gender::Age::Occupation::Zip-code``) → ``gender``,
      ``age`` (the ML-1M code: :data:`ML1M_AGES`), ``occupation`` (the name:
      :data:`ML1M_OCCUPATIONS`) and ``zip_code``; every listed user is a user, rated or not.
    """
    started = time.perf_counter()
    fmt = "ml1m"
    folder = _folder(path, fmt)
    ratings = _ml1m_table(
        _require(folder, fmt, "ratings.dat", why="the ratings"),
        fmt,
        [
            _Col("user", "int", "a user id"),
            _Col("item", "int", "a movie id"),
            _Col("rating", "float", "a star rating"),
            _Col("timestamp", "int", "a Unix time in seconds"),
        ],
    )
    _check_range(ratings, "rating", "a rating", 1.0, 5.0, 1.0)
    movies = _ml1m_movies(
        _require(folder, fmt, "movies.dat", why="the movie titles and genres"), fmt
    )
    users_path = _optional(folder, "users.dat")
    user_info = _ml1m_users(users_path, fmt) if users_path else None
    r = ratings.df
    users = _Ids.of(r["user"].to_numpy(), [] if user_info is None else user_info.index.to_numpy())
    items = _Ids.of(r["item"].to_numpy(), movies.index.to_numpy())
    return _dataset(
        folder,
        fmt,
        name,
        interactions=_interactions(
            users(r["user"]), items(r["item"]), rating=r["rating"], timestamp=r["timestamp"]
        ),
        items=_items(items, movies),
        users=_users(users, user_info),
        rating_scale=(1.0, 5.0, 1.0),
        started=started,
    )


def _id_lists(path: Path, fmt: str) -> tuple[_Int64Array, _Int64Array]:
    """An Agent4Rec split file: one line per user, ``user_id item_id item_id ...``."""
    text = _read_text(path)
    users: list[_Int64Array] = []
    items: list[_Int64Array] = []
    for number, raw in enumerate(text.split("\n"), 1):
        parts = raw.split()
        if not parts:
            continue
        try:
            ids = np.array(parts, dtype=np.int64)
        except ValueError:
            bad = next(p for p in parts if not re.fullmatch(r"[+-]?\d+", p))
            raise DatasetError(
                f"{path}, line {number}: expected space-separated integer ids "
                f"(user_id item_id item_id ...), got {bad!r} ({fmt} format)",
                path=str(path),
                line=number,
            ) from None
        if (ids < 0).any():
            raise DatasetError(
                f"{path}, line {number}: expected ids ≥ 0, got {int(ids[ids < 0][0])} "
                f"({fmt} format)",
                path=str(path),
                line=number,
            )
        users.append(np.full(len(ids) - 1, ids[0], np.int64))
        items.append(ids[1:])
    if not users:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(users), np.concatenate(items)


def load_agent4rec(path: PathLike, *, name: str | None = None) -> Dataset:
    """Agent4Rec's split of MovieLens-1M (``ml-1m-agent4rec``), with its own re-mapped ids.

    - ``train.txt``, ``valid.txt``, ``test.txt``: one line per user, ``user_id item_id ...``
      (re-mapped ids from 0) → binary interactions (rating NaN) with split ``train`` /
      ``valid`` / ``test``. **The dense ids are Agent4Rec's ids** (user id = its ``user_id``, item
      id = its ``movie_id``), so results compare with Agent4Rec's; ``raw_id`` holds the same id
      and ``ml1m_id`` the original ML-1M id where the maps give it;
    - ``movie_detail.csv`` (``movie_id,title,genres,rating,summary``) → title, topics (genres),
      ``mean_rating`` and the one-line summary as text (the ``ï¿½`` of the file, a U+FFFD
      replacement character stored mis-encoded, is stored as U+FFFD);
    - optional ``users.dat`` + ``user_map.csv`` (``ml1m_user_id,user_id``) → ``gender``, ``age``,
      ``occupation``, ``zip_code`` as in :func:`load_ml1m`; ``movie_map.csv``
      (``ml1m_movie_id,item_id``) → ``ml1m_id`` of items (``movies.dat`` gives titles and genres
      only to items ``movie_detail.csv`` lacks);
    - optional ``user_statistic.csv`` (``user_id,activity,diversity,conformity``, levels 1–3) →
      user columns ``a4r_activity``, ``a4r_diversity``, ``a4r_conformity``.

    The tables cover every id from 0 to the largest any file names.
    """
    started = time.perf_counter()
    fmt = "agent4rec"
    folder = _folder(path, fmt)
    parts: list[tuple[str, _Int64Array, _Int64Array]] = []
    for split in ("train", "valid", "test"):
        file = _require(folder, fmt, f"{split}.txt", why=f"the {split} interactions")
        users_k, items_k = _id_lists(file, fmt)
        parts.append((split, users_k, items_k))
    detail = _read_table(
        _require(folder, fmt, "movie_detail.csv", why="the item titles, genres and summaries"),
        fmt,
        [
            _Col("item", "int", "a movie id", header="movie_id"),
            _Col("title", "str", "a title", header="title", may_be_empty=True),
            _Col("genres", "str", "genres separated by '|'", header="genres", may_be_empty=True),
            _Col("mean_rating", "float", "a mean rating", header="rating", may_be_empty=True),
            _Col("text", "str", "a summary", header="summary", must_exist=False, may_be_empty=True),
        ],
    )
    detail.unique("item", "movie id")
    _check_not_negative(detail, "item")
    d = detail.df
    item_info = pd.DataFrame(
        {
            "title": d["title"].str.replace("ï¿½", "\ufffd", regex=False).to_numpy(),
            "topics": pd.Series(_topics(d["genres"]), dtype=object).to_numpy(),
            "text": (d["text"] if "text" in d.columns else pd.Series([""] * len(d)))
            .str.replace("ï¿½", "\ufffd", regex=False)
            .to_numpy(),
            "mean_rating": d["mean_rating"].to_numpy(np.float64),
        },
        index=d["item"].to_numpy(),
    )
    movie_map = _a4r_map(folder, fmt, "movie_map.csv", "ml1m_movie_id", "item_id", "movie id")
    if movie_map is not None:
        item_info = item_info.join(movie_map.rename("ml1m_id").to_frame(), how="outer")
        lacking = item_info.index[item_info["title"].isna()]
        movies_path = _optional(folder, "movies.dat")
        if len(lacking) and movies_path is not None:
            ml1m = _ml1m_movies(movies_path, fmt)
            fill = ml1m.reindex(item_info.loc[lacking, "ml1m_id"].to_numpy()).set_axis(lacking)
            item_info = item_info.combine_first(fill)
        item_info["ml1m_id"] = item_info["ml1m_id"].astype("Int64")
    user_info: pd.DataFrame | None = None
    user_map = _a4r_map(folder, fmt, "user_map.csv", "ml1m_user_id", "user_id", "user id")
    if user_map is not None:
        user_info = user_map.rename("ml1m_id").astype("Int64").to_frame()
        users_path = _optional(folder, "users.dat")
        if users_path is not None:
            ml1m_users = _ml1m_users(users_path, fmt)
            by_user = ml1m_users.reindex(user_map.to_numpy()).set_axis(user_map.index)
            user_info = by_user.join(user_info)
    stats_path = _optional(folder, "user_statistic.csv")
    if stats_path is not None:
        stats = _read_table(
            stats_path,
            fmt,
            [
                _Col("user", "int", "a user id", header="user_id"),
                _Col("a4r_activity", "int", "a level 1-3", header="activity", may_be_empty=True),
                _Col("a4r_diversity", "int", "a level 1-3", header="diversity", may_be_empty=True),
                _Col(
                    "a4r_conformity", "int", "a level 1-3", header="conformity", may_be_empty=True
                ),
            ],
        )
        stats.unique("user", "user id")
        _check_not_negative(stats, "user")
        for column in _A4R_LEVELS:
            _check_range(stats, column, "a level", 1, 3, 1)
        levels = stats.df.set_index("user").astype("Int64")
        user_info = levels if user_info is None else user_info.join(levels, how="outer")
    n_users = 1 + max(
        max((int(u.max(initial=-1)) for _, u, _ in parts), default=-1),
        -1 if user_info is None or user_info.empty else int(user_info.index.max()),
    )
    n_items = 1 + max(
        max((int(i.max(initial=-1)) for _, _, i in parts), default=-1),
        -1 if item_info.empty else int(item_info.index.max()),
    )
    interactions = pd.concat(
        [_interactions(u, i, split=split) for split, u, i in parts], ignore_index=True
    )
    items = _items(_Ids(np.arange(n_items, dtype=np.int64)), item_info)
    users = _users(_Ids(np.arange(n_users, dtype=np.int64)), user_info)
    # the same columns whichever optional files the folder has
    if "ml1m_id" not in items.columns:
        items["ml1m_id"] = pd.Series([pd.NA] * n_items, index=items.index, dtype="Int64")
    if "zip_code" not in users.columns:
        users["zip_code"] = pd.Series([None] * n_users, index=users.index, dtype=_str_dtype())
    for column in ("ml1m_id", *_A4R_LEVELS):
        if column not in users.columns:
            users[column] = pd.Series([pd.NA] * n_users, index=users.index, dtype="Int64")
    users = users[["raw_id", "gender", "age", "occupation", "zip_code", "ml1m_id", *_A4R_LEVELS]]
    return _dataset(
        folder,
        fmt,
        name,
        interactions=interactions,
        items=items,
        users=users,
        rating_scale=None,
        started=started,
    )


def _a4r_map(
    folder: Path, fmt: str, file: str, original: str, mapped: str, what: str
) -> pd.Series | None:
    """An Agent4Rec id map (``original,mapped`` with a header) as a Series: mapped id → original
    id, or ``None`` when the file is absent."""
    path = _optional(folder, file)
    if path is None:
        return None
    table = _read_table(
        path,
        fmt,
        [
            _Col("original", "int", f"an ML-1M {what}", header=original),
            _Col("mapped", "int", f"a re-mapped {what}", header=mapped),
        ],
    )
    table.unique("mapped", f"re-mapped {what}")
    table.unique("original", f"ML-1M {what}")
    _check_not_negative(table, "mapped")
    return pd.Series(table.df["original"].to_numpy(), index=table.df["mapped"].to_numpy())


def _grouped(keys: _Int64Array, labels: Sequence[str]) -> pd.Series:
    """Per distinct key (sorted), the tuple of its labels in the given order; ``keys`` must be
    sorted already (stable), ``labels`` aligned with them."""
    if not len(keys):
        return pd.Series([], dtype=object)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    values = [tuple(labels[a:b]) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    return pd.Series(values, index=keys[starts], dtype=object)


def load_lastfm(
    path: PathLike, *, name: str | None = None, n_topics: int = LASTFM_TOPICS
) -> Dataset:
    """HetRec 2011 Last.fm (``hetrec2011-lastfm-2k``): tab-separated files with a header row.

    - ``user_artists.dat`` (``userID, artistID, weight``) → implicit interactions: ``weight`` =
      the play count, rating NaN, split ``all``;
    - ``artists.dat`` (``id, name, url, pictureURL``; UTF-8) → the title (the artist's name) and
      an extra ``url`` column; every listed artist is an item;
    - ``user_friends.dat`` (optional; ``userID, friendID``) → an undirected friend graph
      (``directed=False``): every friendship is stored in both directions, including the ones
      the file lists only one way;
    - ``user_taggedartists.dat`` or ``user_taggedartists-timestamps.dat`` (optional; ``userID,
      artistID, tagID, ...``) with ``tags.dat`` (``tagID, tagValue``; Latin-1) → an artist's
      topics: its ``n_topics`` most used tags (by how many tag applications; ties by name). Without
      a tag-assignment file artists have no topics (``tags.dat`` alone says nothing about them).
    """
    started = time.perf_counter()
    fmt = "lastfm"
    folder = _folder(path, fmt)
    tab: dict[str, Any] = {"sep": "\t", "quoting": csv.QUOTE_NONE}
    plays = _read_table(
        _require(folder, fmt, "user_artists.dat", why="the play counts"),
        fmt,
        [
            _Col("user", "int", "a user id", header="userID"),
            _Col("item", "int", "an artist id", header="artistID"),
            _Col("weight", "float", "a play count", header="weight"),
        ],
        **tab,
    )
    _check_not_negative(plays, "weight")
    artists = _read_table(
        _require(folder, fmt, "artists.dat", why="the artist names"),
        fmt,
        [
            _Col("item", "int", "an artist id", header="id"),
            _Col("title", "str", "a name", header="name", may_be_empty=True),
            _Col("url", "str", "a URL", header="url", must_exist=False, may_be_empty=True),
        ],
        **tab,
    )
    artists.unique("item", "artist id")
    friends_path = _optional(folder, "user_friends.dat")
    friends = (
        _read_table(
            friends_path,
            fmt,
            [
                _Col("src", "int", "a user id", header="userID"),
                _Col("dst", "int", "a user id", header="friendID"),
            ],
            **tab,
        ).df
        if friends_path
        else None
    )
    tagged_path = _optional(folder, "user_taggedartists.dat", "user_taggedartists-timestamps.dat")
    empty = np.zeros(0, np.int64)
    tagged = (
        _read_table(
            tagged_path,
            fmt,
            [
                _Col("user", "int", "a user id", header="userID"),
                _Col("item", "int", "an artist id", header="artistID"),
                _Col("tag", "int", "a tag id", header="tagID"),
            ],
            **tab,
        ).df
        if tagged_path
        else pd.DataFrame({"user": empty, "item": empty, "tag": empty})
    )
    p = plays.df
    users = _Ids.of(
        p["user"].to_numpy(),
        empty if friends is None else friends["src"].to_numpy(),
        empty if friends is None else friends["dst"].to_numpy(),
        tagged["user"].to_numpy(),
    )
    items = _Ids.of(p["item"].to_numpy(), artists.df["item"].to_numpy(), tagged["item"].to_numpy())
    info = artists.df.set_index("item")
    if len(tagged):
        info = info.join(_lastfm_topics(folder, fmt, tagged, n_topics), how="outer")
    else:
        logger.info("%s: no user_taggedartists*.dat, so artists have no topics", folder)
    edges = None
    if friends is not None:
        edges = _edges(
            users(friends["src"]), users(friends["dst"]), directed=False, label=str(friends_path)
        )
    return _dataset(
        folder,
        fmt,
        name,
        interactions=_interactions(users(p["user"]), items(p["item"]), weight=p["weight"]),
        items=_items(items, info),
        users=_users(users),
        edges=edges,
        directed=False,
        rating_scale=None,
        started=started,
    )


def _lastfm_topics(folder: Path, fmt: str, tagged: pd.DataFrame, n_topics: int) -> pd.DataFrame:
    """Per artist, its ``n_topics`` most applied tags, as names from ``tags.dat`` (or
    ``tag-<id>`` for ids it lacks)."""
    names: dict[int, str] = {}
    tags_path = _optional(folder, "tags.dat")
    if tags_path is not None:
        tags = _read_table(
            tags_path,
            fmt,
            [
                _Col("tag", "int", "a tag id", header="tagID"),
                _Col("name", "str", "a tag", header="tagValue", may_be_empty=True),
            ],
            sep="\t",
            quoting=csv.QUOTE_NONE,
        )
        tags.unique("tag", "tag id")
        names = dict(zip(tags.df["tag"].tolist(), tags.df["name"].tolist(), strict=True))
    counts = tagged.groupby(["item", "tag"], sort=False).size().rename("n").reset_index()
    counts["name"] = [names.get(t) or f"tag-{t}" for t in counts["tag"].tolist()]
    counts = counts.sort_values(["item", "n", "name"], ascending=[True, False, True])
    top = counts.groupby("item", sort=False).head(n_topics)
    topics = _grouped(top["item"].to_numpy(np.int64), top["name"].tolist())
    return topics.rename("topics").to_frame()


def _trust_edges(folder: Path, fmt: str, *names: str) -> pd.DataFrame | None:
    """A trust file (``trustor trustee [value]``, no header) as raw ``src``, ``dst`` columns; the
    value (always 1 in the published data) is not used."""
    path = _optional(folder, *names)
    if path is None:
        logger.info("%s: no %s, so no social graph", folder, " or ".join(names))
        return None
    sep = "," if fmt == "ciaodvd" else _WHITESPACE
    return _read_table(
        path,
        fmt,
        [
            _Col("src", "int", "a trustor user id"),
            _Col("dst", "int", "a trustee user id"),
            _Col("value", "any", "a trust value", must_exist=False, may_be_empty=True),
        ],
        sep=sep,
        header=False,
    ).df


def load_filmtrust(path: PathLike, *, name: str | None = None) -> Dataset:
    """FilmTrust: space-separated files without a header.

    - ``ratings.txt`` (``user item rating``; 0.5–4 in steps of 0.5) → interactions, split ``all``
      (every row is kept: the published file rates three user–item pairs twice);
    - ``trust.txt`` (optional; ``trustor trustee value``) → a directed trust graph
      (``directed=True``, ``src`` trusts ``dst``); users found only in it are users too.

    FilmTrust has no item titles, texts, topics or user attributes.
    """
    started = time.perf_counter()
    fmt = "filmtrust"
    folder = _folder(path, fmt)
    ratings = _read_table(
        _require(folder, fmt, "ratings.txt", why="the ratings"),
        fmt,
        [
            _Col("user", "int", "a user id"),
            _Col("item", "int", "an item id"),
            _Col("rating", "float", "a rating"),
        ],
        sep=_WHITESPACE,
        header=False,
    )
    _check_range(ratings, "rating", "a rating", 0.5, 4.0, 0.5)
    trust = _trust_edges(folder, fmt, "trust.txt")
    return _social_ratings(folder, fmt, name, ratings.df, trust, (0.5, 4.0, 0.5), started)


def _social_ratings(
    folder: Path,
    fmt: str,
    name: str | None,
    r: pd.DataFrame,
    trust: pd.DataFrame | None,
    scale: tuple[float, float, float],
    started: float,
    *,
    timestamp: _Int64Array | None = None,
    item_info: pd.DataFrame | None = None,
) -> Dataset:
    """The Dataset of a ratings table plus an optional directed trust table (FilmTrust, Ciao)."""
    empty = np.zeros(0, np.int64)
    users = _Ids.of(
        r["user"].to_numpy(),
        empty if trust is None else trust["src"].to_numpy(),
        empty if trust is None else trust["dst"].to_numpy(),
    )
    items = _Ids.of(r["item"].to_numpy())
    edges = None
    if trust is not None:
        edges = _edges(
            users(trust["src"]), users(trust["dst"]), directed=True, label=f"{folder} ({fmt})"
        )
    return _dataset(
        folder,
        fmt,
        name,
        interactions=_interactions(
            users(r["user"]), items(r["item"]), rating=r["rating"], timestamp=timestamp
        ),
        items=_items(items, item_info),
        users=_users(users),
        edges=edges,
        directed=True,
        rating_scale=scale,
        started=started,
    )


def load_ciaodvd(path: PathLike, *, name: str | None = None) -> Dataset:
    """CiaoDVD: comma-separated files without a header.

    - ``ciao_ratings.txt`` (or ``movie-ratings.txt``, its name in the original archive;
      ``userID,movieID,genreID,reviewID,rating,date``; 1–5 stars) → interactions, split ``all``,
      timestamp = the date at midnight UTC; every row is kept (a user may review a movie twice);
      an item's topics are its genre ids as ``"genre-<id>"``;
    - ``ciao_trusts.txt`` (or ``trusts.txt``; optional; ``trustor,trustee,value``) → a directed
      trust graph; users found only in it are users too.

    Items have no titles or texts (the data has none).
    """
    started = time.perf_counter()
    fmt = "ciaodvd"
    folder = _folder(path, fmt)
    ratings = _read_table(
        _require(folder, fmt, "ciao_ratings.txt", "movie-ratings.txt", why="the movie ratings"),
        fmt,
        [
            _Col("user", "int", "a user id"),
            _Col("item", "int", "a movie id"),
            _Col("genre", "int", "a genre id"),
            _Col("review", "int", "a review id"),
            _Col("rating", "float", "a rating"),
            _Col("date", "str", "a date (YYYY-MM-DD)"),
        ],
        header=False,
    )
    _check_range(ratings, "rating", "a rating", 1.0, 5.0, 1.0)
    timestamp = _seconds(ratings, "date", "a date (YYYY-MM-DD)", "%Y-%m-%d")
    r = ratings.df
    pairs = r[["item", "genre"]].drop_duplicates().sort_values(["item", "genre"], kind="stable")
    topics = _grouped(
        pairs["item"].to_numpy(np.int64), [f"genre-{g}" for g in pairs["genre"].tolist()]
    )
    trust = _trust_edges(folder, fmt, "ciao_trusts.txt", "trusts.txt")
    return _social_ratings(
        folder,
        fmt,
        name,
        r,
        trust,
        (1.0, 5.0, 1.0),
        started,
        timestamp=timestamp,
        item_info=topics.rename("topics").to_frame(),
    )


_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


def _ids_column(table: _Table, column: str, what: str) -> np.ndarray:
    """String ids with surrounding spaces removed; empty ones are an error."""
    values = table.df[column].astype(str).str.strip()
    blank = (values == "").to_numpy()
    if blank.any():
        raise table.error(_first(blank), f"{table.label(column)} is empty; expected {what}")
    return np.asarray(values.to_numpy(), dtype=object)


def _inferred_scale(ratings: NDArray[np.float64]) -> tuple[float, float, float] | None:
    values = np.unique(ratings[~np.isnan(ratings)])
    if not len(values):
        return None
    steps = np.round(np.diff(values), 6)
    step = float(steps.min()) if len(steps) else 1.0
    return float(values[0]), float(values[-1]), step


def load_generic(path: PathLike, *, name: str | None = None) -> Dataset:
    """recoworld's generic format: UTF-8 CSV files with a header row (``docs/data.md``).

    - ``interactions.csv`` (required): ``user``, ``item`` and optional ``rating`` (empty = no
      stars), ``weight`` (empty = 1), ``timestamp`` (Unix seconds or an ISO 8601 date/time; empty
      = unknown), ``split`` (``train``, ``valid``, ``test`` or ``all``; empty = ``all``);
    - ``items.csv`` (optional): ``item`` and optional ``title``, ``topics`` (separated by ``|``),
      ``text``, ``mean_rating``; further columns are kept as item columns;
    - ``users.csv`` (optional): ``user`` and optional ``gender``, ``age`` (integer),
      ``occupation``; further columns are kept as user columns;
    - ``edges.csv`` (optional): ``src``, ``dst`` (users) and optional ``directed`` (true/false,
      default true). When every edge is undirected the dataset is undirected (each friendship
      stored both ways); otherwise directed, with undirected rows added both ways.

    Ids are arbitrary strings (spaces around them ignored), mapped to dense ids in sorted order
    (numeric order when every id is a number). Items of ``items.csv`` and users of ``users.csv``
    or ``edges.csv`` are included even without interactions. The rating scale is inferred from
    the ratings: ``(lowest, highest, smallest gap between two distinct values)``.
    """
    started = time.perf_counter()
    fmt = "generic"
    folder = _folder(path, fmt)
    inter = _read_table(
        _require(folder, fmt, "interactions.csv", why="the interactions"),
        fmt,
        [
            _Col("user", "str", "a user id"),
            _Col("item", "str", "an item id"),
            _Col("rating", "float", "a rating (a number)", must_exist=False, may_be_empty=True),
            _Col("weight", "float", "a weight (a number)", must_exist=False, may_be_empty=True),
            _Col(
                "timestamp",
                "any",
                "a Unix time in seconds or an ISO 8601 date",
                must_exist=False,
                may_be_empty=True,
            ),
            _Col("split", "str", "train, valid, test or all", must_exist=False, may_be_empty=True),
        ],
    )
    d = inter.df
    user_raw = _ids_column(inter, "user", "a user id")
    item_raw = _ids_column(inter, "item", "an item id")
    n = len(d)
    split = np.full(n, "all", dtype=object)
    if "split" in d.columns:
        given = d["split"].astype(str).str.strip().str.lower()
        given = given.where(given != "", "all")
        bad = ~given.isin(SPLITS).to_numpy()
        if bad.any():
            row = _first(bad)
            raise inter.error(
                row,
                f"column 'split': expected train, valid, test or all, got {d['split'].iloc[row]!r}",
            )
        split = given.to_numpy(dtype=object)
    rating = d["rating"].to_numpy(np.float64) if "rating" in d.columns else np.full(n, np.nan)
    weight = d["weight"].fillna(1.0).to_numpy(np.float64) if "weight" in d.columns else None
    timestamp = (
        _seconds(inter, "timestamp", "a Unix time in seconds or an ISO 8601 date")
        if "timestamp" in d.columns
        else None
    )

    item_info: pd.DataFrame | None = None
    item_ids: np.ndarray = np.zeros(0, dtype=object)
    items_path = _optional(folder, "items.csv")
    if items_path is not None:
        table = _read_table(
            items_path,
            fmt,
            [
                _Col("item", "str", "an item id"),
                _Col("title", "str", "a title", must_exist=False, may_be_empty=True),
                _Col(
                    "topics", "str", "topics separated by '|'", must_exist=False, may_be_empty=True
                ),
                _Col("text", "str", "a text", must_exist=False, may_be_empty=True),
                _Col("mean_rating", "float", "a number", must_exist=False, may_be_empty=True),
            ],
            keep_extra=True,
        )
        item_ids = _ids_column(table, "item", "an item id")
        table.df["item"] = item_ids
        table.unique("item", "item id")
        item_info = table.df.set_index("item")
        if "topics" in item_info.columns:
            item_info["topics"] = pd.Series(
                _topics(item_info["topics"]), index=item_info.index, dtype=object
            )

    user_info: pd.DataFrame | None = None
    user_ids: np.ndarray = np.zeros(0, dtype=object)
    users_path = _optional(folder, "users.csv")
    if users_path is not None:
        table = _read_table(
            users_path,
            fmt,
            [
                _Col("user", "str", "a user id"),
                _Col("gender", "str", "a gender", must_exist=False, may_be_empty=True),
                _Col("age", "int", "an age", must_exist=False, may_be_empty=True),
                _Col("occupation", "str", "an occupation", must_exist=False, may_be_empty=True),
            ],
            keep_extra=True,
        )
        user_ids = _ids_column(table, "user", "a user id")
        table.df["user"] = user_ids
        table.unique("user", "user id")
        user_info = table.df.set_index("user")
        for column in ("gender", "occupation"):
            if column in user_info.columns:
                user_info[column] = user_info[column].replace("", None).astype(_str_dtype())
        if "age" in user_info.columns:
            user_info["age"] = user_info["age"].astype("Int64")

    edge_src: np.ndarray = np.zeros(0, dtype=object)
    edge_dst: np.ndarray = np.zeros(0, dtype=object)
    edge_directed = np.zeros(0, dtype=bool)
    edges_path = _optional(folder, "edges.csv")
    if edges_path is not None:
        table = _read_table(
            edges_path,
            fmt,
            [
                _Col("src", "str", "a user id"),
                _Col("dst", "str", "a user id"),
                _Col("directed", "any", "true or false", must_exist=False, may_be_empty=True),
            ],
        )
        edge_src = _ids_column(table, "src", "a user id")
        edge_dst = _ids_column(table, "dst", "a user id")
        edge_directed = np.ones(len(edge_src), dtype=bool)
        if "directed" in table.df.columns:
            raw = table.df["directed"]
            flags = raw.astype(str).str.strip().str.lower().where(raw.notna(), "true")
            flags = flags.where(flags != "", "true")
            bad = ~flags.isin(_TRUE | _FALSE).to_numpy()
            if bad.any():
                row = _first(bad)
                raise table.error(
                    row, f"column 'directed': expected true or false, got {raw.iloc[row]!r}"
                )
            edge_directed = flags.isin(_TRUE).to_numpy()

    users = _Ids.of(user_raw, user_ids, edge_src, edge_dst)
    items = _Ids.of(item_raw, item_ids)
    edges = None
    directed = False
    if edges_path is not None:
        directed = bool(edge_directed.all()) if len(edge_directed) else True
        src, dst = users(edge_src), users(edge_dst)
        if not directed:
            edges = _edges(src, dst, directed=False, label=str(edges_path))
        else:
            both = ~edge_directed
            edges = _edges(
                np.concatenate([src, dst[both]]),
                np.concatenate([dst, src[both]]),
                directed=True,
                label=str(edges_path),
            )
    return _dataset(
        folder,
        fmt,
        name,
        interactions=_interactions(
            users(user_raw),
            items(item_raw),
            rating=rating,
            weight=weight,
            timestamp=timestamp,
            split=split,
        ),
        items=_items(items, item_info),
        users=_users(users, user_info),
        edges=edges,
        directed=directed,
        rating_scale=_inferred_scale(rating),
        started=started,
    )


def write_generic(dataset: Dataset, path: PathLike) -> Path:
    """Write ``dataset`` in the generic format (``interactions.csv``, ``items.csv``,
    ``users.csv`` and, with a graph, ``edges.csv``) into the folder ``path``; returns it.

    Ids are written as the raw ids, so :func:`load_generic` gives back the same dense ids when the
    raw ids sort the same way (always for the loaders' datasets). Undirected friendships are
    written once each (``directed=false``). Item and user columns beyond the documented ones are
    written too. The rating scale is not stored (:func:`load_generic` infers it).
    """
    folder = Path(path).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    user_raw = dataset.users["raw_id"].to_numpy(dtype=object)
    item_raw = dataset.items["raw_id"].to_numpy(dtype=object)
    inter = dataset.interactions
    pd.DataFrame(
        {
            "user": user_raw[inter["user"].to_numpy(np.int64)],
            "item": item_raw[inter["item"].to_numpy(np.int64)],
            "rating": inter["rating"].to_numpy(),
            "weight": inter["weight"].to_numpy(),
            "timestamp": inter["timestamp"].to_numpy(np.int64),
            "split": inter["split"].astype(str).to_numpy(),
        }
    ).to_csv(folder / "interactions.csv", index=False)
    items = dataset.items.rename(columns={"raw_id": "item"}).reset_index(drop=True)
    for topics in items["topics"]:
        for topic in topics:
            if "|" in topic:
                raise DatasetError(
                    f"item topic {topic!r} contains '|', which separates topics in items.csv"
                )
    items["topics"] = ["|".join(t) for t in items["topics"]]
    items.to_csv(folder / "items.csv", index=False)
    users = dataset.users.rename(columns={"raw_id": "user"}).reset_index(drop=True)
    users.to_csv(folder / "users.csv", index=False)
    if dataset.edges is not None:
        src = dataset.edges["src"].to_numpy(np.int64)
        dst = dataset.edges["dst"].to_numpy(np.int64)
        keep = np.ones(len(src), bool) if dataset.directed else src < dst
        pd.DataFrame(
            {
                "src": user_raw[src[keep]],
                "dst": user_raw[dst[keep]],
                "directed": "true" if dataset.directed else "false",
            }
        ).to_csv(folder / "edges.csv", index=False)
    return folder


# ---------------------------------------------------------------------------------------------
# Picking the format
# ---------------------------------------------------------------------------------------------

#: Every format, in the order auto-detection tries them, with the files that identify it (each
#: inner tuple: any one of these names).
_SIGNATURES: dict[str, tuple[tuple[str, ...], ...]] = {
    "agent4rec": (("train.txt",), ("valid.txt",), ("test.txt",)),
    "generic": (("interactions.csv",),),
    "movielens": (("ratings.csv",), ("movies.csv",)),
    "ml1m": (("ratings.dat",),),
    "lastfm": (("user_artists.dat",),),
    "ciaodvd": (("ciao_ratings.txt", "movie-ratings.txt"),),
    "filmtrust": (("ratings.txt",),),
}

_LOADERS: dict[str, Callable[..., Dataset]] = {
    "agent4rec": load_agent4rec,
    "generic": load_generic,
    "movielens": load_movielens,
    "ml1m": load_ml1m,
    "lastfm": load_lastfm,
    "ciaodvd": load_ciaodvd,
    "filmtrust": load_filmtrust,
}

#: The format names :func:`load_dataset` accepts, in the order auto-detection tries them.
FORMATS: tuple[str, ...] = tuple(_SIGNATURES)


def _signature_text(fmt: str) -> str:
    return f"{fmt} ({', '.join(' or '.join(group) for group in _SIGNATURES[fmt])})"


def detect_format(path: PathLike) -> str:
    """The format of the dataset folder ``path``, from the files in it (the first of
    :data:`FORMATS` whose identifying files are all present)."""
    folder = _folder(path, "auto-detected")
    for fmt, groups in _SIGNATURES.items():
        if all(any((folder / name).is_file() for name in group) for group in groups):
            logger.debug("%s: detected format %s", folder, fmt)
            return fmt
    raise DatasetError(
        f"{folder}: no known dataset format; the known formats and the files that identify "
        f"them: {'; '.join(_signature_text(f) for f in FORMATS)}. The folder holds: "
        f"{_listing(folder)}. Pass format=... to name one.",
        path=str(folder),
    )


def load_dataset(path: PathLike, format: str | None = None, *, name: str | None = None) -> Dataset:
    """Load the dataset in folder ``path``.

    ``format`` is one of :data:`FORMATS` (``movielens``, ``ml1m``, ``agent4rec``, ``lastfm``,
    ``filmtrust``, ``ciaodvd``, ``generic``) or ``None`` to detect it from the files present
    (:func:`detect_format`). ``name`` overrides the dataset's name (default: the folder's name).
    Nothing is ever downloaded; every problem is a :class:`~recoworld.errors.DatasetError`.
    """
    if format is None:
        fmt = detect_format(path)
    else:
        fmt = format.strip().lower()
        if fmt not in _LOADERS:
            close = difflib.get_close_matches(fmt, FORMATS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DatasetError(
                f"unknown dataset format {format!r}{hint}; the formats are: {', '.join(FORMATS)}"
            )
    return _LOADERS[fmt](path, name=name)
