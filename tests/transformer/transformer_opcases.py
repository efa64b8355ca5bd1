"""Op cases of modules 12-13 for the opcheck kit (tests/opcheck): finite differences, PyTorch
(live, or the golden fixtures tests/golden/<name>.npz written by scripts/make_golden.py) and a
float32 run, for fused attention (plain, causal, cross, padded), multi-head attention, fused
LayerNorm, fused GELU and a whole pre-norm transformer block.

Weights follow tinytorch's Linear convention y = x @ W + b with W of shape (in, out).
"""
from __future__ import annotations

import numpy as np

from opcheck import OpCase


def _rng(seed):
    return np.random.default_rng(seed)


def _n(seed, *shape, scale=1.0):
    return _rng(seed).standard_normal(shape) * scale


# ----------------------------------------------------------------------------- tinytorch side
def _sdpa(q, k, v, mask=None):
    from tinytorch.core.attention import scaled_dot_product_attention
    return scaled_dot_product_attention(q, k, v, mask=None if mask is None else mask.data)


def _set_linear(lin, W, b):
    lin.weight = W
    lin.bias = b


def _mha(x, Wq, bq, Wk, bk, Wv, bv, Wo, bo, heads=2, causal=True):
    from tinytorch.core.attention import MultiHeadAttention, causal_mask
    m = MultiHeadAttention(x.shape[-1], heads, seed=0)
    for lin, W, b in ((m.q_proj, Wq, bq), (m.k_proj, Wk, bk), (m.v_proj, Wv, bv), (m.out_proj, Wo, bo)):
        _set_linear(lin, W, b)
    return m(x, mask=causal_mask(x.shape[1]) if causal else None)


def _layernorm(x, g, b):
    from tinytorch.models.transformer import LayerNormFunction
    return LayerNormFunction.apply(x, g, b, eps=1e-5)


def _gelu(x):
    from tinytorch.core.autograd import GELUFn
    return GELUFn.apply(x)


def _block(x, g1, b1, Wq, bq, Wk, bk, Wv, bv, Wo, bo, g2, b2, W1, c1, W2, c2):
    from tinytorch.models.transformer import TransformerBlock
    blk = TransformerBlock(x.shape[-1], 2, seed=0)
    blk.ln1.weight, blk.ln1.bias, blk.ln2.weight, blk.ln2.bias = g1, b1, g2, b2
    for lin, W, b in ((blk.attn.q_proj, Wq, bq), (blk.attn.k_proj, Wk, bk), (blk.attn.v_proj, Wv, bv),
                      (blk.attn.out_proj, Wo, bo), (blk.mlp.fc, W1, c1), (blk.mlp.proj, W2, c2)):
        _set_linear(lin, W, b)
    return blk(x)


# ----------------------------------------------------------------------------- PyTorch side
def _t_sdpa(q, k, v, mask=None):
    import torch.nn.functional as F
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _t_mha(x, Wq, bq, Wk, bk, Wv, bv, Wo, bo, heads=2, causal=True):
    import torch.nn.functional as F
    B, T, C = x.shape
    D = C // heads
    split = lambda t: t.reshape(B, T, heads, D).transpose(1, 2)
    q, k, v = split(x @ Wq + bq), split(x @ Wk + bk), split(x @ Wv + bv)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return y.transpose(1, 2).reshape(B, T, C) @ Wo + bo


def _t_layernorm(x, g, b):
    import torch.nn.functional as F
    return F.layer_norm(x, (x.shape[-1],), g, b, eps=1e-5)


def _t_gelu(x):
    import torch.nn.functional as F
    return F.gelu(x, approximate="tanh")


def _t_block(x, g1, b1, Wq, bq, Wk, bk, Wv, bv, Wo, bo, g2, b2, W1, c1, W2, c2):
    import torch.nn.functional as F
    C = x.shape[-1]
    h = x + _t_mha(F.layer_norm(x, (C,), g1, b1, eps=1e-5), Wq, bq, Wk, bk, Wv, bv, Wo, bo)
    return h + F.gelu(F.layer_norm(h, (C,), g2, b2, eps=1e-5) @ W1 + c1, approximate="tanh") @ W2 + c2


def _lin(seed, i, o):
    return [_n(seed, i, o, scale=1 / np.sqrt(i)), _n(seed + 1, o, scale=0.1)]


_causal = np.tril(np.ones((4, 4), dtype=bool))
_pad = np.ones((2, 1, 3, 5), dtype=bool)
_pad[0, :, :, 3:] = False                     # first sequence: last two keys are padding
_mha_w = sum((_lin(20 + 2 * i, 4, 4) for i in range(4)), [])
_C = 4
_block_w = ([1 + _n(40, _C, scale=0.1), _n(41, _C, scale=0.1)] + sum((_lin(50 + 2 * i, _C, _C) for i in range(4)), [])
            + [1 + _n(60, _C, scale=0.1), _n(61, _C, scale=0.1)] + _lin(62, _C, 4 * _C) + _lin(64, 4 * _C, _C))

CASES = [
    OpCase("attn_sdpa_plain", _sdpa, [_n(1, 2, 3, 2), _n(2, 2, 3, 2), _n(3, 2, 3, 2)], _t_sdpa),
    OpCase("attn_sdpa_causal", _sdpa, [_n(4, 1, 2, 4, 3), _n(5, 1, 2, 4, 3), _n(6, 1, 2, 4, 3), _causal],
           _t_sdpa),
    OpCase("attn_sdpa_cross", _sdpa, [_n(7, 2, 3, 4), _n(8, 2, 5, 4), _n(9, 2, 5, 2)], _t_sdpa),
    OpCase("attn_sdpa_padding_mask", _sdpa, [_n(10, 2, 1, 3, 2), _n(11, 2, 1, 5, 2), _n(12, 2, 1, 5, 3), _pad],
           _t_sdpa),
    OpCase("attn_sdpa_large_scores", _sdpa, [_n(13, 1, 3, 2, scale=30), _n(14, 1, 3, 2, scale=30),
                                             _n(15, 1, 3, 2)], _t_sdpa, gradcheck=False),
    OpCase("attn_mha_causal", _mha, [_n(30, 2, 3, 4)] + _mha_w, _t_mha),
    OpCase("attn_mha_full", lambda *a: _mha(*a, causal=False), [_n(31, 1, 4, 4)] + _mha_w,
           lambda *a: _t_mha(*a, causal=False)),
    OpCase("tf_layernorm", _layernorm, [_n(70, 2, 3, 5, scale=3) + 1, 1 + _n(71, 5, scale=0.2), _n(72, 5)],
           _t_layernorm),
    OpCase("tf_layernorm_tiny_var", _layernorm, [1 + _n(73, 2, 6, scale=1e-3), 1 + _n(74, 6, scale=0.2),
                                                 _n(75, 6)], _t_layernorm, gradcheck=False),
    OpCase("tf_gelu", _gelu, [_n(80, 3, 7, scale=2.5)], _t_gelu),
    OpCase("tf_block", _block, [_n(90, 2, 3, _C)] + _block_w, _t_block, f32_rtol=2e-3, f32_atol=2e-4),
]
