"""Get a public data set's files into the data folder: find them, else download them.

Shared by the image and text loaders: where to look (``<data_dir>/<name>``,
known alternative layouts such as torchvision's ``FashionMNIST/raw``), which
mirrors to try, and the ``DatasetUnavailable`` message when all of that fails.
"""

from __future__ import annotations

from pathlib import Path

from agentdeck.engine.data import download as _dl
from agentdeck.engine.data.errors import DatasetUnavailable, DownloadError
from agentdeck.engine.data.paths import ENV_VAR, ProgressFn
from agentdeck.engine.data.sources import DatasetSource, RemoteFile

#: Seconds one connect/read may take, and how often a transient failure is retried.
DOWNLOAD_TIMEOUT_S = 30.0
DOWNLOAD_RETRIES = 3


def search_dirs(source: DatasetSource, root: Path) -> list[Path]:
    """Folders that may hold ``source``'s files, in the order they are searched."""
    return [root / source.name, *(root / alt for alt in source.alt_dirs)]


def fetch_file(
    source: DatasetSource,
    file: RemoteFile,
    root: Path,
    *,
    progress: ProgressFn | None,
    options: list[str],
) -> Path:
    """Download ``file`` into ``<root>/<source.name>/``, trying each mirror in turn."""
    dest = root / source.name / file.name
    failures: list[str] = []
    for mirror in source.mirrors:
        url = mirror + file.name
        try:
            return _dl.download(
                url,
                dest,
                md5=file.md5,
                progress=progress,
                timeout_s=DOWNLOAD_TIMEOUT_S,
                retries=DOWNLOAD_RETRIES,
                what=f"{source.name} {file.name}",
            )
        except DownloadError as e:
            failures.append(f"{url}: {e.error}")
    tried = "\n".join(f"  {f}" for f in failures) or "  (no download URLs configured)"
    raise DatasetUnavailable(
        f"{source.name}: {file.name} is not in {_dirs_text(source, root)} and could not be "
        f"downloaded:\n{tried}",
        options,
    )


def offline_unavailable(
    source: DatasetSource, missing: list[str], root: Path, options: list[str]
) -> DatasetUnavailable:
    return DatasetUnavailable(
        f"{source.name}: {', '.join(missing)} not found in {_dirs_text(source, root)}, "
        "and downloading is off (download=False)",
        options,
    )


def _dirs_text(source: DatasetSource, root: Path) -> str:
    return " or ".join(str(d) for d in search_dirs(source, root))


def data_dir_option(example_subdir: str) -> str:
    return (
        f"use another data folder: set {ENV_VAR}=/path/to/data or pass "
        f"-T data_dir=/path/to/data (files then go in /path/to/data/{example_subdir}/)"
    )


def predownload_option(name: str) -> str:
    return (
        f"on a machine with network, run `agentdeck data fetch {name} "
        "--data-dir DIR` and copy DIR here"
    )
