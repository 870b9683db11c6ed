"""Dataset layer: IDX reading, image/text loaders, and downloads against a local server.

No test touches the internet: downloads go to an HTTP server started here on
127.0.0.1 (threads, a free port, stopped at teardown) that serves files the
test makes and honours ``Range`` unless told not to. Tests that read the real
samples in ``../shared/data`` skip when that folder is absent.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from agentdeck.engine import datasets as D
from agentdeck.engine.data import download as dl_mod
from agentdeck.engine.data import fetch as fetch_mod
from agentdeck.engine.data.sources import DatasetSource, RemoteFile

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not SHARED.is_dir():
    SHARED = Path("/work/shared/data")


# ---------------------------------------------------------------- helpers


def idx_bytes(arr: np.ndarray) -> bytes:
    codes = {
        np.dtype("u1"): 0x08,
        np.dtype("i1"): 0x09,
        np.dtype(">i2"): 0x0B,
        np.dtype(">i4"): 0x0C,
        np.dtype(">f4"): 0x0D,
        np.dtype(">f8"): 0x0E,
    }
    big = arr.astype(arr.dtype.newbyteorder(">")) if arr.dtype.itemsize > 1 else arr
    code = codes[big.dtype]
    return bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + big.tobytes()


def make_images(n: int, seed: int = 0, side: int = 28) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 256, size=(n, side, side)).astype(np.uint8)


def make_labels(n: int, k: int = 10) -> np.ndarray:
    return (np.arange(n) % k).astype(np.uint8)


def write_split(
    folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool = True
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for kind, arr, nd in (("images", images, 3), ("labels", labels, 1)):
        data = idx_bytes(arr)
        name = f"{prefix}-{kind}-idx{nd}-ubyte"
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data, mtime=0))
        else:
            (folder / name).write_bytes(data)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    #: path -> "ok" | "ignore_range" | "500" | "slow" | "cut_once" | "drip"
    modes: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        st: ServerState = self.server.state  # type: ignore[attr-defined]
        name = self.path.lstrip("/")
        rng = self.headers.get("Range")
        with st.lock:
            st.requests.append((name, rng))
            mode = st.modes.get(name, "ok")
            if mode == "cut_once":
                st.modes[name] = "ok"
        if mode == "500":
            self.send_error(500, "Internal Server Error")
            return
        if mode == "slow":
            st.release.wait(10)
            return
        if name not in st.files:
            self.send_error(404, "Not Found")
            return
        data = st.files[name]
        start = 0
        if rng and mode != "ignore_range":
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "cut_once":
            body = body[: len(body) // 3]  # announce everything, send a third, hang up
        for i in range(0, len(body), 8192):
            self.wfile.write(body[i : i + 8192])
            if mode == "drip":  # a slow body, so that concurrent clients overlap
                st.release.wait(0.02)


@dataclass
class Server:
    state: ServerState
    base: str

    def url(self, name: str) -> str:
        return self.base + name


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.block_on_close = False  # type: ignore[attr-defined]
    state = ServerState()
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield Server(state, f"http://127.0.0.1:{httpd.server_address[1]}/")
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def local_only_fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """No pauses between retries, and any attempt to reach a host other than
    127.0.0.1 fails the test (so an unpatched URL cannot go to the internet)."""
    monkeypatch.setattr(dl_mod, "RETRY_BACKOFF_S", 0.0)
    monkeypatch.setattr(fetch_mod, "DOWNLOAD_TIMEOUT_S", 5.0)
    real_getaddrinfo = socket.getaddrinfo

    def local_only(host: object, *args: object, **kwargs: object) -> object:
        if host not in ("127.0.0.1", "localhost", b"127.0.0.1"):
            raise AssertionError(f"test tried to reach {host!r}; only 127.0.0.1 is allowed")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", local_only)


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No AGENTDECK_DATA from the caller's shell; home under tmp."""
    monkeypatch.delenv("AGENTDECK_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def payload(n: int = 200_000, seed: int = 1) -> bytes:
    return np.random.RandomState(seed).bytes(n)


# ---------------------------------------------------------------- download()


def test_download_reports_progress_and_verifies(server: Server, tmp_path: Path) -> None:
    data = payload()
    server.state.files["f.bin"] = data
    calls: list[tuple[str, int, int | None]] = []
    dest = tmp_path / "sub" / "f.bin"
    out = D.download(
        server.url("f.bin"),
        dest,
        md5=md5(data),
        sha256=hashlib.sha256(data).hexdigest(),
        progress=lambda w, d, t: calls.append((w, d, t)),
    )
    assert out == dest and dest.read_bytes() == data
    assert not (tmp_path / "sub" / "f.bin.part").exists()
    done = [d for _, d, _ in calls]
    assert done[0] == 0 and done[-1] == len(data)
    assert all(b > a for a, b in itertools.pairwise(done)), "byte counts must increase"
    assert len(done) > 2
    assert {t for _, _, t in calls} == {len(data)}
    assert {w for w, _, _ in calls} == {"f.bin"}
    # Present and verified: no second request.
    D.download(server.url("f.bin"), dest, md5=md5(data))
    assert len(server.state.requests) == 1
    # A large file: about a hundred progress calls, not one per chunk.
    big = payload(4_000_000, seed=2)
    server.state.files["big.bin"] = big
    calls.clear()
    D.download(
        server.url("big.bin"),
        tmp_path / "big.bin",
        progress=lambda w, d, t: calls.append((w, d, t)),
    )
    assert 50 <= len(calls) <= 102 and calls[-1][1] == len(big)


def test_checksum_mismatch_leaves_no_file(server: Server, tmp_path: Path) -> None:
    server.state.files["f.bin"] = payload()
    dest = tmp_path / "f.bin"
    with pytest.raises(D.DownloadError) as exc:
        D.download(server.url("f.bin"), dest, md5="0" * 32)
    assert "md5" in str(exc.value) and server.url("f.bin") in str(exc.value)
    assert isinstance(exc.value, D.DatasetUnavailable)
    assert not dest.exists() and not (tmp_path / "f.bin.part").exists()
    with pytest.raises(D.DownloadError, match="sha256"):
        D.download(server.url("f.bin"), dest, sha256="ab" * 32)
    assert not dest.exists()


def test_resume_requests_only_the_rest(server: Server, tmp_path: Path) -> None:
    data = payload()
    server.state.files["f.bin"] = data
    dest = tmp_path / "f.bin"
    half = len(data) // 2
    (tmp_path / "f.bin.part").write_bytes(data[:half])
    calls: list[int] = []
    D.download(server.url("f.bin"), dest, md5=md5(data), progress=lambda w, d, t: calls.append(d))
    assert server.state.requests == [("f.bin", f"bytes={half}-")]
    assert dest.read_bytes() == data
    assert calls[0] == half and calls[-1] == len(data)


def test_server_ignoring_range_restarts_cleanly(server: Server, tmp_path: Path) -> None:
    data = payload()
    server.state.files["f.bin"] = data
    server.state.modes["f.bin"] = "ignore_range"
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(data[:5000])
    D.download(server.url("f.bin"), dest, md5=md5(data))
    assert server.state.requests == [("f.bin", "bytes=5000-")]  # asked, got the whole file
    assert dest.read_bytes() == data  # not 5000 bytes + the whole file


def test_stale_part_from_another_file_is_discarded(server: Server, tmp_path: Path) -> None:
    data = payload()
    server.state.files["f.bin"] = data
    dest = tmp_path / "f.bin"
    (tmp_path / "f.bin.part").write_bytes(b"x" * 1000)  # not a prefix of data
    D.download(server.url("f.bin"), dest, md5=md5(data))
    assert server.state.requests == [("f.bin", "bytes=1000-"), ("f.bin", None)]
    assert dest.read_bytes() == data


def test_complete_part_is_finished_without_data(server: Server, tmp_path: Path) -> None:
    data = payload(10_000)
    server.state.files["f.bin"] = data
    (tmp_path / "f.bin.part").write_bytes(data)
    D.download(server.url("f.bin"), tmp_path / "f.bin", md5=md5(data))
    assert server.state.requests == [("f.bin", f"bytes={len(data)}-")]  # answered 416
    assert (tmp_path / "f.bin").read_bytes() == data


def test_cut_transfer_is_retried_and_resumed(server: Server, tmp_path: Path) -> None:
    data = payload()
    server.state.files["f.bin"] = data
    server.state.modes["f.bin"] = "cut_once"
    D.download(server.url("f.bin"), tmp_path / "f.bin", md5=md5(data))
    (_first, r1), (_second, r2) = server.state.requests
    assert r1 is None and r2 == f"bytes={len(data) // 3}-"
    assert (tmp_path / "f.bin").read_bytes() == data


def test_404_fails_at_once(server: Server, tmp_path: Path) -> None:
    with pytest.raises(D.DownloadError) as exc:
        D.download(server.url("missing.bin"), tmp_path / "m.bin", retries=3)
    assert "HTTP 404" in str(exc.value) and not exc.value.transient
    assert len(server.state.requests) == 1
    assert not (tmp_path / "m.bin").exists()


def test_500_is_retried_then_fails(server: Server, tmp_path: Path) -> None:
    server.state.files["f.bin"] = b"abc"
    server.state.modes["f.bin"] = "500"
    with pytest.raises(D.DownloadError) as exc:
        D.download(server.url("f.bin"), tmp_path / "f.bin", retries=2)
    assert "HTTP 500" in str(exc.value) and "3 attempts" in str(exc.value)
    assert exc.value.transient
    assert len(server.state.requests) == 3


def test_connection_refused(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/f.bin"
    with pytest.raises(D.DownloadError, match="refused"):
        D.download(url, tmp_path / "f.bin", retries=1)
    assert not (tmp_path / "f.bin").exists()


def test_timeout(server: Server, tmp_path: Path) -> None:
    server.state.files["f.bin"] = b"abc"
    server.state.modes["f.bin"] = "slow"
    with pytest.raises(D.DownloadError, match="timed out"):
        D.download(server.url("f.bin"), tmp_path / "f.bin", timeout_s=0.2, retries=1)
    assert len(server.state.requests) == 2
    assert not (tmp_path / "f.bin").exists()


def test_concurrent_downloads_of_one_file_fetch_it_once(server: Server, tmp_path: Path) -> None:
    data = payload()
    server.state.files["f.bin"] = data
    server.state.modes["f.bin"] = "drip"
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def get() -> None:
        start.wait(timeout=10)
        try:
            D.download(server.url("f.bin"), tmp_path / "f.bin", md5=md5(data))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=get) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert len(server.state.requests) == 1
    assert (tmp_path / "f.bin").read_bytes() == data


# ---------------------------------------------------------------- read_idx


def test_read_idx_gz_and_raw_and_types(tmp_path: Path) -> None:
    imgs = make_images(5)
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(imgs)))
    (tmp_path / "a").write_bytes(idx_bytes(imgs))
    for p in ("a.gz", "a"):
        out = D.read_idx(tmp_path / p)
        assert out.dtype == np.uint8 and out.shape == (5, 28, 28)
        assert np.array_equal(out, imgs) and out.flags.writeable
    for dt in ("i1", "i2", "i4", "f4", "f8"):
        arr = (np.arange(12).reshape(3, 4) - 5).astype(dt)
        (tmp_path / "t").write_bytes(idx_bytes(arr))
        out = D.read_idx(tmp_path / "t")
        assert out.dtype.isnative and np.array_equal(out, arr), dt


