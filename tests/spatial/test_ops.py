"""Every op of module 09 checked three ways by the opcheck kit (see tests/opcheck/README.md)."""
from __future__ import annotations

import pytest

from opcheck import check_case
from .spatial_opcases import CASES


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_op(case):
    ran = check_case(case)
    assert ran["torch"] or ran["golden"], f"{case.name}: nothing to compare against"
    assert ran["gradcheck"] and ran["float32"]
