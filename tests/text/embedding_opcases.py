"""Op cases of module 11 for the opcheck kit (tests/opcheck): finite differences, PyTorch
(live or the golden fixtures tests/golden/<name>.npz written by scripts/make_golden.py) and a
float32 run, for the embedding lookup (repeated ids, padding_idx, any id shape) and both
positional encodings."""
from __future__ import annotations

import numpy as np

from opcheck import OpCase


def _rng(seed):
    return np.random.default_rng(seed)


def _ids(seed, V, shape):
    ids = _rng(seed).integers(0, V, size=shape).astype(np.int64)
    flat = ids.reshape(-1)
    flat[: min(3, flat.size)] = flat[0]                      # repeated ids, always
    return ids


def _lookup(w, ids, padding_idx=None):
    from tinytorch.text.embeddings import EmbeddingLookup
    return EmbeddingLookup.apply(w, ids, padding_idx=padding_idx)


def _layer(w, ids, padding_idx=None):
    from tinytorch.text.embeddings import Embedding
    emb = Embedding(w.shape[0], w.shape[1], padding_idx=padding_idx)
    emb.weight = w
    return emb(ids)


def _learned_pos(x, w):
    from tinytorch.text.embeddings import PositionalEncoding
    pe = PositionalEncoding(w.shape[0], w.shape[1])
    pe.weight = w
    return pe(x)


def _sinusoidal(x):
    from tinytorch.text.embeddings import SinusoidalPositionalEncoding
    return SinusoidalPositionalEncoding(16, x.shape[-1])(x)


def _torch_embedding(padding_idx=None):
    def f(w, ids):
        import torch
        return torch.nn.functional.embedding(ids, w, padding_idx=padding_idx)
    return f


def _torch_learned_pos(x, w):
    return x + w[: x.shape[-2]]


def _torch_sinusoidal(x):
    import torch
    T, d = x.shape[-2], x.shape[-1]
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    i = torch.arange(d, dtype=torch.float64)[None, :]
    angle = pos / torch.pow(torch.tensor(10000.0, dtype=torch.float64), 2 * torch.floor(i / 2) / d)
    table = torch.where(i.long() % 2 == 0, torch.sin(angle), torch.cos(angle))
    return x + table.to(x.dtype)


CASES = [
    OpCase("embedding_lookup_repeat", _lookup, [_rng(0).standard_normal((7, 3)), _ids(1, 7, (2, 5))],
           _torch_embedding()),
    OpCase("embedding_lookup_3d_ids", _lookup, [_rng(2).standard_normal((10, 4)), _ids(3, 10, (2, 3, 4))],
           _torch_embedding()),
    OpCase("embedding_lookup_one_id", _lookup, [_rng(4).standard_normal((5, 6)), np.array(2)],
           _torch_embedding()),
    OpCase("embedding_padding_idx", lambda w, ids: _lookup(w, ids, padding_idx=0),
           [_rng(5).standard_normal((6, 3)), np.array([[0, 1, 0, 2], [3, 0, 1, 1]])], _torch_embedding(0),
           gradcheck=False),   # padding_idx blocks a gradient that exists: finite differences see it
    OpCase("embedding_padding_idx_unused", lambda w, ids: _lookup(w, ids, padding_idx=5),
           [_rng(11).standard_normal((6, 3)), np.array([[0, 1, 0, 2], [3, 0, 1, 1]])], _torch_embedding(5)),
    OpCase("embedding_layer", lambda w, ids: _layer(w, ids, padding_idx=2),
           [_rng(6).standard_normal((9, 5)), _ids(7, 9, (3, 6))], _torch_embedding(2), gradcheck=False),
    OpCase("positional_learned", _learned_pos,
           [_rng(8).standard_normal((2, 5, 4)), 0.02 * _rng(9).standard_normal((8, 4))], _torch_learned_pos),
    OpCase("positional_sinusoidal", _sinusoidal, [_rng(10).standard_normal((2, 7, 5))], _torch_sinusoidal),
]
