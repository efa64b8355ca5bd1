"""Every op case of every table (``tests/**/*opcases*.py``) checked by the opcheck kit: finite
differences, the committed golden fixture (always), live PyTorch (when installed) and a float32
run. Where a new op case goes: tests/opcheck/README.md."""
from __future__ import annotations

import pytest

from opcheck import all_cases, check_case, golden_path, torch_available

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_op(case):
    if case.torch_fn is not None:
        assert golden_path(case.name).is_file(), (
            f"{case.name}: no golden fixture {golden_path(case.name).name}; run scripts/make_golden.py "
            "where torch is installed (the committed fixtures alone must verify every op)")
    ran = check_case(case)
    assert ran["gradcheck"] == case.gradcheck, ran
    assert ran["float32"] == case.float32, ran
    if case.torch_fn is not None:
        assert ran["golden"], ran
        assert ran["torch"] == torch_available(), ran
