"""Dataset loading: search order, checksums, clear errors, embedded split."""

import gzip
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from netmod import datasets

SHARED = Path(os.environ.get("NETMOD_DATA", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No NETMOD_DATA, an empty cache, no system folder, and no network."""
    monkeypatch.delenv("NETMOD_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "SYSTEM_DIR", tmp_path / "system")

    def offline(name, stem):
        raise OSError("network unreachable")

    monkeypatch.setattr(datasets, "_download", offline)
    return tmp_path


def _copy(name, stem, dest):
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(SHARED / name / f"{stem}.gz", dest / f"{stem}.gz")


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_standard_files_load_with_right_shapes(name):
    train = datasets.load(name, "train", data_dir=SHARED)
    test = datasets.load(name, "test", data_dir=SHARED)
    assert train.images.shape == (60000, 28, 28) and train.labels.shape == (60000,)
    assert test.images.shape == (10000, 28, 28) and test.labels.shape == (10000,)
    assert train.images.dtype == np.uint8
    assert set(np.unique(test.labels)) == set(range(10))
    # Independent read of the label file: IDX header is 8 bytes.
    raw = gzip.decompress((SHARED / name / "t10k-labels-idx1-ubyte.gz").read_bytes())
    np.testing.assert_array_equal(test.labels, np.frombuffer(raw[8:], dtype=np.uint8))


def test_missing_files_offline_say_what_to_put_where(isolated):
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte\.gz.*\n.*") as info:
        datasets.load("mnist", "test", data_dir=isolated / "nothing")
    msg = str(info.value)
    assert "network unreachable" in msg and str(isolated / "nothing" / "mnist") in msg and "NETMOD_DATA" in msg


def test_search_order_env_then_cache(isolated, monkeypatch):
    _copy("mnist", "t10k-images-idx3-ubyte", isolated / "env" / "mnist")
    _copy("mnist", "t10k-labels-idx1-ubyte", isolated / "env" / "mnist")
    monkeypatch.setenv("NETMOD_DATA", str(isolated / "env"))
    assert datasets.load("mnist", "test").source == str(isolated / "env" / "mnist")
    cache = isolated / "cache" / "netmod" / "mnist"
    _copy("mnist", "t10k-images-idx3-ubyte", cache)
    _copy("mnist", "t10k-labels-idx1-ubyte", cache)
    monkeypatch.delenv("NETMOD_DATA")
    assert datasets.load("mnist", "test").source == str(cache)


def test_uncompressed_and_recompressed_files_are_accepted(isolated):
    d = isolated / "raw" / "mnist"
    d.mkdir(parents=True)
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        raw = gzip.decompress((SHARED / "mnist" / f"{stem}.gz").read_bytes())
        if stem.startswith("t10k-images"):
            (d / stem).write_bytes(raw)
        else:
            (d / f"{stem}.gz").write_bytes(gzip.compress(raw, compresslevel=1, mtime=0))
    ds = datasets.load("mnist", "test", data_dir=isolated / "raw")
    assert ds.images.shape == (10000, 28, 28)


def test_checksum_mismatch_names_file_and_checksums(isolated):
    d = isolated / "bad" / "mnist"
    _copy("mnist", "t10k-labels-idx1-ubyte", d)
    raw = bytearray(gzip.decompress((SHARED / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes()))
    raw[5000] ^= 0xFF
    (d / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz: SHA-256") as info:
        datasets.load("mnist", "test", data_dir=isolated / "bad")
    assert hashlib.sha256(bytes(raw)).hexdigest() in str(info.value)
    assert datasets.DATASETS["mnist"]["sha256"]["t10k-images-idx3-ubyte"] in str(info.value)


def test_truncated_file_is_an_error(isolated):
    d = isolated / "trunc" / "mnist"
    _copy("mnist", "t10k-labels-idx1-ubyte", d)
    data = (SHARED / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes()
    (d / "t10k-images-idx3-ubyte.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz.*(truncated|corrupt)"):
        datasets.load("mnist", "test", data_dir=isolated / "trunc")


def test_embedded_split_matches_standard_test_split():
    full = datasets.load("mnist", "test", data_dir=SHARED)
    train = datasets.load_embedded("train")
    test = datasets.load_embedded("test")
    assert train.images.shape == (8000, 28, 28) and test.images.shape == (2000, 28, 28)
    np.testing.assert_array_equal(np.concatenate([train.labels, test.labels]), full.labels)
    np.testing.assert_array_equal(test.images, full.images[8000:])
    counts = np.bincount(full.labels, minlength=10)
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("kw,match", [({"name": "cifar"}, "name"), ({"split": "valid"}, "split")])
def test_bad_name_or_split(kw, match):
    args = {"name": "mnist", "split": "test", **kw}
    with pytest.raises(ValueError, match=match):
        datasets.load(args["name"], args["split"], data_dir=SHARED)
