"""Fixtures shared by the whole suite.

Large shared datasets are found through one setting: the environment variable
``TINYTORCH_DATA`` (``.ci/run`` points it at ``../shared/datasets``). Tests that need them
use the ``data_dir`` fixture and skip, saying why, when it is absent.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def manifest():
    from tito.manifest import load_manifest

    return load_manifest(REPO)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    value = os.environ.get("TINYTORCH_DATA")
    if not value:
        pytest.skip("TINYTORCH_DATA is not set: point it at a directory holding mnist/, cifar10/, text/ "
                    "(CI uses ../shared/datasets)")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"TINYTORCH_DATA={value} is not a directory")
    return path
