"""The kernel's environment: an allow list of harmless variables, minus secrets.

A parent variable reaches the kernel only if its name is on the allow list
(exact names, or a prefix such as ``LC_`` / ``OMP_``) *and* does not look like
a secret (key, token, secret, password, credential, auth, ...). The secret
check is a second fence: even an allow-listed prefix never lets
``HF_TOKEN``-like names through. ``HOME`` and ``TMPDIR`` are set to
directories the caller chose inside the run directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

#: Parent variables passed as they are.
ALLOWED_NAMES = frozenset(
    {
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "USER",
        "LOGNAME",
        "SHELL",
        "PYTHONPATH",
        "PYTHONHASHSEED",
        "PYTHONIOENCODING",
        "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONWARNINGS",
        "PYTHONUTF8",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        "LD_LIBRARY_PATH",
        "CUDA_VISIBLE_DEVICES",
        "CUDA_DEVICE_ORDER",
        "CUDA_HOME",
        "CUDA_PATH",
        "NVIDIA_VISIBLE_DEVICES",
        "HIP_VISIBLE_DEVICES",
        "ROCR_VISIBLE_DEVICES",
        "PYTORCH_CUDA_ALLOC_CONF",
        "PYTORCH_ENABLE_MPS_FALLBACK",
        "TOKENIZERS_PARALLELISM",
        "MPLBACKEND",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
    }
)
#: Prefixes of parent variables passed as they are (thread counts, locale).
ALLOWED_PREFIXES = (
    "LC_",
    "OMP_",
    "MKL_",
    "OPENBLAS_",
    "NUMEXPR_",
    "VECLIB_",
    "KMP_",
    "BLIS_",
    "TORCH_NUM_",
)

#: Anywhere in the name.
_SECRET_PARTS = re.compile(
    r"SECRET|PASSW|PASSPHRASE|CREDENTIAL|APIKEY|API_KEY|ACCESSKEY|PRIVATE|COOKIE|BEARER"
)
#: Whole ``_``-separated words of the name (so TOKENIZERS_PARALLELISM is harmless).
_SECRET_WORDS = frozenset(
    {
        "KEY",
        "KEYS",
        "TOKEN",
        "TOKENS",
        "AUTH",
        "PWD",
        "PASS",
        "SESSION",
        "SIG",
        "SIGNATURE",
        "DSN",
        "SAS",
        "JWT",
        "OTP",
        "CERT",
        "PAT",
    }
)


def looks_secret(name: str) -> bool:
    """True for names like ``ANTHROPIC_API_KEY``, ``FOO_TOKEN``, ``DB_PASSWORD``."""
    upper = name.upper()
    if _SECRET_PARTS.search(upper):
        return True
    return any(word in _SECRET_WORDS for word in re.split(r"[^A-Z0-9]+", upper))


def is_allowed(name: str) -> bool:
    """True if a parent variable of this name may reach the kernel."""
    if looks_secret(name):
        return False
    return name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES)


def kernel_env(
    *,
    home_dir: Path,
    tmp_dir: Path,
    parent: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The kernel's environment.

    ``extra`` comes from the engine (e.g. a task's settings) and is passed as
    given, but a secret-looking name there raises ``ValueError``: secrets never
    go into the sandbox.
    """
    src = os.environ if parent is None else parent
    env = {k: v for k, v in src.items() if is_allowed(k)}
    for k, v in (extra or {}).items():
        if looks_secret(k):
            raise ValueError(
                f"refusing to pass {k!r} into the sandbox: its name looks like a secret "
                "(key/token/password); the agent's code must not see credentials"
            )
        env[k] = str(v)
    home, tmp = str(home_dir), str(tmp_dir)
    env.update(
        HOME=home,
        TMPDIR=tmp,
        TMP=tmp,
        TEMP=tmp,
        IPYTHONDIR=str(Path(home) / ".ipython"),
        MPLCONFIGDIR=str(Path(home) / ".config" / "matplotlib"),
        PYTHONUNBUFFERED="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    env.setdefault("LANG", "C.UTF-8")
    return env
