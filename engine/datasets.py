"""Public API of the dataset layer (see docs/datasets.md).

- ``load_image_dataset("fashion-mnist" | "mnist" | "digits" | "idx:PATH")``
  -> ``ImageDataset`` (train and test split, flattened uint8 images).
- ``load_ag_news(source=None, split="train")`` -> ``TextDataset``.
- ``data_dir()``: where data is looked for and downloaded to.
- ``download(url, dest, md5=..., progress=...)``: resumable, verified, atomic.
- ``read_idx(path)``: one IDX file as a numpy array.
- ``DatasetUnavailable`` (message lists the options that remain) and
  ``DatasetError`` (present but damaged, with file and line/byte).

Nothing here needs the network when the files are present, and
``download=False`` never touches it. ``python -m agentdeck.engine.datasets fetch NAME``
pre-downloads a data set on a machine with network.
"""

from __future__ import annotations

import argparse
import sys

from agentdeck.engine.data.agnews import TextDataset, clean_text, load_ag_news, read_ag_news_csv
from agentdeck.engine.data.download import download, verify_file
from agentdeck.engine.data.errors import (
    CsvFormatError,
    DatasetError,
    DatasetUnavailable,
    DownloadError,
    IdxFormatError,
)
from agentdeck.engine.data.idx import read_idx
from agentdeck.engine.data.images import ImageDataset, load_image_dataset, stratified_holdout
from agentdeck.engine.data.paths import ENV_VAR, ProgressFn, data_dir
from agentdeck.engine.data.sources import SOURCES, DatasetSource, RemoteFile

__all__ = [
    "ENV_VAR",
    "SOURCES",
    "CsvFormatError",
    "DatasetError",
    "DatasetSource",
    "DatasetUnavailable",
    "DownloadError",
    "IdxFormatError",
    "ImageDataset",
    "ProgressFn",
    "RemoteFile",
    "TextDataset",
    "clean_text",
    "data_dir",
    "download",
    "load_ag_news",
    "load_image_dataset",
    "read_ag_news_csv",
    "read_idx",
    "stratified_holdout",
    "verify_file",
]

FETCHABLE = ("fashion-mnist", "mnist", "ag_news")


def _print_progress(what: str, done: int, total: int | None) -> None:
    if total:
        sys.stderr.write(
            f"\r{what}: {done / 1e6:6.1f} / {total / 1e6:.1f} MB ({done / total:4.0%})"
        )
        if done >= total:
            sys.stderr.write("\n")
    else:
        sys.stderr.write(f"\r{what}: {done / 1e6:6.1f} MB")
    sys.stderr.flush()


def main(
    argv: list[str] | None = None, *, prog: str = "python -m agentdeck.engine.datasets"
) -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Pre-download agentdeck's data sets, or show where they are looked for.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="download and verify data sets into the data folder")
    p_fetch.add_argument(
        "names",
        nargs="+",
        choices=FETCHABLE,
        metavar="NAME",
        help=f"one or more of: {', '.join(FETCHABLE)}",
    )
    p_fetch.add_argument(
        "--data-dir", default=None, help=f"default: ${ENV_VAR} or ~/.cache/agentdeck"
    )
    p_where = sub.add_parser("where", help="print the data folder and what is in it")
    p_where.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)

    root = data_dir(args.data_dir)
    if args.command == "where":
        print(root)
        for name in FETCHABLE:
            folder = root / name
            files = (
                sorted(
                    p.name for p in folder.glob("*") if p.is_file() and not p.name.startswith(".")
                )
                if folder.is_dir()
                else []
            )
            print(f"  {name}: {', '.join(files) if files else '(nothing)'}")
        return 0
    try:
        for name in args.names:
            if name == "ag_news":
                for split in ("train", "test"):
                    ds = load_ag_news(split=split, data_dir=root, progress=_print_progress)
                    print(f"ag_news {split}: {len(ds):,} rows in {ds.source}")
            else:
                img = load_image_dataset(name, data_dir=root, progress=_print_progress)
                print(
                    f"{name}: {img.y_train.size:,} train + "
                    f"{0 if img.y_test is None else img.y_test.size:,} test images in {img.source}"
                )
    except (DatasetUnavailable, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
