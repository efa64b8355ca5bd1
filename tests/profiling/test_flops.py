"""FLOP counts of tinytorch.profiling agree with PyTorch's torch.utils.flop_counter within 1%
on an MLP, milestone 4's CIFAR CNN and milestone 5's GPT, forward and backward: live when torch
is installed, against the golden counts made from torch (golden_flops.json) otherwise."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from profiling.flop_models import tiny_models

GOLDEN = json.loads(Path(__file__).with_name("golden_flops.json").read_text())


def _ours():
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.tensor import Tensor
    from tinytorch.profiling.profiler import Profiler, count_flops

    out = {}
    for name, (model, x, y) in tiny_models().items():
        fwd = count_flops(model, x).flops
        with Profiler(model, memory=False) as prof:
            logits = model(x)
            loss = CrossEntropyLoss()(logits.reshape(-1, logits.shape[-1]), Tensor(y))
            loss.backward()
        bwd = sum(r["flops"] for r in prof.op_table() if r["phase"] == "backward")
        again = sum(r["flops"] for r in prof.op_table() if r["phase"] == "forward")
        assert again == fwd, f"{name}: profile and count_flops disagree: {again} vs {fwd}"
        out[name] = {"forward": fwd, "backward": bwd}
    return out


@pytest.fixture(scope="module")
def ours():
    return _ours()


@pytest.mark.parametrize("name", ["mlp", "cnn", "gpt"])
@pytest.mark.parametrize("phase", ["forward", "backward"])
def test_flops_match_golden_torch_counts(ours, name, phase):
    want, got = GOLDEN[name][phase], ours[name][phase]
    assert abs(got - want) <= 0.01 * want, f"{name} {phase}: ours {got:,} vs PyTorch {want:,}"


@pytest.mark.torch
def test_flops_match_live_torch(ours):
    pytest.importorskip("torch")
    from profiling.flop_models import torch_counts

    theirs = torch_counts()
    for name in ("mlp", "cnn", "gpt"):
        for phase in ("forward", "backward"):
            want, got = theirs[name][phase], ours[name][phase]
            assert abs(got - want) <= 0.01 * want, f"{name} {phase}: ours {got:,} vs torch {want:,}"
    assert theirs == {k: v for k, v in GOLDEN.items() if not k.startswith("_")}, \
        "golden_flops.json is stale: run python tests/profiling/make_golden_flops.py"


def test_macs_are_half_the_flops_and_attention_is_counted():
    import numpy as np

    from tinytorch.models.transformer import GPT
    from tinytorch.profiling.profiler import attention_flops, count_flops

    gpt = GPT(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8, seed=0)
    fc = count_flops(gpt, np.zeros((3, 8), dtype=np.int64))
    assert fc.macs * 2 == fc.flops
    assert fc.by_op["ScaledDotProductAttention"] == attention_flops((3, 2, 8, 4), (3, 2, 8, 4), (3, 2, 8, 4))
    assert "LayerNormFunction" in fc.other and "LayerNormFunction" not in fc.by_op


@pytest.mark.torch
def test_torch_counter_misses_fused_cpu_attention():
    """Lesson 14 states this: PyTorch's counter reports 0 FLOPs for the fused CPU attention."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    q = torch.randn(2, 4, 16, 8)
    with FlopCounterMode(display=False) as fc:
        torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
    assert fc.get_total_flops() == 0, "torch now counts fused CPU attention: update modules/14_profiling"
