"""Module 10: CharTokenizer and BPETokenizer (tinytorch.text.tokenization).

Round trips are checked with Hypothesis over arbitrary strings (including lone surrogates);
the incremental BPE trainer and the rank-order encoder are checked against independent
slow oracles written here.
"""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinytorch.text.tokenization import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SAMPLE_TEXT,
    SPECIAL_TOKENS,
    UNK_ID,
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    bpe_encode_word,
    load_text_corpus,
    load_tokenizer,
    merge_pair,
    pretokenize,
    train_bpe,
)

# every code point, surrogates included (Hypothesis excludes category Cs by default)
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=()), max_size=60)
# text that looks like the training corpus, so merges actually fire
CORPUS_LIKE = st.text(alphabet=st.sampled_from(list(SAMPLE_TEXT) + ["\u00e9", "\U0001F600", "\t"]), max_size=120)


@pytest.fixture(scope="module")
def char_tok():
    return CharTokenizer().train(SAMPLE_TEXT)


@pytest.fixture(scope="module")
def bpe_tok():
    return BPETokenizer().train(SAMPLE_TEXT * 3, vocab_size=400)


# ---------------------------------------------------------------- oracles (independent, slow)
def naive_train(word_freqs, num_merges, first_id):
    """Recount every pair after every merge; same tie rule: highest count, then smallest pair."""
    words = Counter({tuple(w): f for w, f in word_freqs.items()})
    merges = []
    for k in range(num_merges):
        counts = Counter()
        for w, f in words.items():
            for i in range(len(w) - 1):
                counts[(w[i], w[i + 1])] += f
        if not counts:
            break
        top = max(counts.values())
        best = min(p for p, c in counts.items() if c == top)
        merges.append(best)
        new = Counter()
        for w, f in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(first_id + k)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] += f
        words = new
    return merges


def sequential_encode(ids, merges, first_id):
    """Apply every merge in the order learned: equivalent to lowest-rank-first."""
    for k, pair in enumerate(merges):
        ids = merge_pair(ids, pair, first_id + k)
    return ids


# ---------------------------------------------------------------- round trips
@settings(max_examples=150, deadline=None)
@given(ANY_TEXT)
def test_char_round_trip_any_string(char_tok, s):
    ids = char_tok.encode(s)
    assert all(0 <= i < char_tok.vocab_size for i in ids)
    assert UNK_ID not in ids, "byte fallback must never produce <unk>"
    assert char_tok.decode(ids) == s


@settings(max_examples=150, deadline=None)
@given(ANY_TEXT)
def test_bpe_round_trip_any_string(bpe_tok, s):
    ids = bpe_tok.encode(s)
    assert all(0 <= i < bpe_tok.vocab_size for i in ids)
    assert UNK_ID not in ids
    assert bpe_tok.decode(ids) == s


@settings(max_examples=100, deadline=None)
@given(CORPUS_LIKE)
def test_bpe_round_trip_and_compression_on_corpus_like_text(bpe_tok, s):
    ids = bpe_tok.encode(s)
    assert bpe_tok.decode(ids) == s
    assert len(ids) <= len(s.encode("utf-8")), "BPE never needs more tokens than bytes"


@settings(max_examples=100, deadline=None)
@given(ANY_TEXT)
def test_pretokenize_covers_the_text(s):
    assert "".join(pretokenize(s)) == s


@settings(max_examples=100, deadline=None)
@given(ANY_TEXT)
def test_special_tokens_wrap_and_skip(char_tok, bpe_tok, s):
    for tok in (char_tok, bpe_tok):
        ids = tok.encode(s, add_special_tokens=True)
        assert ids[0] == BOS_ID and ids[-1] == EOS_ID and ids[1:-1] == tok.encode(s)
        assert tok.decode(ids) == "<bos>" + s + "<eos>"
        assert tok.decode(ids + [PAD_ID, PAD_ID], skip_special_tokens=True) == s


@settings(max_examples=100, deadline=None)
@given(ANY_TEXT)
def test_char_without_fallback_replaces_unknown_by_unk(s):
    tok = CharTokenizer("abc ", byte_fallback=False)
    assert tok.vocab_size == 8
    ids = tok.encode(s)
    assert len(ids) == len(s)
    expected = "".join(ch if ch in "abc " else "<unk>" for ch in s)
    assert tok.decode(ids) == expected


def test_literal_special_strings_are_plain_text(char_tok, bpe_tok):
    for tok in (char_tok, bpe_tok):
        ids = tok.encode("<eos><pad>")
        assert EOS_ID not in ids and PAD_ID not in ids
        assert tok.decode(ids) == "<eos><pad>"


def test_fixed_ids_and_layout():
    assert SPECIAL_TOKENS == ("<pad>", "<bos>", "<eos>", "<unk>")
    tok = CharTokenizer().train("hello")
    assert tok.encode("hole") == [5, 7, 6, 4]
    assert tok.byte_offset == 8 and tok.vocab_size == 264
    assert tok.encode("\u00e9") == [8 + 0xC3, 8 + 0xA9]
    bpe = BPETokenizer()
    assert bpe.vocab_size == 260
    assert bpe.encode("A") == [4 + ord("A")]
    assert bpe.decode([1, 4 + ord("h"), 4 + ord("i"), 2]) == "<bos>hi<eos>"


# ---------------------------------------------------------------- the BPE algorithm
word_freqs_strategy = st.dictionaries(
    st.lists(st.integers(0, 5), min_size=1, max_size=8).map(tuple), st.integers(1, 30), max_size=40
)


