"""Milestone 6 (MLPerf era) in small pieces: the three generation paths (uncached, KV cache,
packed KV cache) give the same answers and tokens,
and a run without CIFAR-10 says what it skipped instead of reporting numbers it did not measure.
The full run (timings) is a milestone, not a test: milestones/06_mlperf/RESULTS.md."""
from __future__ import annotations

from pathlib import Path

from tito.manifest import load_manifest
from tito.milestones import load_milestone

ROOT = Path(__file__).resolve().parents[2]


def _mlperf():
    return load_milestone("mlperf", load_manifest(ROOT))


def test_cached_packed_and_plain_generation_answer_the_same():
    m6 = _mlperf()
    from tinytorch.core.autograd import no_grad
    from tinytorch.models.pretrained import load_pretrained
    model = load_pretrained("tinytalks_gpt")
    questions = ["What is 2 plus 2?", "What color is the sky?", "What is 3 plus 4?", "Hi"]
    groups = m6.prompts_by_length(model, questions)
    assert sorted(i for _, rows in groups for i in rows) == [0, 1, 2, 3]
    assert all(idx.shape[0] == len(rows) for idx, rows in groups)
    gens = m6.generators(model)
    assert sorted(gens) == ["KV cache", "generate", "packed"]
    with no_grad():
        answers = {name: m6.answer_all(model, groups, len(questions), 8, g) for name, g in gens.items()}
        idx = groups[0][0]
        tokens = {name: g(idx, model.block_size - idx.shape[1]) for name, g in gens.items()}   # to the end
    assert answers["KV cache"] == answers["generate"] == answers["packed"]
    assert all(isinstance(a, str) for a in answers["packed"])
    for name in ("KV cache", "packed"):
        assert (tokens[name] == tokens["generate"]).all(), name


def test_no_cifar_means_skipped_rows_not_numbers(monkeypatch, capsys):
    m6 = _mlperf()
    monkeypatch.delenv("TINYTORCH_DATA", raising=False)
    assert m6.main(["--quick", "--skip-generation"]) == 0          # quick: the tour goes on
    out = capsys.readouterr().out
    assert "CIFAR-10 skipped" in out and "REACHED" not in out
    for row in ("accuracy", "single-stream p90 latency", "size on disk"):
        assert f"| {row} | skipped: no CIFAR-10" in out, row
    assert m6.main(["--skip-generation"]) == 2                     # full mode: an error
    rows = []
    m6.skipped(rows)
    assert [r["met"] for r in rows] == [None] * 3 and all(r["value"] is None for r in rows)
    assert m6.TARGETS == {"speedup": 10.0, "size_ratio": 4.0, "p90_ms": 100.0, "accuracy_drop_points": 2.0}


def test_the_pruned_cnn_is_fine_tuned_with_its_masks_held():
    """prune_and_finetune: half the weights are zero before and after the fine-tuning steps, the
    others moved, and the milestone-4 model itself is untouched."""
    import numpy as np

    from tinytorch.models.pretrained import load_pretrained
    from tinytorch.optimization.compression import sparsity_report
    m6 = _mlperf()
    fp32 = load_pretrained("cifar10_cnn")
    before = {k: v.copy() for k, v in fp32.state_dict().items()}
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16, 3, 32, 32), dtype=np.uint8)
    y = rng.integers(0, 10, 16)
    once = m6.prune_and_finetune(fp32, x, y, steps=0)
    tuned = m6.prune_and_finetune(fp32, x, y, steps=2, batch=8)
    assert abs(sparsity_report(tuned)[-1]["sparsity"] - 0.5) < 0.01
    for (name, a), b in zip(once.state_dict().items(), tuned.state_dict().values()):
        if name.endswith("weight") and a.ndim > 1:
            assert np.array_equal(a == 0, b == 0), f"{name}: the pruned weights moved"
    assert any(not np.array_equal(a, b) for a, b in zip(once.state_dict().values(), tuned.state_dict().values()))
    assert all(np.array_equal(before[k], v) for k, v in fp32.state_dict().items())
    assert tuned.training is False
