"""tito: the TinyTorch command line (export, check, release, learner workspace, milestones)."""
from __future__ import annotations

from functools import cache


@cache
def distribution_version() -> str:
    """The one version string, defined in pyproject.toml and read from the installed metadata:
    the course checkout's ``tinytorch`` distribution, or in a student kit the ``tinytorch-tito``
    wheel (which ``tito release`` builds with that same version). ``tito export`` writes it into
    ``tinytorch/__init__.py``. Read on first use: the lookup costs ~0.1 s, too much for every import."""
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("tinytorch", "tinytorch-tito"):
        try:
            return version(dist)
        except PackageNotFoundError:
            pass
    return "0+unknown"


def __getattr__(name: str):
    if name == "__version__":
        return distribution_version()
    raise AttributeError(f"module 'tito' has no attribute {name!r}")
