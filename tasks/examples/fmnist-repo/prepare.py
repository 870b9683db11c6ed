"""Public data and private answers of fmnist-repo.

The image set (Fashion-MNIST, MNIST, scikit-learn's digits or a folder of IDX files) is
split as its files split it: the training images with their labels are public; the
test images are public without labels, under shuffled ids; their labels (the answers)
stay in the engine process. ``seed`` shuffles the test ids and picks the ``n_test``
subset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

TITLES = {"fashion-mnist": "Fashion-MNIST", "mnist": "MNIST", "digits": "Digits (8x8)"}


def _source_paths(params: dict[str, Any]) -> list[Path]:
    """What the sandbox must not read: where the labelled test images come from."""
    out: list[Path] = []
    try:
        import sklearn.datasets

        base = Path(sklearn.datasets.__file__).parent
        out += [base / "data" / "digits.csv.gz", base / "descr" / "digits.rst"]
    except ImportError:
        pass
    spec = str(params["dataset"])
    if spec.startswith("idx:"):
        out.append(Path(spec[4:]).expanduser())
    from agentdeck.engine.data.paths import data_dir

    out.append(Path(data_dir(params.get("data_dir"))))
    return out


def prepare(ctx: Any) -> dict[str, Any]:
    """Write train.npz, test.npz, sample_submission.csv and classes.txt into
    ``ctx.public``; return the test labels by id."""
    from agentdeck.engine.datasets import load_image_dataset

    p = ctx.params
    ds = load_image_dataset(
        p["dataset"],
        data_dir=p["data_dir"],
        download=p["download"],
        n_train=p["n_train"],
        progress=ctx.progress,
    )
    ctx.hide(*_source_paths(p))
    if ds.X_test is None or ds.y_test is None:
        raise ValueError(f"{ds.name} has no test split to grade on")
    h, w = ds.image_shape
    rng = np.random.default_rng(p["seed"])
    order = rng.permutation(len(ds.y_test))
    if p["n_test"] is not None:
        if p["n_test"] > len(order):
            raise ValueError(
                f"-T n_test={p['n_test']}: {ds.name} has only {len(order):,} test images"
            )
        order = order[: p["n_test"]]
    X_test = ds.X_test[order].reshape(-1, h, w).astype(np.uint8)
    y_test = ds.y_test[order].astype(np.int64)
    # ids that do not give the order of the source files away
    ids = rng.choice(np.arange(100_000, 1_000_000), size=len(order), replace=False)
    X_train = ds.X_train.reshape(-1, h, w).astype(np.uint8)
    y_train = ds.y_train.astype(np.int64)
    out = ctx.public
    np.savez_compressed(out / "train.npz", images=X_train, labels=y_train)
    np.savez_compressed(out / "test.npz", images=X_test, ids=ids)
    (out / "sample_submission.csv").write_text(
        "id,label\n" + "".join(f"{i},0\n" for i in ids), encoding="utf-8"
    )
    (out / "classes.txt").write_text("\n".join(ds.class_names) + "\n", encoding="utf-8")
    k = len(ds.class_names)
    ctx.facts.update(
        title=TITLES.get(str(p["dataset"]), ds.name),
        n_train=f"{len(y_train):,}",
        n_test=f"{len(y_test):,}",
        image_shape=f"{h}x{w}",
        pixel_max=ds.pixel_max,
        num_classes=k,
        last_class=k - 1,
        classes=", ".join(f"{i}: {c}" for i, c in enumerate(ds.class_names)),
    )
    return {
        "ids": [str(int(i)) for i in ids],
        "labels": y_test,
        "class_names": list(ds.class_names),
        "dataset": ds.name,
        "notes": list(ds.notes),
    }
