"""Integration: text -> ids (module 10) -> token + position embeddings (module 11) -> a
Linear read-out (module 03), trained by plain gradient descent through autograd (module 05).
Imports tinytorch only, and only the prerequisites of module 11 (01, 03, 05, 10)."""
import numpy as np

from tinytorch.core.layers import Linear
from tinytorch.core.tensor import Tensor
from tinytorch.text.embeddings import Embedding, PositionalEncoding, SinusoidalPositionalEncoding
from tinytorch.text.tokenization import PAD_ID, BPETokenizer, CharTokenizer, load_text_corpus


def test_embeddings_learn_by_gradient_descent():
    corpus, _ = load_text_corpus(max_chars=5_000)
    tok = CharTokenizer(byte_fallback=False).train(corpus)
    T, d = 8, 16
    stream = np.array(tok.encode(corpus), dtype=np.int64)
    ids = np.stack([stream[i:i + T] for i in range(0, 16 * T, T)])          # (B=16, T)
    target = Tensor((ids % 2).astype(np.float32)[..., None])                 # (B, T, 1): parity of the id
    emb, pos, head = Embedding(tok.vocab_size, d, seed=0), PositionalEncoding(T, d, seed=1), Linear(d, 1, seed=2)
    params = emb.parameters() + pos.parameters() + head.parameters()
    losses = []
    for _ in range(30):
        for p in params:
            p.grad = None
        pred = head(pos(emb(ids)))                                           # (B, T, 1)
        loss = ((pred - target) ** 2).mean()
        loss.backward()
        for p in params:                                                     # SGD step by hand
            p.data -= 0.1 * p.grad.data
        losses.append(float(loss.data))
    assert all(p.grad is not None and p.grad.dtype == np.float32 for p in params)
    assert emb.weight.dtype == np.float32 and pos.weight.dtype == np.float32
    assert losses[-1] < 0.5 * losses[0], f"loss did not fall: {losses[0]:.4f} -> {losses[-1]:.4f}"


def test_padded_bpe_batch_through_embeddings():
    corpus, _ = load_text_corpus(max_chars=20_000)
    tok = BPETokenizer().train(corpus, vocab_size=300)
    texts = ["to be or not", "the", "a much longer line of text here"]
    seqs = [tok.encode(t, add_special_tokens=True) for t in texts]
    T = max(map(len, seqs))
    ids = np.full((len(seqs), T), PAD_ID, dtype=np.int64)                    # (B, T)
    for b, s in enumerate(seqs):
        ids[b, :len(s)] = s
    emb = Embedding(tok.vocab_size, 12, seed=0, padding_idx=PAD_ID)
    x = SinusoidalPositionalEncoding(64, 12)(emb(ids))                        # (B, T, 12)
    assert x.shape == (3, T, 12) and x.dtype == np.float32
    (x * x).sum().backward()
    np.testing.assert_allclose(emb.weight.grad.data[PAD_ID], 0.0)
    assert np.abs(emb.weight.grad.data[ids[0, 1]]).sum() > 0
