"""Integration: module 12's attention as the package exports it, wired to modules 01-06
(tinytorch only)."""
import numpy as np

from tinytorch.core.attention import MultiHeadAttention, causal_mask, scaled_dot_product_attention
from tinytorch.core.layers import Linear
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import Adam
from tinytorch.core.tensor import Tensor
from tinytorch.text.embeddings import Embedding


def test_attention_learns_to_fetch_the_first_token():
    """Every position must output the id of token 0: only attention can move it there."""
    V, T, C = 6, 5, 16
    rng = np.random.default_rng(0)
    emb, pos = Embedding(V, C, seed=1), Embedding(T, C, seed=2)
    mha, head = MultiHeadAttention(C, 2, seed=3), Linear(C, V, seed=4)
    params = emb.parameters() + pos.parameters() + mha.parameters() + head.parameters()
    opt, lf = Adam(params, lr=1e-2), CrossEntropyLoss()
    losses = []
    for _ in range(120):
        ids = rng.integers(0, V, (16, T))                                   # (B, T)
        x = emb(ids) + pos(np.arange(T))                                    # (B, T, C)
        logits = head(mha(x, mask=causal_mask(T)).reshape(16 * T, C))       # (B*T, V)
        loss = lf(logits, np.repeat(ids[:, 0], T))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.25 * np.mean(losses[:10]), (losses[:3], losses[-3:])


def test_fused_attention_grad_flows_through_projections():
    x = Tensor(np.random.default_rng(1).standard_normal((2, 4, 8)).astype(np.float32), requires_grad=True)
    lin = Linear(8, 8, seed=0)
    q = lin(x.reshape(8, 8)).reshape(2, 4, 8)
    out = scaled_dot_product_attention(q, x, x, mask=causal_mask(4))
    out.sum().backward()
    assert lin.weight.grad is not None and lin.weight.grad.shape == (8, 8)
    assert x.grad.data.dtype == np.float32
