"""Module 13 (tinytorch.models.transformer): GPT structure, causality, generation, float32
training and learning; a differential test of a whole GPT forward+backward against PyTorch."""
from __future__ import annotations

import os

import numpy as np
import pytest

from tinytorch.core.autograd import no_grad
from tinytorch.core.tensor import Tensor
from tinytorch.models.transformer import GPT, MLP, LayerNorm, TransformerBlock, generate


def _param_formula(V, bs, L, C):
    return V * C + bs * C + L * (12 * C * C + 13 * C) + 2 * C + C * V


@pytest.mark.parametrize("V,bs,L,H,C", [(65, 64, 4, 4, 128), (11, 8, 2, 2, 16), (5, 3, 1, 1, 4)])
def test_parameter_count_formula(V, bs, L, H, C):
    assert sum(p.size for p in GPT(V, bs, L, H, C, seed=0).parameters()) == _param_formula(V, bs, L, C)


def test_milestone_config_has_818k_parameters():
    """The lesson's worked number for the Shakespeare model."""
    assert sum(p.size for p in GPT(65, 64, 4, 4, 128, seed=0).parameters()) == 818_176


def test_gpt_is_causal_at_every_position():
    m = GPT(9, 8, 2, 2, 8, seed=1)
    idx = np.random.default_rng(0).integers(0, 9, (2, 8))
    with no_grad():
        base = m(idx).data
        for t in range(7):
            changed = idx.copy()
            changed[:, t + 1:] = (changed[:, t + 1:] + 3) % 9
            np.testing.assert_allclose(m(changed).data[:, : t + 1], base[:, : t + 1], atol=1e-5)


def test_gpt_gradient_of_early_logit_ignores_later_tokens():
    m = GPT(7, 6, 1, 1, 8, seed=2)
    idx = np.array([[1, 2, 3, 4, 5, 6]])
    logits = m(idx)
    logits[:, 2].sum().backward()
    g = m.tok_emb.weight.grad.data
    assert np.all(g[[4, 5, 6]] == 0), "ids only at positions 3.. must get no gradient from logit 2"
    assert np.any(g[[1, 2, 3]] != 0)


def test_same_seed_same_model_different_seed_different_model():
    a, b, c = (GPT(11, 8, 2, 2, 16, seed=s) for s in (3, 3, 4))
    for (n1, p1), (_, p2) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(p1.data, p2.data), n1
    assert not np.array_equal(a.tok_emb.weight.data, c.tok_emb.weight.data)


def test_gpt2_init_statistics():
    m = GPT(50, 16, 4, 4, 64, seed=0)
    W = m.blocks[0].mlp.fc.weight.data
    assert abs(W.std() - 0.02) < 0.002, W.std()
    P = m.blocks[0].attn.out_proj.weight.data
    assert abs(P.std() - 0.02 / np.sqrt(8)) < 0.001, P.std()
    assert np.all(m.blocks[0].mlp.fc.bias.data == 0)
    assert np.all(m.ln_f.weight.data == 1) and np.all(m.ln_f.bias.data == 0)


def test_too_long_and_bad_shape_inputs_raise():
    m = GPT(5, 4, 1, 1, 4, seed=0)
    with pytest.raises(ValueError, match="block_size 4"):
        m(np.zeros((1, 5), dtype=np.int64))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        m(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="LayerNorm expected last dim 4"):
        LayerNorm(4)(Tensor(np.ones((2, 3), dtype=np.float32)))


def test_generate_shapes_seed_greedy_topk_and_cropping():
    m = GPT(13, 4, 1, 2, 8, seed=5)
    start = np.array([[1, 2, 3]])
    out = m.generate(start, 10, temperature=1.0, seed=0)           # longer than block_size: crops
    assert out.shape == (1, 13) and out.dtype == np.int64
    assert np.array_equal(out, m.generate(start, 10, temperature=1.0, seed=0))
    assert not np.array_equal(out, m.generate(start, 10, temperature=1.0, seed=1))
    greedy = m.generate(start, 10, temperature=0)
    assert np.array_equal(greedy, m.generate(start, 10, temperature=1.0, top_k=1, seed=7))
    assert np.array_equal(greedy, generate(m, Tensor(start), 10, temperature=0))
    one_d = m.generate(np.array([1, 2]), 2, temperature=0)
    assert one_d.shape == (1, 4)
    with pytest.raises(ValueError, match="temperature"):
        m.generate(start, 1, temperature=-1)


def test_top_k_restricts_samples_to_k_most_likely():
    m = GPT(20, 4, 1, 1, 8, seed=6)
    start = np.zeros((200, 1), dtype=np.int64)
    with no_grad():
        probs = m(start[:1]).data[0, -1]
    top3 = set(np.argsort(probs)[-3:].tolist())
    out = m.generate(start, 1, temperature=2.0, top_k=3, seed=0)
    assert set(out[:, 1].tolist()) <= top3
    assert len(set(out[:, 1].tolist())) > 1, "temperature 2 over 200 rows should hit more than one token"


def test_sampling_follows_the_distribution():
    """With temperature 1 the empirical next-token frequencies match softmax(logits)."""
    m = GPT(4, 2, 1, 1, 4, seed=7)
    for p in m.lm_head.parameters():
        p.data *= 50                                                  # make the distribution non-uniform
    start = np.zeros((4000, 1), dtype=np.int64)
    with no_grad():
        z = m(start[:1]).data[0, -1].astype(np.float64)
    p = np.exp(z - z.max())
    p /= p.sum()
    out = m.generate(start, 1, temperature=1.0, seed=3)[:, 1]
    freq = np.bincount(out, minlength=4) / len(out)
    np.testing.assert_allclose(freq, p, atol=0.03)