@settings(max_examples=60, deadline=None)
@given(word_freqs_strategy, st.integers(0, 25))
def test_incremental_training_matches_naive(word_freqs, n):
    assert train_bpe(word_freqs, n, first_id=100) == naive_train(word_freqs, n, first_id=100)


@settings(max_examples=60, deadline=None)
@given(word_freqs_strategy, st.lists(st.integers(0, 5), max_size=12))
def test_rank_order_encoding_matches_sequential_merges(word_freqs, ids):
    merges = train_bpe(word_freqs, 15, first_id=100)
    ranks = {p: k for k, p in enumerate(merges)}
    assert bpe_encode_word(ids, ranks, 100) == sequential_encode(ids, merges, 100)


def test_worked_example_and_ties():
    a, b, c, d = 97, 98, 99, 100
    assert train_bpe({(a, a, a, b, d, a, a, a, b, a, c): 1}, 3, 1000) == [(a, a), (a, b), (1000, 1001)]
    assert train_bpe({(5, 6): 1, (1, 2): 1}, 1, 50) == [(1, 2)]
    assert merge_pair([1, 1, 1], (1, 1), 9) == [9, 1]
    with pytest.raises(ValueError, match="num_merges"):
        train_bpe({(1, 2): 1}, -1, 50)


def test_training_is_deterministic_and_stops_early():
    t1 = BPETokenizer().train(SAMPLE_TEXT, vocab_size=350)
    t2 = BPETokenizer().train(SAMPLE_TEXT, vocab_size=350)
    assert t1.merges == t2.merges and t1.vocab_size == 350
    tiny = BPETokenizer().train("ab ab", vocab_size=1000)
    # chunks "ab" and " ab": merge (a, b) -> 260, then (" ", 260) -> 261, then no pair is left
    assert tiny.merges == [(4 + ord("a"), 4 + ord("b")), (4 + ord(" "), 260)]
    assert tiny.vocab_size == 262 and tiny.encode("ab ab") == [260, 261]


def test_frequent_words_become_single_tokens():
    tok = BPETokenizer().train("the cat and the hat and the bat " * 20, vocab_size=300)
    assert len(tok.encode(" the")) == 1
    assert tok.token_str(tok.encode(" the")[0]) == " the"


# ---------------------------------------------------------------- errors
def test_errors_name_expected_and_got(char_tok, bpe_tok):
    with pytest.raises(ValueError, match=r"expected 0 <= id < \d+, got -1"):
        char_tok.decode([5, -1])
    with pytest.raises(ValueError, match=str(bpe_tok.vocab_size)):
        bpe_tok.decode([bpe_tok.vocab_size])
    with pytest.raises(TypeError, match="integer ids"):
        bpe_tok.decode(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="expects a str, got bytes"):
        bpe_tok.encode(b"bytes")
    with pytest.raises(ValueError, match="vocab_size must be >= 260"):
        BPETokenizer().train("abc", vocab_size=100)
    with pytest.raises(ValueError, match="does not exist yet"):
        BPETokenizer([(4, 300)])


def test_decode_accepts_numpy_arrays(bpe_tok):
    ids = bpe_tok.encode("to be or not to be")
    assert bpe_tok.decode(np.array(ids, dtype=np.int64)) == "to be or not to be"
    assert bpe_tok.decode(np.array(ids, dtype=np.int32)) == "to be or not to be"


# ---------------------------------------------------------------- save / load
def test_save_load_json(tmp_path, char_tok, bpe_tok):
    text = SAMPLE_TEXT + " caf\u00e9 \U0001F600"
    for tok in (char_tok, bpe_tok, CharTokenizer("xyz", byte_fallback=False)):
        path = tmp_path / f"{type(tok).__name__}-{tok.vocab_size}.json"
        tok.save(path)
        d = json.loads(path.read_text(encoding="utf-8"))
        assert d["type"] == type(tok).__name__ and d["special_tokens"] == list(SPECIAL_TOKENS)
        again = load_tokenizer(path)
        assert type(again) is type(tok) and again.vocab_size == tok.vocab_size
        assert again.encode(text) == tok.encode(text)
        assert type(tok).load(path).vocab_size == tok.vocab_size
    with pytest.raises(ValueError, match="expected a BPETokenizer"):
        BPETokenizer.load(tmp_path / f"CharTokenizer-{char_tok.vocab_size}.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"type": "WordTokenizer"}), encoding="utf-8")
    with pytest.raises(ValueError, match="unknown tokenizer type"):
        Tokenizer.load(bad)


# ---------------------------------------------------------------- real corpus
def test_real_corpus_round_trip_and_compression(data_dir, monkeypatch):
    path = data_dir / "text" / "tinyshakespeare.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    monkeypatch.setenv("TINYTORCH_DATA", str(data_dir))
    text, source = load_text_corpus()
    assert source == "tinyshakespeare.txt" and len(text) == 1_115_394
    bpe = BPETokenizer().train(text[:100_000], vocab_size=512)
    assert bpe.vocab_size == 512
    held_out = text[-100_000:]
    ids = bpe.encode(held_out)
    assert bpe.decode(ids) == held_out
    char = CharTokenizer(byte_fallback=False).train(text)
    assert char.vocab_size == 4 + 65
    assert char.decode(char.encode(held_out)) == held_out
    # 512-token BPE shortens Shakespeare by well over 1.5x relative to characters
    assert len(held_out) / len(ids) > 1.5, f"only {len(held_out) / len(ids):.2f} chars per token"


def test_fallback_corpus_without_data(monkeypatch):
    monkeypatch.delenv("TINYTORCH_DATA", raising=False)
    text, source = load_text_corpus(max_chars=100)
    assert text == SAMPLE_TEXT[:100] and "built-in" in source
