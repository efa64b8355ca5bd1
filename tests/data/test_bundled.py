"""TinyDigits and TinyTalks as shipped: counts, balance, splits, checksums, reproducible builds."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tinytorch.data import datasets as D

REPO = Path(__file__).resolve().parents[2]
FILES = REPO / "tinytorch" / "data" / "files"


def recorded_sums() -> dict[str, str]:
    out = {}
    for line in (REPO / "scripts" / "data" / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        out[name] = digest
    return out


def test_shipped_checksums_match_the_build_record_and_the_loader():
    sums = recorded_sums()
    assert set(sums) == {"tinydigits.npz", "tinytalks.json.gz"}
    for name, digest in sums.items():
        assert D._digest(FILES / name) == digest, f"{name} differs from scripts/data/SHA256SUMS"
        assert D.BUNDLED_SHA256[name] == digest, f"the loader's checksum of {name} is out of date"


def test_only_data_files_and_small_enough():
    names = sorted(p.name for p in FILES.iterdir() if p.name != "__pycache__")
    assert names == ["LICENSE", "tinydigits.md", "tinydigits.npz", "tinytalks.json.gz", "tinytalks.md"], names
    total = sum(p.stat().st_size for p in FILES.iterdir())
    assert total < 50e6, f"bundled data is {total / 1e6:.1f} MB, the budget is 50 MB"


def test_tinydigits_counts_balance_and_split():
    (xtr, ytr), (xte, yte) = D.load_tinydigits()
    assert xtr.shape == (4000, 28, 28) and xte.shape == (1000, 28, 28)
    assert xtr.dtype == np.uint8 and ytr.dtype == np.int64 and yte.dtype == np.int64
    assert np.bincount(ytr, minlength=10).tolist() == [400] * 10
    assert np.bincount(yte, minlength=10).tolist() == [100] * 10
    assert xtr.max() == 255 and xtr.min() == 0
    # real digits: ink covers roughly 10-25% of MNIST's pixels, and no two images are equal
    ink = (xtr > 128).mean()
    assert 0.05 < ink < 0.3, ink
    assert len({img.tobytes() for img in xtr}) == 4000


def test_tinydigits_matches_mnist_pixels(data_dir):
    (xtr, ytr), (xte, yte) = D.load_tinydigits()
    (mx, my), (mxt, myt) = D.load_mnist(root=data_dir)
    with np.load(FILES / "tinydigits.npz") as z:
        itr, ite = z["mnist_index_train"], z["mnist_index_test"]
    np.testing.assert_array_equal(xtr, mx[itr])
    np.testing.assert_array_equal(ytr, my[itr])
    np.testing.assert_array_equal(xte, mxt[ite])
    np.testing.assert_array_equal(yte, myt[ite])


def test_tinydigits_build_is_reproducible(data_dir, tmp_path):
    script = REPO / "scripts" / "data" / "build_tinydigits.py"
    subprocess.run([sys.executable, str(script), str(data_dir), "--out", str(tmp_path)], check=True,
                   capture_output=True, timeout=300)
    assert (tmp_path / "tinydigits.npz").read_bytes() == (FILES / "tinydigits.npz").read_bytes()


def test_tinytalks_build_is_reproducible(tmp_path):
    script = REPO / "scripts" / "data" / "build_tinytalks.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True, capture_output=True,
                   timeout=300)
    assert (tmp_path / "tinytalks.json.gz").read_bytes() == (FILES / "tinytalks.json.gz").read_bytes()


def test_tinytalks_splits_levels_and_answers():
    (qtr, atr), (qva, ava), (qte, ate) = D.load_tinytalks()
    total = len(qtr) + len(qva) + len(qte)
    assert 2800 <= total <= 3200, total
    assert len(qva) >= 250 and len(qte) >= 250
    assert not (set(qtr) & set(qte) or set(qtr) & set(qva) or set(qva) & set(qte)), "splits share questions"
    assert len(set(qtr)) == len(qtr)
    splits = D.load_tinytalks(with_levels=True)
    for q, a, lv in splits:
        assert len(q) == len(a) == len(lv)
        counts = Counter(lv.tolist())
        assert sorted(counts) == [1, 2, 3, 4, 5]
        assert min(counts.values()) >= 0.1 * len(lv)  # every level is well represented
    assert max(len(a) for a in atr) <= 30 and max(len(q) for q in qtr) <= 80  # short, for small models
    assert all(D.check_tinytalks_answer(a, a) for a in ate)


def test_tinytalks_test_questions_recombine_what_training_shows():
    train = D.tinytalks_records("train")
    seen = {(r["family"], r["a"]) for r in train}
    for split in ("val", "test"):
        recs = D.tinytalks_records(split)
        unseen = [r for r in recs if (r["family"], r["a"]) not in seen]
        assert not unseen, f"{split}: answers never seen in training for their family: {unseen[:3]}"


def test_tinytalks_answers_are_correct_by_rule():
    """Recompute the answers of rule-based families independently of the build script."""
    import re

    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    checked = 0
    for split in ("train", "val", "test"):
        for r in D.tinytalks_records(split):
            q, a, fam = r["q"], r["a"], r["family"]
            nums = [int(n) for n in re.findall(r"\d+", q)]
            expected = {
                "add": lambda: nums[0] + nums[1],
                "multiply": lambda: nums[0] * nums[1],
                "subtract": lambda: nums[1] - nums[0] if q.startswith("Take") else nums[0] - nums[1],
                "next_number": lambda: nums[0] + 1,
                "previous_number": lambda: nums[0] - 1,
                "bigger": lambda: max(nums),
                "smaller": lambda: min(nums),
                "gets_more": lambda: nums[0] + nums[1],
                "gives_away": lambda: nums[0] - nums[1],
                "parity": lambda: "even" if nums[0] % 2 == 0 else "odd",
            }.get(fam)
            if expected is not None:
                assert str(expected()) == a, (q, a)
                checked += 1
            elif fam == "next_day":
                d = next(d for d in days if d in q)
                assert a == days[(days.index(d) + 1) % 7], (q, a)
                checked += 1
            elif fam in ("intro", "farewell", "thanks"):
                name = a.rstrip("!").split()[-1].strip(",")
                assert name in q, (q, a)
                checked += 1
    assert checked > 1500


def test_check_tinytalks_answer():
    assert D.check_tinytalks_answer("hello,  ada", "Hello, Ada!")
    assert D.check_tinytalks_answer(" 12 ", "12")
    assert not D.check_tinytalks_answer("13", "12")
    assert not D.check_tinytalks_answer("", "12")
    assert D.normalize_answer("You are welcome, Bo!") == "you are welcome bo"


def test_tinytalks_file_format():
    with gzip.open(FILES / "tinytalks.json.gz", "rt") as f:
        doc = json.load(f)
    assert doc["name"] == "TinyTalks" and set(doc["levels"]) == {"1", "2", "3", "4", "5"}
    assert set(doc["train"][0]) == {"q", "a", "level", "family"}


def test_corrupt_bundled_file_is_reported(monkeypatch):
    monkeypatch.setitem(D.BUNDLED_SHA256, "tinydigits.npz", "0" * 64)
    with pytest.raises(D.ChecksumError, match="corrupt"):
        D.load_tinydigits()


def test_tinytalks_records_rejects_unknown_split():
    with pytest.raises(ValueError, match="validation"):
        D.tinytalks_records("validation")
