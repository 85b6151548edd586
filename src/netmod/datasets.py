"""The standard MNIST and Fashion-MNIST files: find, verify, load.

Files are looked up, in order, in ``data_dir``, ``$NETMOD_DATA``, the
per-user cache (``$XDG_CACHE_HOME/netmod`` or ``~/.cache/netmod``) and
``/usr/share/datasets/<name>`` (Debian's dataset packages), each holding one
folder per dataset (``<dir>/mnist/train-images-idx3-ubyte.gz``, ...; the
Debian folder holds the files directly). Missing files are downloaded into
the cache from the standard mirrors where a network exists; a download is
verified before it is stored. Every file is checked against the SHA-256 of
its uncompressed IDX content, so a corrupted or truncated file is an error
naming the file, never a silently wrong array; gzip headers may differ
(Debian recompresses).

To add a dataset in the same format, add an entry to ``DATASETS`` with its
file names, uncompressed SHA-256 sums and mirrors.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DATASETS", "EMBEDDED_DIR", "HALVES_KINDS", "Dataset", "halves", "load", "load_embedded", "search_path"]

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

DATASETS = {
    "mnist": {
        "sha256": {
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        "mirrors": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://yann.lecun.com/exdb/mnist/"],
    },
    "fashion-mnist": {
        "sha256": {
            "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    },
}

SYSTEM_DIR = Path("/usr/share/datasets")
EMBEDDED_DIR = Path(__file__).resolve().parent / "data"
"""The MNIST test split shipped inside the package (the standard t10k files)."""


@dataclass(frozen=True)
class Dataset:
    """Images and labels of one split.

    Attributes
    ----------
    images : ndarray of uint8, shape (n, 28, 28)
    labels : ndarray of uint8, shape (n,)
    name, split : str
    source : str
        Where the files were read from.
    """

    images: np.ndarray
    labels: np.ndarray
    name: str
    split: str
    source: str


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "netmod"


def search_path(name: str, data_dir: str | os.PathLike | None = None) -> list:
    """The folders searched for dataset ``name``, in order.

    Examples
    --------
    >>> search_path("mnist", "/data")[0]
    PosixPath('/data/mnist')
    """
    dirs = []
    if data_dir is not None:
        dirs.append(Path(data_dir) / name)
    if os.environ.get("NETMOD_DATA"):
        dirs.append(Path(os.environ["NETMOD_DATA"]) / name)
    dirs.append(_cache_dir() / name)
    dirs.append(SYSTEM_DIR / name)
    return dirs


def _decompressed(data: bytes, path: Path) -> bytes:
    """The IDX content of a file's bytes (gunzipped for .gz files)."""
    if path.suffix != ".gz":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise ValueError(
            f"{path}: cannot be decompressed ({type(exc).__name__}: {exc}); the file is corrupt or truncated"
        ) from exc


def _read_verified(path: Path, expected: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc})") from exc
    raw = _decompressed(data, path)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != expected:
        raise ValueError(
            f"{path}: SHA-256 of the IDX content is {digest}, expected {expected}; "
            "the file is corrupt, truncated or not the standard one"
        )
    return raw


def _parse_idx(raw: bytes, path: Path) -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: IDX header says {dims.tolist()} but holds {data.size} bytes")
    return data.reshape(dims).copy()


def _find(name: str, stem: str, dirs: list) -> Path | None:
    for d in dirs:
        for candidate in (d / f"{stem}.gz", d / stem):
            if candidate.is_file():
                return candidate
    return None


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.read()


def _download(name: str, stem: str) -> Path:
    """Fetch ``stem.gz`` into the cache; only a file whose IDX content has the
    expected SHA-256 is stored (a bad download from one mirror is discarded and
    the next mirror tried)."""
    target = _cache_dir() / name / f"{stem}.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    expected = DATASETS[name]["sha256"][stem]
    errors = []
    for mirror in DATASETS[name]["mirrors"]:
        url = mirror + f"{stem}.gz"
        try:
            data = _fetch(url)
        except OSError as exc:
            errors.append(f"{url}: {exc}")
            continue
        try:
            digest = hashlib.sha256(_decompressed(data, target)).hexdigest()
        except ValueError as exc:
            errors.append(f"{url}: {exc}")
            continue
        if digest != expected:
            errors.append(f"{url}: SHA-256 of the IDX content is {digest}, expected {expected}")
            continue
        tmp = target.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(target)
        return target
    raise OSError("; ".join(errors))


def load(name: str, split: str = "train", *, data_dir: str | os.PathLike | None = None,
         download: bool = True) -> Dataset:
    """Load a split of MNIST or Fashion-MNIST from the standard IDX files.

    Parameters
    ----------
    name : {"mnist", "fashion-mnist"}
    split : {"train", "test"}
    data_dir : path, optional
        A folder holding ``<name>/<file>.gz`` (or uncompressed); searched first.
    download : bool, default True
        Fetch missing files into the cache from the standard mirrors.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        For an unknown name or split, and for a corrupt or truncated file
        (the message names the file and the checksums).
    FileNotFoundError
        If the files are found nowhere and cannot be downloaded; the message
        says which files to put where.

    Examples
    --------
    >>> import os
    >>> ds = load("mnist", "test", data_dir=os.environ.get("NETMOD_DATA"))  # doctest: +SKIP
    """
    if name not in DATASETS:
        raise ValueError(f"name must be one of {sorted(DATASETS)}, got {name!r}")
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    dirs = search_path(name, data_dir)
    arrays, sources = [], []
    for stem in _FILES[split]:
        path = _find(name, stem, dirs)
        if path is None and download:
            try:
                path = _download(name, stem)
            except OSError as exc:
                raise FileNotFoundError(_missing_message(name, split, dirs, f"download failed: {exc}")) from None
        if path is None:
            raise FileNotFoundError(_missing_message(name, split, dirs, "download disabled"))
        arrays.append(_parse_idx(_read_verified(path, DATASETS[name]["sha256"][stem]), path))
        sources.append(str(path.parent))
    images, labels = arrays
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{name} {split}: {images.shape[0]} images but {labels.shape[0]} labels")
    return Dataset(images=images, labels=labels, name=name, split=split, source=sources[0])