def test_read_idx_damaged_files(tmp_path: Path) -> None:
    good = idx_bytes(make_images(4))
    cases = {
        "magic": (b"\x01\x02" + good[2:], "bad magic number 0x0102"),
        "type": (good[:2] + b"\x07" + good[3:], "bad magic number"),
        "html": (b"<html><body>404</body></html>", "HTML"),
        "short": (good[:3], "too short"),
        "header": (good[:10], "truncated header"),
        "data": (good[:-100], "truncated"),
        "extra": (good + b"\x00" * 7, "7 unexpected bytes"),
    }
    for name, (data, expected) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(D.IdxFormatError, match=expected) as exc:
            D.read_idx(tmp_path / name)
        assert str(tmp_path / name) in str(exc.value)
    gz = gzip.compress(good)
    (tmp_path / "cut.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(D.IdxFormatError, match="gzip data is damaged"):
        D.read_idx(tmp_path / "cut.gz")
    with pytest.raises(D.IdxFormatError, match="no such file"):
        D.read_idx(tmp_path / "nope")


def test_image_and_label_counts_must_agree(tmp_path: Path) -> None:
    write_split(tmp_path / "d", "train", make_images(10), make_labels(9))
    with pytest.raises(D.IdxFormatError, match=r"10 images but .* 9 labels"):
        D.load_image_dataset(f"idx:{tmp_path / 'd'}")


def test_labels_out_of_range(tmp_path: Path) -> None:
    folder = tmp_path / "fashion-mnist"
    write_split(folder, "train", make_images(12), make_labels(12, 12))
    write_split(folder, "t10k", make_images(4), make_labels(4))
    with pytest.raises(D.IdxFormatError, match=r"label 10 at record 10 is outside 0\.\.9"):
        D.load_image_dataset("fashion-mnist", data_dir=tmp_path, download=False)


# ---------------------------------------------------------------- idx:PATH


@pytest.mark.skipif(not (SHARED / "fashion-mnist-head").is_dir(), reason="shared data absent")
def test_idx_fashion_mnist_head() -> None:
    ds = D.load_image_dataset(f"idx:{SHARED / 'fashion-mnist-head'}")
    assert ds.X_test is not None and ds.y_test is not None
    assert ds.y_train.size + ds.y_test.size == 8226
    assert ds.X_train.shape[1] == 784 and ds.X_train.dtype == np.uint8
    assert ds.image_shape == (28, 28)
    assert ds.y_train.dtype == np.int64 and set(np.unique(ds.y_train)) == set(range(10))
    assert set(np.unique(ds.y_test)) == set(range(10))
    assert ds.class_names[0] == "T-shirt/top" and ds.num_classes == 10
    assert any("held out" in n for n in ds.notes)
    # Stratified: each class's share in test is about the hold-out fraction.
    share = np.bincount(ds.y_test, minlength=10) / (
        np.bincount(ds.y_train, minlength=10) + np.bincount(ds.y_test, minlength=10)
    )
    assert np.allclose(share, 0.2, atol=0.01)
    # Fixed seed: the same split every time.
    again = D.load_image_dataset(f"idx:{SHARED / 'fashion-mnist-head'}")
    assert np.array_equal(again.y_test, ds.y_test) and np.array_equal(again.X_train, ds.X_train)
    # The first official Fashion-MNIST labels.
    full = D.read_idx(SHARED / "fashion-mnist-head" / "train-labels-idx1-ubyte.gz")
    assert full[:5].tolist() == [9, 0, 0, 3, 0]


@pytest.mark.skipif(not (SHARED / "mnist-t10k").is_dir(), reason="shared data absent")
def test_idx_mnist_t10k_only() -> None:
    ds = D.load_image_dataset(f"idx:{SHARED / 'mnist-t10k'}", n_train=500)
    assert ds.y_test is not None and ds.y_test.size == 2000
    assert ds.y_train.size == 500
    assert any("only the t10k split" in n for n in ds.notes)
    assert ds.class_names == [str(i) for i in range(10)]


@pytest.mark.skipif(not (SHARED / "mnist-t10k").is_dir(), reason="shared data absent")
def test_shared_mnist_t10k_matches_published_md5() -> None:
    mnist = D.SOURCES["mnist"]
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert D.verify_file(SHARED / "mnist-t10k" / name, md5=mnist.file(name).md5) is None


def test_idx_folder_with_both_splits_and_classes_txt(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    write_split(folder, "train", make_images(30), make_labels(30, 3), gz=False)
    write_split(folder, "t10k", make_images(6, seed=2), make_labels(6, 3))
    (folder / "classes.txt").write_text("cat\ndog\nbird\n")
    ds = D.load_image_dataset(f"idx:{folder}")
    assert ds.y_train.size == 30 and ds.y_test is not None and ds.y_test.size == 6
    assert ds.class_names == ["cat", "dog", "bird"]
    assert np.array_equal(ds.X_train.reshape(30, 28, 28), make_images(30))
    assert not any("held out" in n for n in ds.notes)


def test_idx_folder_problems(tmp_path: Path) -> None:
    with pytest.raises(D.DatasetUnavailable, match="does not exist") as exc:
        D.load_image_dataset(f"idx:{tmp_path / 'nope'}")
    assert "-T dataset=digits" in str(exc.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(D.DatasetUnavailable, match="holds no IDX split"):
        D.load_image_dataset(f"idx:{tmp_path / 'empty'}")
    write_split(tmp_path / "lone", "train", make_images(3), make_labels(3))
    (tmp_path / "lone" / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(D.IdxFormatError, match="train-labels-idx1-ubyte"):
        D.load_image_dataset(f"idx:{tmp_path / 'lone'}")
    with pytest.raises(D.DatasetError, match="unknown image data set"):
        D.load_image_dataset("cifar")


# ---------------------------------------------------------------- digits, n_train


def test_digits_offline_stratified() -> None:
    ds = D.load_image_dataset("digits")
    assert ds.X_train.shape[1] == 64 and ds.image_shape == (8, 8)
    assert ds.X_train.dtype == np.uint8 and ds.pixel_max == 16 and ds.X_train.max() == 16
    assert ds.y_test is not None and ds.y_train.size + ds.y_test.size == 1797
    assert set(np.unique(ds.y_test)) == set(range(10))
    assert abs(ds.y_test.size - 0.2 * 1797) <= 10
    again = D.load_image_dataset("digits")
    assert np.array_equal(again.y_test, ds.y_test)


def test_n_train_takes_the_first(tmp_path: Path) -> None:
    full = D.load_image_dataset("digits")
    sub = D.load_image_dataset("digits", n_train=100)
    assert np.array_equal(sub.X_train, full.X_train[:100])
    assert np.array_equal(sub.y_train, full.y_train[:100])
    assert sub.y_test is not None and full.y_test is not None
    assert np.array_equal(sub.y_test, full.y_test)
    assert any("n_train=100" in n for n in sub.notes)
    with pytest.raises(D.DatasetError, match="at most 1,438"):
        D.load_image_dataset("digits", n_train=5000)
    with pytest.raises(D.DatasetError, match="positive"):
        D.load_image_dataset("digits", n_train=0)


def test_stratified_holdout_properties() -> None:
    y = np.array([0] * 50 + [1] * 5 + [2] * 1)
    tr, te = D.stratified_holdout(y, 0.2, 0)
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(y.size))
    assert np.bincount(y[te], minlength=3).tolist() == [10, 1, 0]
    assert np.all(np.diff(tr) > 0) and np.all(np.diff(te) > 0)


# ---------------------------------------------------------------- data_dir and the cache


def test_data_dir_precedence(monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> None:
    home = isolated_env / "home"
    assert D.data_dir() == home / ".cache" / "agentdeck"
    monkeypatch.setenv("XDG_CACHE_HOME", str(isolated_env / "xdg"))
    assert D.data_dir() == isolated_env / "xdg" / "agentdeck"
    monkeypatch.setenv("AGENTDECK_DATA", str(isolated_env / "env"))
    assert D.data_dir() == isolated_env / "env"
    assert D.data_dir(isolated_env / "explicit") == isolated_env / "explicit"
    assert D.data_dir("~/d") == home / "d"


def test_cached_files_found_in_layouts(tmp_path: Path) -> None:
    # torchvision layout, unzipped
    write_split(
        tmp_path / "FashionMNIST" / "raw", "train", make_images(20), make_labels(20), gz=False
    )
    write_split(tmp_path / "FashionMNIST" / "raw", "t10k", make_images(5), make_labels(5), gz=False)
    ds = D.load_image_dataset("fashion-mnist", data_dir=tmp_path, download=False)
    assert ds.y_train.size == 20 and ds.class_names[9] == "Ankle boot"
    assert any("official fashion-mnist train split has 60,000" in n for n in ds.notes)
    assert any("not gzipped" in n for n in ds.notes)


def test_root_level_files_need_the_official_md5(tmp_path: Path) -> None:
    # Same names as MNIST's; in the data folder itself they count only if official.
    write_split(tmp_path, "train", make_images(5), make_labels(5))
    write_split(tmp_path, "t10k", make_images(5), make_labels(5))
    with pytest.raises(D.DatasetUnavailable, match="download=False"):
        D.load_image_dataset("mnist", data_dir=tmp_path, download=False)


def test_env_var_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_split(tmp_path / "mnist", "train", make_images(8), make_labels(8))
    write_split(tmp_path / "mnist", "t10k", make_images(4), make_labels(4))
    monkeypatch.setenv("AGENTDECK_DATA", str(tmp_path))
    ds = D.load_image_dataset("mnist", download=False)
    assert ds.y_train.size == 8 and str(tmp_path / "mnist") in ds.source
    assert any("differs from the official file" in n for n in ds.notes)


# ---------------------------------------------------------------- loaders + local server


def serve_idx_set(
    server: Server,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    n_train: int = 40,
    n_test: int = 10,
    second_mirror: bool = False,
) -> None:
    """Serve a tiny IDX data set under ``/<name>/`` and point SOURCES[name] at it."""
    arrays = {
        "train-images-idx3-ubyte.gz": make_images(n_train),
        "train-labels-idx1-ubyte.gz": make_labels(n_train),
        "t10k-images-idx3-ubyte.gz": make_images(n_test, seed=3),
        "t10k-labels-idx1-ubyte.gz": make_labels(n_test),
    }
    files = []
    for fname, arr in arrays.items():
        data = gzip.compress(idx_bytes(arr), mtime=0)
        server.state.files[f"{name}/{fname}"] = data
        files.append(RemoteFile(fname, md5(data)))
    mirrors = (
        (server.base + "dead/", server.base + f"{name}/")
        if second_mirror
        else (server.base + f"{name}/",)
    )
    src: DatasetSource = replace(D.SOURCES[name], mirrors=mirrors, files=tuple(files))
    monkeypatch.setitem(D.SOURCES, name, src)


def test_load_downloads_into_the_data_dir(
    server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    serve_idx_set(server, monkeypatch, "fashion-mnist", second_mirror=True)
    seen: list[tuple[str, int, int | None]] = []
    ds = D.load_image_dataset(
        "fashion-mnist", data_dir=tmp_path, progress=lambda w, d, t: seen.append((w, d, t))
    )
    assert ds.y_train.size == 40 and ds.y_test is not None and ds.y_test.size == 10
    assert ds.X_train.shape == (40, 784)
    assert sorted(p.name for p in (tmp_path / "fashion-mnist").glob("*.gz")) == sorted(
        f.name for f in D.SOURCES["fashion-mnist"].files
    )
    assert {w for w, _, _ in seen} == {
        f"fashion-mnist {f.name}" for f in D.SOURCES["fashion-mnist"].files
    }
    # The dead mirror was tried first for each file, then the working one.
    assert [r[0].split("/")[0] for r in server.state.requests] == ["dead", "fashion-mnist"] * 4
    # Second load is offline.
    n = len(server.state.requests)
    again = D.load_image_dataset("fashion-mnist", data_dir=tmp_path, download=False)
    assert np.array_equal(again.X_train, ds.X_train) and len(server.state.requests) == n
    assert not any("differs" in note for note in again.notes)


@pytest.mark.parametrize("mode", ["404", "500", "refused"])
def test_load_failure_lists_the_options(
    mode: str, server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    serve_idx_set(server, monkeypatch, "mnist")
    src = D.SOURCES["mnist"]
    if mode == "404":
        server.state.files.clear()
    elif mode == "500":
        for f in src.files:
            server.state.modes[f"mnist/{f.name}"] = "500"
    else:
        monkeypatch.setitem(
            D.SOURCES, "mnist", replace(src, mirrors=(f"http://127.0.0.1:{free_port()}/",))
        )
    with pytest.raises(D.DatasetUnavailable) as exc:
        D.load_image_dataset("mnist", data_dir=tmp_path)
    msg = str(exc.value)
    assert {"404": "HTTP 404", "500": "HTTP 500", "refused": "refused"}[mode] in msg
    assert "train-images-idx3-ubyte.gz" in msg and "127.0.0.1" in msg
    assert str(tmp_path / "mnist") in msg
    for option in ("AGENTDECK_DATA", "-T data_dir=", "-T dataset=digits", "-T dataset=idx:"):
        assert option in msg, option
    assert len(exc.value.options) >= 4
    assert not list((tmp_path / "mnist").glob("*.gz"))


def test_download_false_never_touches_the_network(
    server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    serve_idx_set(server, monkeypatch, "mnist")
    with pytest.raises(D.DatasetUnavailable, match="download=False") as exc:
        D.load_image_dataset("mnist", data_dir=tmp_path, download=False)
    assert server.state.requests == []
    assert "-T dataset=digits" in str(exc.value)
    with pytest.raises(D.DatasetUnavailable, match="download=False"):
        D.load_ag_news(data_dir=tmp_path, download=False)
    assert server.state.requests == []


def test_only_missing_split_is_downloaded(
    server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    serve_idx_set(server, monkeypatch, "mnist")
    write_split(tmp_path / "mnist", "train", make_images(12), make_labels(12), gz=False)
    ds = D.load_image_dataset("mnist", data_dir=tmp_path)
    assert ds.y_train.size == 12 and ds.y_test is not None and ds.y_test.size == 10
    assert sorted(r[0] for r in server.state.requests) == [
        "mnist/t10k-images-idx3-ubyte.gz",
        "mnist/t10k-labels-idx1-ubyte.gz",
    ]


# ---------------------------------------------------------------- AG News


AG_ROWS = (
    '"3","Wall St. Bears Claw Back","Reuters - Short-sellers, Wall Street\'s dwindling\\band '
    'of ultra-cynics, are seeing green again."\n'
    '"2","Title with ""quotes""","Line one\\Line two \\$10 million, the  #36;5 fee"\n'
    '"1","Multi\nline title","World news"\n'
    '"4","Sci","Tech #39;s future"\n'
)


def test_ag_news_small_csv(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text(AG_ROWS, encoding="utf-8")
    ds = D.load_ag_news(path)
    assert ds.labels.tolist() == [2, 1, 0, 3] and ds.labels.dtype == np.int64
    assert ds.titles[1] == 'Title with "quotes"'
    assert ds.descriptions[1] == "Line one\\Line two \\$10 million, the  #36;5 fee"
    assert ds.titles[2] == "Multi\nline title"
    assert ds.texts[0] == (
        "Wall St. Bears Claw Back Reuters - Short-sellers, Wall Street's "
        "dwindling band of ultra-cynics, are seeing green again."
    )
    assert ds.texts[1] == 'Title with "quotes" Line one Line two $10 million, the $5 fee'
    assert ds.texts[3] == "Sci Tech's future"
    assert ds.class_names == ["World", "Sports", "Business", "Sci/Tech"]
    assert any("official train split has 120,000" in n for n in ds.notes)
    # A folder works too, and a header row is skipped with a note.
    (tmp_path / "test.csv").write_text('Class Index,Title,Description\n"1","a","b"\n')
    t = D.load_ag_news(tmp_path, split="test")
    assert t.labels.tolist() == [0] and any("header" in n for n in t.notes)


@pytest.mark.parametrize(
    ("content", "line", "expected"),
    [
        ('"1","a","b"\n"2","only two"\n', 2, "expected 3 fields"),
        ('"1","a","b"\n\n"5","a","b"\n', 3, "must be 1, 2, 3 or 4, found '5'"),
        ('"1","a","b"\n"x","a","b"\n', 2, "found 'x'"),
        ('"1","a","b"\n"2","a","b","c"\n', 2, "found 4"),
        ('"1","a","b"\n"2","a" junk,"b"\n', 2, "expected after"),
        ('"1","a","b"\n"2","a","unterminated\n', 2, "unexpected end of data"),
    ],
)
def test_ag_news_malformed_rows(tmp_path: Path, content: str, line: int, expected: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(D.CsvFormatError) as exc:
        D.load_ag_news(path)
    assert f"{path}:{line}:" in str(exc.value)
    assert expected in str(exc.value)


def test_ag_news_not_utf8_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b'"1","a","b"\n"2","caf\xe9","b"\n')
    with pytest.raises(D.CsvFormatError, match=r"bad.csv:2: not UTF-8"):
        D.load_ag_news(path)
    path.write_text("\n")
    with pytest.raises(D.CsvFormatError, match="no data rows"):
        D.load_ag_news(path)


def test_ag_news_missing_sources(tmp_path: Path) -> None:
    with pytest.raises(D.DatasetUnavailable, match="does not exist"):
        D.load_ag_news(tmp_path / "nope.csv")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train.csv").write_text('"1","a","b"\n')
    with pytest.raises(D.DatasetUnavailable, match=r"no test.csv \(CSV files there: train.csv\)"):
        D.load_ag_news(tmp_path / "d", split="test")
    with pytest.raises(D.DatasetError, match="splits"):
        D.load_ag_news(tmp_path / "d", split="valid")


@pytest.mark.skipif(not (SHARED / "ag-news-test").is_dir(), reason="shared data absent")
def test_ag_news_shared_test_split() -> None:
    ds = D.load_ag_news(SHARED / "ag-news-test", split="test")
    assert len(ds) == 7600
    assert np.bincount(ds.labels).tolist() == [1900] * 4
    assert ds.class_names == ["World", "Sports", "Business", "Sci/Tech"]
    assert ds.titles[0] == "Fears for T N pension after talks"
    assert not any("official test split has" in n for n in ds.notes)
    assert not any("\\" in t or "#39;" in t or " quot;" in t for t in ds.texts)
    # The file path works the same way.
    assert len(D.load_ag_news(SHARED / "ag-news-test" / "test.csv", split="test")) == 7600


def test_ag_news_download_with_checksum(
    server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = AG_ROWS.encode()
    server.state.files["ag/test.csv"] = data
    src = replace(
        D.SOURCES["ag_news"],
        mirrors=(server.base + "ag/",),
        files=(RemoteFile("test.csv", md5(data)), RemoteFile("train.csv", "0" * 32)),
    )
    monkeypatch.setitem(D.SOURCES, "ag_news", src)
    ds = D.load_ag_news(split="test", data_dir=tmp_path)
    assert len(ds) == 4 and (tmp_path / "ag_news" / "test.csv").read_bytes() == data
    assert any("md5-verified" in n for n in ds.notes)
    # train.csv is served with the wrong published md5: refused, options listed, nothing kept.
    server.state.files["ag/train.csv"] = data
    with pytest.raises(D.DatasetUnavailable) as exc:
        D.load_ag_news(split="train", data_dir=tmp_path)
    assert "md5" in str(exc.value) and "ag_news" in str(exc.value)
    assert "AGENTDECK_DATA" in str(exc.value)
    assert not (tmp_path / "ag_news" / "train.csv").exists()


def test_clean_text() -> None:
    assert D.clean_text("Mylan #39;s \\$4 billion\\deal") == "Mylan's $4 billion deal"
    assert D.clean_text("a &lt;B&gt; b  quot;c quot; d amp; e") == 'a <B> b "c" d& e'
    assert D.clean_text("one\\\\two  three") == "one two three"


def test_engine_datasets_cli_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_split(tmp_path / "mnist", "train", make_images(2), make_labels(2))
    assert D.main(["where", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path) in out and "train-images-idx3-ubyte.gz" in out


def test_engine_datasets_cli_fetch(
    server: Server,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    serve_idx_set(server, monkeypatch, "mnist")
    assert D.main(["fetch", "mnist", "--data-dir", str(tmp_path)]) == 0
    assert "40 train + 10 test images" in capsys.readouterr().out
    assert len(list((tmp_path / "mnist").glob("*.gz"))) == 4
    ag = replace(D.SOURCES["ag_news"], mirrors=(server.base + "ag/",))
    monkeypatch.setitem(D.SOURCES, "ag_news", ag)
    assert D.main(["fetch", "ag_news", "--data-dir", str(tmp_path)]) == 1  # 404 here
    err = capsys.readouterr().err
    assert "error: ag_news: train.csv" in err and "HTTP 404" in err and "Options:" in err
