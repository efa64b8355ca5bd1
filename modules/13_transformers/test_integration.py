"""Integration: module 13's GPT as the package exports it, with the tokenizer (10), embeddings
(11), attention (12), losses (04) and AdamW (06): tinytorch only."""
import numpy as np

from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import AdamW
from tinytorch.models.transformer import GPT
from tinytorch.text.tokenization import CharTokenizer


def _batches(ids, T, B, seed):
    rng = np.random.default_rng(seed)
    while True:
        ix = rng.integers(0, len(ids) - T - 1, B)[:, None] + np.arange(T)   # (B, T)
        yield ids[ix], ids[ix + 1]


def test_char_gpt_trains_saves_and_generates():
    text = "the cat sat on the mat. the dog sat on the log. " * 20
    tok = CharTokenizer().train(text)
    ids = np.array(tok.encode(text), dtype=np.int64)
    V = tok.vocab_size
    m = GPT(V, 16, 2, 2, 32, seed=0)
    opt, lf = AdamW(m.parameters(), lr=3e-3, weight_decay=0.0), CrossEntropyLoss()
    data = _batches(ids, 16, 8, seed=0)
    losses = []
    for _ in range(150):
        x, y = next(data)
        loss = lf(m(x).reshape(8 * 16, V), y.reshape(8 * 16))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])
    prompt = np.array([tok.encode("the cat s")], dtype=np.int64)
    out = m.generate(prompt, 12, temperature=0)
    assert tok.decode(out[0].tolist()).startswith("the cat sat on"), tok.decode(out[0].tolist())
    # state_dict round trip: a fresh model with the saved weights generates the same text
    fresh = GPT(V, 16, 2, 2, 32, seed=123)
    fresh.load_state_dict(m.state_dict())
    assert np.array_equal(fresh.generate(prompt, 12, temperature=0.8, top_k=5, seed=1),
                          m.generate(prompt, 12, temperature=0.8, top_k=5, seed=1))
