"""Data for the data-driven targets: user files, train/test splits and standardisation.

A *split file* holds four arrays, ``X_train`` (n, p), ``y_train`` (n,), ``X_test`` (m, p) and
``y_test`` (m,), in one of three formats, chosen by the file's suffix:

- ``.npz`` — a numpy archive with those four names;
- ``.mat`` — a MATLAB file (v5/v7, as ``scipy.io.loadmat`` reads) with those four variables;
  label vectors may be stored as columns or rows;
- ``.csv`` — a pair ``NAME_train.csv`` / ``NAME_test.csv`` (give the ``_train.csv`` path):
  each row is one point, the last column its response, the other columns its features; a first
  line that is not all numbers is a header and is skipped.

The arrays are used as stored: a design matrix that should have an intercept column must hold
it. Every problem is reported as a :class:`DataFileError` naming the file and the array.
"""

from __future__ import annotations

import dataclasses
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sivi_engine.settings import SettingsError

#: The arrays of a split file, in the order they are checked.
SPLIT_ARRAYS = ("X_train", "y_train", "X_test", "y_test")


class DataFileError(SettingsError):
    """A data file that is missing, unreadable, or lacks (or malforms) an array."""


@dataclasses.dataclass(frozen=True)
class Split:
    """Train and test data, float64: features (n, p) and responses (n,)."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def read_csv_table(path: Path) -> np.ndarray:
    """A numeric CSV file as a float64 (rows, columns) array, skipping a non-numeric header."""
    if not path.is_file():
        raise DataFileError(f"data file {str(path)!r} does not exist")
    with path.open() as handle:
        first = handle.readline()
    try:
        [float(field) for field in first.split(",")]
        header_rows = 0
    except ValueError:
        header_rows = 1
    try:
        return np.loadtxt(path, delimiter=",", skiprows=header_rows, ndmin=2, dtype=np.float64)
    except ValueError as err:
        raise DataFileError(f"data file {str(path)!r} is not a numeric CSV table: {err}") from None


def features_and_response(table: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Split a table into its feature columns and its last column, the response."""
    if table.shape[1] < 2:
        raise DataFileError(
            f"data file {str(path)!r} needs at least two columns (features, then the response); "
            f"found {table.shape[1]}"
        )
    return table[:, :-1], table[:, -1]


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not zipfile.is_zipfile(path):  # np.load would try a .npy header or offer to unpickle
        raise DataFileError(
            f"data file {str(path)!r} is not an .npz archive (numpy.savez writes one; "
            f"{path.stat().st_size} bytes that are not a zip file)"
        )
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def _read_mat(path: Path) -> dict[str, np.ndarray]:
    try:
        import scipy.io  # 0.25 s to import: only for .mat files

        contents = scipy.io.loadmat(path)
    except NotImplementedError:  # scipy's answer to HDF5-based v7.3 files
        raise DataFileError(
            f"data file {str(path)!r} is a MATLAB v7.3 (HDF5) file, which scipy cannot read; "
            "save it with save(..., '-v7')"
        ) from None
    return {name: value for name, value in contents.items() if not name.startswith("__")}


def _read_csv_pair(path: Path) -> dict[str, np.ndarray]:
    stem = path.name.removesuffix("_train.csv")
    if stem == path.name:
        raise DataFileError(
            f"data file {str(path)!r}: a CSV split is a pair NAME_train.csv / NAME_test.csv; "
            "give the path of the _train.csv file"
        )
    test_path = path.with_name(f"{stem}_test.csv")
    if not test_path.is_file():
        raise DataFileError(
            f"data file {str(path)!r}: the arrays 'X_test' and 'y_test' belong in "
            f"{str(test_path)!r}, which does not exist"
        )
    x_train, y_train = features_and_response(read_csv_table(path), path)
    x_test, y_test = features_and_response(read_csv_table(test_path), test_path)
    return {"X_train": x_train, "y_train": y_train, "X_test": x_test, "y_test": y_test}


SPLIT_READERS: dict[str, Callable[[Path], dict[str, np.ndarray]]] = {
    ".npz": _read_npz,
    ".mat": _read_mat,
    ".csv": _read_csv_pair,
}


