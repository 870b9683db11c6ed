"""Where the public data sets live, and the checksums of the official files.

Everything a download needs is in the module-level ``SOURCES`` table, so a
test can point a data set at a local server with
``monkeypatch.setitem(SOURCES, "mnist", replace(SOURCES["mnist"], mirrors=(...)))``.

Checksums are the published ones, not values computed here:

- Fashion-MNIST: the md5 column of the file table in the data set's README,
  https://github.com/zalandoresearch/fashion-mnist#get-the-data (the same
  values are in torchvision's ``FashionMNIST.resources``).
- MNIST: torchvision's ``MNIST.resources``,
  https://github.com/pytorch/vision/blob/main/torchvision/datasets/mnist.py ;
  the t10k images md5 is also the one given for the real file in the
  project's test data (``shared/data/README.md``), and both t10k files
  there hash to these values.
- AG News: torchtext's ``AG_NEWS`` (``MD5`` next to the CharCnn_Keras URLs),
  https://github.com/pytorch/text/blob/main/torchtext/datasets/ag_news.py ;
  the test.csv md5 was re-checked against that repository's file.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RemoteFile:
    name: str
    md5: str
    #: Rough size, for messages only.
    size_text: str = ""


@dataclass(frozen=True)
class DatasetSource:
    #: The key in ``SOURCES`` and the name of its folder under the data dir.
    name: str
    #: Base URLs tried in order; a file's URL is ``mirror + file.name``.
    mirrors: tuple[str, ...]
    files: tuple[RemoteFile, ...]
    #: Other folder names under the data dir that hold the same files
    #: (torchvision's cache layout, for example).
    alt_dirs: tuple[str, ...] = ()
    class_names: tuple[str, ...] = ()
    #: Expected number of records per split, to flag partial copies.
    counts: dict[str, int] = field(default_factory=dict)

    def file(self, name: str) -> RemoteFile:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no file {name!r}")


FASHION_MNIST = DatasetSource(
    name="fashion-mnist",
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
    files=(
        RemoteFile("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "26 MB"),
        RemoteFile("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", "29 KB"),
        RemoteFile("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", "4.3 MB"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", "5.1 KB"),
    ),
    alt_dirs=("FashionMNIST/raw", "fashion"),
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    counts={"train": 60_000, "t10k": 10_000},
)

MNIST = DatasetSource(
    name="mnist",
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    files=(
        RemoteFile("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", "9.9 MB"),
        RemoteFile("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", "29 KB"),
        RemoteFile("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", "1.6 MB"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", "4.5 KB"),
    ),
    alt_dirs=("MNIST/raw",),
    class_names=tuple(str(i) for i in range(10)),
    counts={"train": 60_000, "t10k": 10_000},
)

AG_NEWS = DatasetSource(
    name="ag_news",
    mirrors=("https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/",),
    files=(
        RemoteFile("train.csv", "b1a00f826fdfbd249f79597b59e1dc12", "29 MB"),
        RemoteFile("test.csv", "d52ea96a97a2d943681189a97654912d", "1.8 MB"),
    ),
    alt_dirs=("ag_news_csv", "ag-news"),
    class_names=("World", "Sports", "Business", "Sci/Tech"),
    counts={"train": 120_000, "test": 7_600},
)

SOURCES: dict[str, DatasetSource] = {s.name: s for s in (FASHION_MNIST, MNIST, AG_NEWS)}
