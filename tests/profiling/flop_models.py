"""The three models whose FLOP counts are checked against PyTorch's counter, in tinytorch and
as PyTorch twins. Shared by test_flops.py and make_golden_flops.py (which writes the golden
counts used when torch is not installed)."""
from __future__ import annotations

import numpy as np

MLP_BATCH, CNN_BATCH, GPT_BATCH = 32, 4, 2
GPT_CFG = dict(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)   # milestone 5's Shakespeare GPT


def tiny_models():
    """{name: (model, inputs, targets)} built from tinytorch (the CNN is milestone 4's own)."""
    from tinytorch.core.activations import ReLU
    from tinytorch.core.layers import Linear, Sequential
    from tinytorch.core.tensor import Tensor
    from tinytorch.models.transformer import GPT
    from tito.milestones import load_milestone

    rng = np.random.default_rng(0)
    mlp = Sequential(Linear(784, 256, seed=0), ReLU(), Linear(256, 128, seed=1), ReLU(), Linear(128, 10, seed=2))
    cnn = load_milestone("cnn").cifar_cnn(0)
    gpt = GPT(**GPT_CFG, seed=0)
    return {
        "mlp": (mlp, Tensor(rng.standard_normal((MLP_BATCH, 784)).astype(np.float32)), rng.integers(0, 10, MLP_BATCH)),
        "cnn": (cnn, Tensor(rng.standard_normal((CNN_BATCH, 3, 32, 32)).astype(np.float32)), rng.integers(0, 10, CNN_BATCH)),
        "gpt": (gpt, rng.integers(0, 65, (GPT_BATCH, 64)), rng.integers(0, 65, GPT_BATCH * 64)),
    }


def torch_counts():
    """{name: {"forward": FLOPs, "backward": FLOPs}} from torch.utils.flop_counter on the twins."""
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    cnn = nn.Sequential(*block(3, 32), *block(32, 32), nn.MaxPool2d(2), *block(32, 64), *block(64, 64),
                        nn.MaxPool2d(2), *block(64, 128), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2048, 10))
    mlp = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))

    class Block(nn.Module):
        def __init__(self, C, H):
            super().__init__()
            self.H = H
            self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
            self.q, self.k, self.v, self.o = (nn.Linear(C, C) for _ in range(4))
            self.fc, self.proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

        def forward(self, x):
            B, T, C = x.shape
            h = self.ln1(x).reshape(B * T, C)
            q, k, v = (f(h).reshape(B, T, self.H, C // self.H).transpose(1, 2) for f in (self.q, self.k, self.v))
            s = (q @ k.transpose(-2, -1)) / (C // self.H) ** 0.5          # explicit: counted as bmm
            s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
            y = (s.softmax(-1) @ v).transpose(1, 2).reshape(B * T, C)
            x = x + self.o(y).reshape(B, T, C)
            h = self.proj(nn.functional.gelu(self.fc(self.ln2(x).reshape(B * T, C)), approximate="tanh"))
            return x + h.reshape(B, T, C)

    class GPT(nn.Module):
        def __init__(self, vocab_size, block_size, n_layer, n_head, n_embd):
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab_size, n_embd), nn.Embedding(block_size, n_embd)
            self.blocks = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
            self.ln, self.head = nn.LayerNorm(n_embd), nn.Linear(n_embd, vocab_size, bias=False)

        def forward(self, idx):
            B, T = idx.shape
            x = self.tok(idx) + self.pos(torch.arange(T))
            for b in self.blocks:
                x = b(x)
            return self.head(self.ln(x).reshape(B * T, -1))

    rng = np.random.default_rng(0)
    cases = {
        "mlp": (mlp, torch.from_numpy(rng.standard_normal((MLP_BATCH, 784)).astype(np.float32)),
                torch.from_numpy(rng.integers(0, 10, MLP_BATCH))),
        "cnn": (cnn, torch.from_numpy(rng.standard_normal((CNN_BATCH, 3, 32, 32)).astype(np.float32)),
                torch.from_numpy(rng.integers(0, 10, CNN_BATCH))),
        "gpt": (GPT(**GPT_CFG), torch.from_numpy(rng.integers(0, 65, (GPT_BATCH, 64))),
                torch.from_numpy(rng.integers(0, 65, GPT_BATCH * 64))),
    }
    out = {}
    for name, (model, x, y) in cases.items():
        with FlopCounterMode(display=False) as fc:
            logits = model(x)
        fwd = fc.get_total_flops()
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y)
        with FlopCounterMode(display=False) as fc:
            loss.backward()
        out[name] = {"forward": int(fwd), "backward": int(fc.get_total_flops())}
    return out
