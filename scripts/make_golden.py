"""Write golden fixtures tests/golden/<name>.npz from PyTorch for the opcheck kit.

Usage (torch must be installed; the fixtures are then committed so the suite runs without it):
    python scripts/make_golden.py                      # every tests/**/*opcases*.py
    python scripts/make_golden.py tests/opcheck/core_opcases.py   # one file of cases
    python scripts/make_golden.py --check              # only report stale or missing fixtures

A cases file defines ``CASES``: a list of ``opcheck.OpCase`` with a ``torch_fn``. Each fixture
holds the inputs, the float64 forward output and the gradient of every float input for the
projection ``sum(out * R)`` (R seeded from the case name).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from opcheck import GOLDEN_DIR, golden_path, reference_with_torch, torch_available  # noqa: E402


def load_cases(path: Path):
    spec = importlib.util.spec_from_file_location(f"_opcases_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(getattr(module, "CASES", []))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="cases files (default: tests/**/*opcases*.py)")
    parser.add_argument("--check", action="store_true", help="report stale/missing fixtures, write nothing")
    args = parser.parse_args(argv)
    if not torch_available():
        print("torch is not installed: golden fixtures are made from PyTorch", file=sys.stderr)
        return 2
    files = args.files or sorted((ROOT / "tests").rglob("*opcases*.py"))
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    written = stale = 0
    for f in files:
        for case in load_cases(f):
            if case.torch_fn is None:
                continue
            ref = reference_with_torch(case)
            path = golden_path(case.name)
            if args.check:
                ok = path.exists()
                if ok:
                    with np.load(path) as z:
                        ok = set(z.files) == set(ref) and all(
                            z[k].shape == ref[k].shape and np.allclose(z[k], ref[k], rtol=1e-12, atol=1e-12)
                            for k in ref)
                if not ok:
                    stale += 1
                    print(f"stale or missing: {path.relative_to(ROOT)}")
                continue
            np.savez_compressed(path, **ref)
            written += 1
    if args.check:
        print(f"{stale} stale or missing fixtures")
        return 1 if stale else 0
    total = sum(p.stat().st_size for p in GOLDEN_DIR.glob("*.npz"))
    print(f"wrote {written} fixtures to {GOLDEN_DIR.relative_to(ROOT)} ({total / 1024:.0f} KiB in total)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