def test_training_step_is_float32_everywhere():
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import AdamW
    m = GPT(10, 6, 2, 2, 8, seed=0)
    opt = AdamW(m.parameters(), lr=1e-3)
    idx = np.random.default_rng(0).integers(0, 10, (3, 6))
    logits = m(idx)
    assert logits.data.dtype == np.float32
    loss = CrossEntropyLoss()(logits.reshape(18, 10), np.roll(idx, -1, axis=1).reshape(18))
    assert loss.data.dtype == np.float32
    loss.backward()
    opt.step()
    for name, p in m.named_parameters():
        assert p.data.dtype == np.float32, f"{name} became {p.data.dtype}"
        assert p.grad is not None and p.grad.data.dtype == np.float32, f"{name} grad"


def test_gpt_learns_to_copy_a_pattern():
    """A tiny GPT fits next-token prediction on a short periodic text and then continues it."""
    from tinytorch.core.losses import CrossEntropyLoss
    from tinytorch.core.optimizers import Adam
    seq = np.array([3, 1, 4, 1, 5, 9, 2, 6] * 3)          # V = 10, period 8 ("1" is ambiguous alone)
    m = GPT(10, 8, 2, 2, 16, seed=0)
    opt = Adam(m.parameters(), lr=1e-2)
    x = np.stack([seq[i:i + 8] for i in range(8)])
    y = np.stack([seq[i + 1:i + 9] for i in range(8)])
    lf = CrossEntropyLoss()
    for _ in range(80):
        loss = lf(m(x).reshape(64, 10), y.reshape(64))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05, loss.item()
    out = m.generate(np.array([[3, 1, 4]]), 8, temperature=0)[0].tolist()
    assert out == [3, 1, 4, 1, 5, 9, 2, 6, 3, 1, 4], out


def test_block_and_mlp_shapes():
    assert MLP(6, hidden=10, seed=0)(Tensor(np.ones((2, 3, 6), dtype=np.float32))).shape == (2, 3, 6)
    blk = TransformerBlock(8, 4, seed=0)
    assert blk(Tensor(np.ones((1, 5, 8), dtype=np.float32))).shape == (1, 5, 8)


# ----------------------------------------------------------------------------- PyTorch differential
def _torch_gpt_forward(m, idx):
    """The same GPT written in PyTorch with tinytorch's weights; returns (logits, {name: tensor})."""
    import torch
    import torch.nn.functional as F
    P = {n: torch.tensor(p.data.astype(np.float64), requires_grad=True) for n, p in m.named_parameters()}
    ids = torch.from_numpy(idx)
    B, T = idx.shape
    C, H = m.n_embd, m.n_head
    x = P["tok_emb.weight"][ids] + P["pos_emb.weight"][:T]
    for i in range(m.n_layer):
        g = lambda s: P[f"blocks.{i}.{s}"]
        h = F.layer_norm(x, (C,), g("ln1.weight"), g("ln1.bias"), eps=1e-5)
        split = lambda t: t.reshape(B, T, H, C // H).transpose(1, 2)
        q = split(h @ g("attn.q_proj.weight") + g("attn.q_proj.bias"))
        k = split(h @ g("attn.k_proj.weight") + g("attn.k_proj.bias"))
        v = split(h @ g("attn.v_proj.weight") + g("attn.v_proj.bias"))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + y @ g("attn.out_proj.weight") + g("attn.out_proj.bias")
        h = F.layer_norm(x, (C,), g("ln2.weight"), g("ln2.bias"), eps=1e-5)
        h = F.gelu(h @ g("mlp.fc.weight") + g("mlp.fc.bias"), approximate="tanh")
        x = x + h @ g("mlp.proj.weight") + g("mlp.proj.bias")
    x = F.layer_norm(x, (C,), P["ln_f.weight"], P["ln_f.bias"], eps=1e-5)
    return x @ P["lm_head.weight"], P


def test_whole_gpt_matches_pytorch_forward_and_backward():
    if os.environ.get("OPCHECK_NO_TORCH"):
        pytest.skip("OPCHECK_NO_TORCH=1: the op-level golden fixtures cover this")
    torch = pytest.importorskip("torch", reason="PyTorch not installed: the op-level golden fixtures cover this")
    m = GPT(12, 6, 2, 2, 8, seed=3)
    for p in m.parameters():          # non-trivial LayerNorm gains and biases
        p.data += np.random.default_rng(p.size).normal(0, 0.05, p.shape).astype(np.float32)
    idx = np.random.default_rng(0).integers(0, 12, (2, 6))
    tgt = np.random.default_rng(1).integers(0, 12, (2, 6))
    ref_logits, P = _torch_gpt_forward(m, idx)
    ref_loss = torch.nn.functional.cross_entropy(ref_logits.reshape(12, 12), torch.from_numpy(tgt.reshape(12)))
    ref_loss.backward()
    from tinytorch.core.losses import CrossEntropyLoss
    logits = m(idx)
    np.testing.assert_allclose(logits.data, ref_logits.detach().numpy(), rtol=1e-4, atol=1e-5)
    loss = CrossEntropyLoss()(logits.reshape(12, 12), tgt.reshape(12))
    np.testing.assert_allclose(loss.item(), ref_loss.item(), rtol=1e-5)
    loss.backward()
    for name, p in m.named_parameters():
        np.testing.assert_allclose(p.grad.data, P[name].grad.numpy(), rtol=2e-3, atol=2e-6,
                                   err_msg=f"gradient of {name}")
