"""Modules 12-13: every differentiable op checked by finite differences, PyTorch (live or the
golden fixtures tests/golden/attn_*.npz, tf_*.npz) and a float32 run (tests/opcheck)."""
from __future__ import annotations

import pytest

from opcheck import check_case

from .transformer_opcases import CASES


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_op(case):
    ran = check_case(case)
    assert ran["gradcheck"] or not case.gradcheck
    assert ran["torch"] or ran["golden"], f"{case.name}: neither PyTorch nor a golden fixture checked it"