def _numeric(value: np.ndarray, name: str, path: Path) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataFileError(f"data file {str(path)!r}: array {name!r} is not numeric") from None
    if not np.all(np.isfinite(array)):
        raise DataFileError(f"data file {str(path)!r}: array {name!r} holds NaN or infinite values")
    return array


def _matrix(value: np.ndarray, name: str, path: Path) -> np.ndarray:
    array = _numeric(value, name, path)
    if array.ndim != 2 or 0 in array.shape:
        raise DataFileError(
            f"data file {str(path)!r}: array {name!r} must be a non-empty 2-D matrix "
            f"(points × features); found shape {array.shape}"
        )
    return array


def _vector(value: np.ndarray, name: str, path: Path) -> np.ndarray:
    """A 1-D array; a MATLAB column or row vector (n, 1) / (1, n) is flattened."""
    array = _numeric(value, name, path)
    if array.ndim == 2 and 1 in array.shape:
        array = array.reshape(-1)
    if array.ndim != 1:
        raise DataFileError(
            f"data file {str(path)!r}: array {name!r} must be a vector; found shape {array.shape}"
        )
    return array


def _checked_split(arrays: dict[str, np.ndarray], path: Path) -> Split:
    missing = [name for name in SPLIT_ARRAYS if name not in arrays]
    if missing:
        raise DataFileError(
            f"data file {str(path)!r}: missing array {missing[0]!r} "
            f"(a split file holds {', '.join(SPLIT_ARRAYS)}; "
            f"found {', '.join(sorted(arrays)) or 'none'})"
        )
    split = Split(
        X_train=_matrix(arrays["X_train"], "X_train", path),
        y_train=_vector(arrays["y_train"], "y_train", path),
        X_test=_matrix(arrays["X_test"], "X_test", path),
        y_test=_vector(arrays["y_test"], "y_test", path),
    )
    for part in ("train", "test"):
        x, y = getattr(split, f"X_{part}"), getattr(split, f"y_{part}")
        if len(y) != len(x):
            raise DataFileError(
                f"data file {str(path)!r}: array 'y_{part}' has {len(y)} entries but "
                f"'X_{part}' has {len(x)} rows"
            )
    if split.X_test.shape[1] != split.X_train.shape[1]:
        raise DataFileError(
            f"data file {str(path)!r}: array 'X_test' has {split.X_test.shape[1]} columns but "
            f"'X_train' has {split.X_train.shape[1]}"
        )
    return split


def load_split(path: str | Path) -> Split:
    """Read a split file (.npz, .mat, or a _train.csv/_test.csv pair) and check its arrays."""
    path = Path(path)
    reader = SPLIT_READERS.get(path.suffix.lower())
    if reader is None:
        raise DataFileError(
            f"data file {str(path)!r}: unknown format {path.suffix!r}; "
            f"supported: {', '.join(SPLIT_READERS)}"
        )
    if not path.is_file():
        raise DataFileError(f"data file {str(path)!r} does not exist")
    try:
        arrays = reader(path)
    except DataFileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataFileError(f"data file {str(path)!r} could not be read: {err}") from None
    return _checked_split(arrays, path)


def permuted_split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> Split:
    """Random train/test split: rows permuted by ``default_rng(seed)``, the first
    round(test_fraction · n) rows of the permutation form the test set."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = round(test_fraction * len(x))
    test, train = order[:n_test], order[n_test:]
    return Split(X_train=x[train], y_train=y[train], X_test=x[test], y_test=y[test])


def standardise(
    train: np.ndarray, test: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(a − m) / s on both arrays with the column means m and standard deviations s (ddof 0)
    of ``train``; returns both standardised arrays, m and s. A constant training column gets
    s = 1 (it is only centred), as in scikit-learn's StandardScaler; constant up to rounding
    counts (s ≤ 1e-12·max(1, |m|): the mean of identical floats can differ from them in the
    last bit, which would turn the column into ±1 noise)."""
    mean = train.mean(axis=0)
    sd = train.std(axis=0)
    sd = np.where(sd > 1e-12 * np.maximum(1.0, np.abs(mean)), sd, 1.0)
    return (train - mean) / sd, (test - mean) / sd, mean, sd


def with_intercept(x: np.ndarray) -> np.ndarray:
    """Prepend a column of ones: the intercept's column of the design matrix."""
    return np.concatenate([np.ones((len(x), 1)), x], axis=1)
