"""Dataset loading: search order, checksums, clear errors, verified downloads, embedded split.

Tests of checksums, truncation and corruption use the MNIST test files shipped
inside the package (the standard t10k files) or files they write themselves;
only the tests of the full standard files need ``standard_data``.
"""

import gzip
import hashlib
import shutil

import numpy as np
import pytest

from netmod import datasets

EMBEDDED = datasets.EMBEDDED_DIR
TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No NETMOD_DATA, an empty cache, no system folder, and no network."""
    monkeypatch.delenv("NETMOD_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "SYSTEM_DIR", tmp_path / "system")

    def offline(url):
        raise OSError("network unreachable")

    monkeypatch.setattr(datasets, "_fetch", offline)
    return tmp_path


def _copy_embedded(stem, dest):
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(EMBEDDED / f"{stem}.gz", dest / f"{stem}.gz")


def _idx(stem):
    return gzip.decompress((EMBEDDED / f"{stem}.gz").read_bytes())


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_standard_files_load_with_right_shapes(name, standard_data):
    train = datasets.load(name, "train", data_dir=standard_data, download=False)
    test = datasets.load(name, "test", data_dir=standard_data, download=False)
    assert train.images.shape == (60000, 28, 28) and train.labels.shape == (60000,)
    assert test.images.shape == (10000, 28, 28) and test.labels.shape == (10000,)
    assert train.images.dtype == np.uint8
    assert set(np.unique(test.labels)) == set(range(10))
    # Independent read of the label file: IDX header is 8 bytes.
    raw = gzip.decompress((standard_data / name / "t10k-labels-idx1-ubyte.gz").read_bytes())
    np.testing.assert_array_equal(test.labels, np.frombuffer(raw[8:], dtype=np.uint8))


def test_embedded_files_are_the_standard_mnist_test_split():
    for stem in TEST_FILES:
        assert hashlib.sha256(_idx(stem)).hexdigest() == datasets.DATASETS["mnist"]["sha256"][stem]


def test_missing_files_offline_say_what_to_put_where(isolated):
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte\.gz.*\n.*") as info:
        datasets.load("mnist", "test", data_dir=isolated / "nothing")
    msg = str(info.value)
    assert "network unreachable" in msg and str(isolated / "nothing" / "mnist") in msg and "NETMOD_DATA" in msg


def test_search_order_env_then_cache(isolated, monkeypatch):
    for stem in TEST_FILES:
        _copy_embedded(stem, isolated / "env" / "mnist")
    monkeypatch.setenv("NETMOD_DATA", str(isolated / "env"))
    assert datasets.load("mnist", "test").source == str(isolated / "env" / "mnist")
    cache = isolated / "cache" / "netmod" / "mnist"
    for stem in TEST_FILES:
        _copy_embedded(stem, cache)
    monkeypatch.delenv("NETMOD_DATA")
    assert datasets.load("mnist", "test").source == str(cache)


def test_uncompressed_and_recompressed_files_are_accepted(isolated):
    d = isolated / "raw" / "mnist"
    d.mkdir(parents=True)
    (d / TEST_FILES[0]).write_bytes(_idx(TEST_FILES[0]))
    (d / f"{TEST_FILES[1]}.gz").write_bytes(gzip.compress(_idx(TEST_FILES[1]), compresslevel=1, mtime=0))
    ds = datasets.load("mnist", "test", data_dir=isolated / "raw")
    assert ds.images.shape == (10000, 28, 28)


def test_checksum_mismatch_names_file_and_checksums(isolated):
    d = isolated / "bad" / "mnist"
    _copy_embedded(TEST_FILES[1], d)
    raw = bytearray(_idx(TEST_FILES[0]))
    raw[5000] ^= 0xFF
    (d / f"{TEST_FILES[0]}.gz").write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz: SHA-256") as info:
        datasets.load("mnist", "test", data_dir=isolated / "bad")
    assert hashlib.sha256(bytes(raw)).hexdigest() in str(info.value)
    assert datasets.DATASETS["mnist"]["sha256"]["t10k-images-idx3-ubyte"] in str(info.value)


def test_truncated_file_is_an_error(isolated):
    d = isolated / "trunc" / "mnist"
    _copy_embedded(TEST_FILES[1], d)
    data = (EMBEDDED / f"{TEST_FILES[0]}.gz").read_bytes()
    (d / f"{TEST_FILES[0]}.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.gz.*(truncated|corrupt)"):
        datasets.load("mnist", "test", data_dir=isolated / "trunc")


def test_gz_with_bytes_overwritten_in_the_middle_names_the_file(isolated):
    d = isolated / "overwritten" / "mnist"
    _copy_embedded(TEST_FILES[1], d)
    data = bytearray((EMBEDDED / f"{TEST_FILES[0]}.gz").read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = b"\xaa" * 64  # the deflate stream is broken, not cut short
    (d / f"{TEST_FILES[0]}.gz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: cannot be decompressed.*corrupt"):
        datasets.load("mnist", "test", data_dir=isolated / "overwritten")


def test_download_is_verified_before_it_is_stored(isolated, monkeypatch):
    good = {stem: (EMBEDDED / f"{stem}.gz").read_bytes() for stem in TEST_FILES}
    bad = bytearray(_idx(TEST_FILES[0]))
    bad[100] ^= 1
    served = []

    def mirror(url):
        served.append(url)
        stem = url.rsplit("/", 1)[1][: -len(".gz")]
        if stem == TEST_FILES[0] and url.startswith(datasets.DATASETS["mnist"]["mirrors"][0]):
            return gzip.compress(bytes(bad))  # the first mirror serves a corrupted image file
        return good[stem]

    monkeypatch.setattr(datasets, "_fetch", mirror)
    ds = datasets.load("mnist", "test")
    assert ds.images.shape == (10000, 28, 28)
    cache = isolated / "cache" / "netmod" / "mnist"
    assert (cache / f"{TEST_FILES[0]}.gz").read_bytes() == good[TEST_FILES[0]]
    assert sum(TEST_FILES[0] in url for url in served) == 2  # the bad copy was discarded, the next mirror used

    monkeypatch.setattr(datasets, "_fetch", lambda url: b"not a gzip file at all")
    with pytest.raises(FileNotFoundError, match="download failed.*cannot be decompressed"):
        datasets.load("fashion-mnist", "test")
    assert not list((isolated / "cache" / "netmod").glob("fashion-mnist/*.gz"))


def test_embedded_split_is_the_test_split_cut_8000_2000():
    train = datasets.load_embedded("train")
    test = datasets.load_embedded("test")
    assert train.images.shape == (8000, 28, 28) and test.images.shape == (2000, 28, 28)
    labels = np.frombuffer(_idx(TEST_FILES[1])[8:], dtype=np.uint8)
    images = np.frombuffer(_idx(TEST_FILES[0])[16:], dtype=np.uint8).reshape(10000, 28, 28)
    np.testing.assert_array_equal(np.concatenate([train.labels, test.labels]), labels)
    np.testing.assert_array_equal(test.images, images[8000:])
    counts = np.bincount(labels, minlength=10)
    assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_embedded_split_matches_the_standard_files(standard_data):
    full = datasets.load("mnist", "test", data_dir=standard_data, download=False)
    np.testing.assert_array_equal(
        np.concatenate([datasets.load_embedded("train").images, datasets.load_embedded("test").images]),
        full.images)


@pytest.mark.parametrize("kw,match", [({"name": "cifar"}, "name"), ({"split": "valid"}, "split")])
def test_bad_name_or_split(kw, match, tmp_path):
    args = {"name": "mnist", "split": "test", **kw}
    with pytest.raises(ValueError, match=match):
        datasets.load(args["name"], args["split"], data_dir=tmp_path)
