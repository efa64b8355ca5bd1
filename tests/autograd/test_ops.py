"""Every op of modules 01-05 checked three ways by the opcheck kit (see tests/opcheck/README.md)."""
from __future__ import annotations

import pytest

from opcheck import check_case
from opcheck.core_opcases import CASES


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_op(case):
    ran = check_case(case)
    assert ran["torch"] or ran["golden"], f"{case.name}: nothing to compare against"
    if case.gradcheck:
        assert ran["gradcheck"]