def _missing_message(name: str, split: str, dirs: list, why: str) -> str:
    files = ", ".join(f"{s}.gz" for s in _FILES[split])
    where = "\n  ".join(str(d) for d in dirs)
    return (
        f"{name} {split} files not found ({why}). Put {files} into one of:\n  {where}\n"
        f"(or set NETMOD_DATA to a folder holding {name}/)."
    )


def load_embedded(split: str = "train", *, n_train: int = 8000) -> Dataset:
    """The MNIST test split shipped inside netmod, cut into train and test parts.

    The first ``n_train`` of the 10,000 images form "train", the rest "test".
    MNIST is by Yann LeCun and Corinna Cortes, CC BY-SA 3.0 (see
    ``netmod/data/README.md``).

    Examples
    --------
    >>> ds = load_embedded("test")
    >>> ds.images.shape, ds.labels.shape
    ((2000, 28, 28), (2000,))
    """
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if not 0 < n_train < 10000:
        raise ValueError(f"n_train must be in (0, 10000), got {n_train}")
    sha = DATASETS["mnist"]["sha256"]
    images, labels = (_parse_idx(_read_verified(EMBEDDED_DIR / f"{stem}.gz", sha[stem]), EMBEDDED_DIR)
                      for stem in _FILES["test"])
    part = slice(0, n_train) if split == "train" else slice(n_train, None)
    return Dataset(images=images[part], labels=labels[part], name="mnist-embedded", split=split,
                   source=str(EMBEDDED_DIR))


HALVES_KINDS = ("diff", "same")
"""The 2021 halves tasks (REFERENCE.md 6b): two independent digits, or two of one class."""


def _squeeze_columns(images: np.ndarray) -> np.ndarray:
    """(n, 28, 28) -> (n, 28, 14): each pair of adjacent columns averaged, rounded half to even."""
    pairs = images.astype(np.float64).reshape(images.shape[0], 28, 14, 2)
    return np.rint(pairs.mean(axis=3)).astype(np.uint8)


def halves(images: np.ndarray, labels: np.ndarray, *, kind: str, seed: int = 0) -> tuple:
    """The "halves" modular tasks of the 2021 paper: two half-width digits side by side.

    Each output image holds digit a squeezed to the left 14 columns and digit b
    to the right 14 (the mean of each pair of adjacent columns, rounded half to
    even). ``kind="diff"``: a is image i and b is image ``perm[i]`` of a random
    permutation (``np.random.default_rng([seed, 0])``), label (y_a + y_b) mod 10.
    ``kind="same"``: b is a uniformly drawn image of i's class
    (``np.random.default_rng([seed, 1])``, classes in increasing order), label y_i.

    Parameters
    ----------
    images : ndarray
        (n, 28, 28) or (n, 784) pixel values in 0..255.
    labels : ndarray
        (n,) integers in 0..9.
    kind : {"diff", "same"}
    seed : int, default 0

    Returns
    -------
    (images (n, 28, 28) uint8, labels (n,) int64)

    Raises
    ------
    ValueError
        For images not 28x28 or out of 0..255, labels of another length or outside 0..9, or another kind.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.integers(0, 256, (20, 28, 28)), np.arange(20) % 10
    >>> hx, hy = halves(x, y, kind="diff", seed=3)
    >>> hx.shape, hx.dtype.name, bool(((hy - y) % 10 == y[np.random.default_rng([3, 0]).permutation(20)]).all())
    ((20, 28, 28), 'uint8', True)
    """
    from ._validate import check_choice, check_seed

    check_choice(kind, "kind", HALVES_KINDS)
    seed = check_seed(seed)
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim == 2 and images.shape[1:] == (784,):
        images = images.reshape(-1, 28, 28)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"images must be (n, 28, 28) or (n, 784), got shape {images.shape}")
    if images.size and (not np.issubdtype(images.dtype, np.number) or images.min() < 0 or images.max() > 255):
        raise ValueError("images must hold pixel values in 0..255")
    if labels.shape != (images.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {images.shape[0]} integers (one per image), got shape {labels.shape} "
                         f"of {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"labels must be digits 0..9, got values in {labels.min()}..{labels.max()}")
    labels = labels.astype(np.int64)
    n = len(labels)
    if kind == "diff":
        partner = np.random.default_rng([seed, 0]).permutation(n)
        out_labels = (labels + labels[partner]) % 10
    else:
        rng = np.random.default_rng([seed, 1])
        partner = np.empty(n, dtype=np.int64)
        for c in range(10):
            members = np.flatnonzero(labels == c)
            if members.size:
                partner[members] = members[rng.integers(0, members.size, size=members.size)]
        out_labels = labels.copy()
    squeezed = _squeeze_columns(images)
    out = np.concatenate([squeezed, squeezed[partner]], axis=2)
    return out, out_labels
