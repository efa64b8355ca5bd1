"""Integration: module 10's tokenizers as the package exports them (tinytorch only)."""
import numpy as np

from tinytorch.text.tokenization import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    BPETokenizer,
    CharTokenizer,
    load_text_corpus,
    load_tokenizer,
)


def _pad_batch(seqs, pad_id):
    T = max(len(s) for s in seqs)
    out = np.full((len(seqs), T), pad_id, dtype=np.int64)          # (B, T)
    for b, s in enumerate(seqs):
        out[b, : len(s)] = s
    return out


def test_texts_to_padded_id_batch_and_back(tmp_path):
    corpus, _ = load_text_corpus(max_chars=30_000)
    for tok in (CharTokenizer().train(corpus), BPETokenizer().train(corpus, vocab_size=320)):
        texts = ["to be, or not to be", "caf\u00e9", ""]
        batch = _pad_batch([tok.encode(t, add_special_tokens=True) for t in texts], PAD_ID)  # (3, T)
        assert batch.dtype == np.int64 and batch.shape[0] == 3
        assert (batch[:, 0] == BOS_ID).all() and batch.max() < tok.vocab_size
        for row, t in zip(batch, texts):
            assert tok.decode(row, skip_special_tokens=True) == t
            assert EOS_ID in row.tolist()
        path = tmp_path / "tok.json"
        tok.save(path)
        assert load_tokenizer(path).encode(corpus[:1000]) == tok.encode(corpus[:1000])
