# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Module 10: Tokenization
#
# A language model never sees text. It sees a list of integers, and every one of those
# integers picks a row of an embedding table (module 11) and a column of the output layer
# (module 13). The tokenizer decides what those integers mean: one per character, one per
# word, or something in between. That one decision fixes the size of the embedding table,
# how many tokens a sentence costs (and attention cost grows with the square of that
# number, module 12), and what the model can say at all. In this module you build the two
# tokenizers that matter for teaching: a character tokenizer and a byte-level byte-pair
# encoder (BPE) of the kind GPT-2 and its successors use, with special tokens, a lossless
# fallback for characters never seen in training, and save/load to JSON. Then you measure
# the trade-off on a real corpus.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far              you build now                    this unlocks
#   ------------              -------------                    ------------
#   01 Tensor      ----->     10 Tokenization         ----->   11 Embeddings (ids -> vectors)
#   (arrays, memory)          text  -> list of ids             13 GPT: generate() decodes ids
#                             ids   -> text                    milestone 5: TinyTalks and
#                             CharTokenizer, BPETokenizer      Shakespeare language models
#                             <pad> <bos> <eos> <unk>
# ```
#
# The tokenizer is the only part of a language model that is not differentiable and not
# trained by gradient descent: it is trained once, by counting, before the network exists.

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp text.tokenization
#| export
import json
import os
import re
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

# %% [markdown]
# ## 1. From text to integers
#
# Three ways to cut the same 12 characters:
#
# ```
#   text:        "the cat sat."          (12 characters, 12 bytes in UTF-8)
#
#   characters:  t|h|e| |c|a|t| |s|a|t|.          12 tokens, vocabulary ~ 100
#   words:       the| cat| sat|.                    4 tokens, vocabulary ~ 100,000+
#   subwords:    the| c|at| s|at|.                  6 tokens, vocabulary you choose
# ```
#
# - **Characters**: tiny vocabulary, nothing is ever unknown (almost), but sequences are
#   long. A 64-token context window holds only 64 characters, about a dozen words.
# - **Words**: short sequences, but the vocabulary explodes (every name, typo and plural is a
#   new word) and every word not in the table becomes `<unk>`: information is lost.
# - **Subwords (BPE)**: start from bytes, then repeatedly glue together the most frequent
#   adjacent pair. Frequent words become one token, rare words fall apart into pieces, and
#   because the base alphabet is all 256 byte values, *any* string can be encoded exactly.
#
# ### Special tokens
#
# Four ids are reserved in every tokenizer of this module, always the first four:
#
# ```
#   id  token    used for
#   0   <pad>    filling short sequences in a batch to a common length
#   1   <bos>    "beginning of sequence": the prompt the model generates from
#   2   <eos>    "end of sequence": generation stops when the model emits it
#   3   <unk>    a character the tokenizer cannot represent (only when lossless
#                byte fallback is switched off)
# ```
#
# Special tokens are *added* by `encode(text, add_special_tokens=True)`; they are never
# produced by text. The literal string `"<eos>"` inside a text is just five characters, so a
# user cannot end a sequence by typing it (this is the reason real tokenizers keep specials
# out of the text path).
#
# ### Lossless: `decode(encode(s)) == s` for every string
#
# A tokenizer that loses information is a silent bug factory: the model is trained on text
# that differs from what the user typed. Our rule: for **any** Python string `s`,
# `decode(encode(s)) == s`. The character tokenizer keeps it with **byte fallback** (the
# trick of SentencePiece and Llama): a character missing from the vocabulary is written as
# its UTF-8 bytes, using 256 extra byte tokens `<0x00>` ... `<0xFF>`.
#
# ```
#   vocabulary: <pad> <bos> <eos> <unk> | ' ' a c e h s t | <0x00> ... <0xFF>
#   ids:          0     1     2     3   |  4  5 6 7 8 9 10 |  11   ...  266
#
#   "hé" -> 'h' is known -> 8
#           'é' is not   -> UTF-8 bytes C3 A9 -> 11+0xC3, 11+0xA9 = 206, 180
#   encode("hé") = [8, 206, 180]      decode joins byte tokens, then UTF-8 decodes them
# ```
#
# The helpers below (provided) turn a string into UTF-8 bytes and back. They use
# `surrogatepass` so that even a lone surrogate such as `"\ud800"` (legal in a Python
# string, illegal in strict UTF-8) survives the round trip.

# %% nbgrader={"grade": false, "grade_id": "specials-and-base", "locked": true, "schema_version": 3, "solution": false}
#| export
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
N_SPECIAL = len(SPECIAL_TOKENS)  # ids 0..3 are special in every tokenizer


def text_to_bytes(text: str) -> bytes:
    """UTF-8 bytes of ``text`` (lone surrogates kept, so every Python string round-trips)."""
    return text.encode("utf-8", "surrogatepass")


def bytes_to_text(data) -> str:
    """Inverse of ``text_to_bytes``; invalid byte sequences (only possible from hand-made
    ids) become U+FFFD instead of raising."""
    data = bytes(data)
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


class Tokenizer:
    """What every tokenizer offers: ``encode``, ``decode``, ``vocab_size``, save/load.

    Subclasses implement ``encode``, ``decode``, ``vocab_size`` and ``to_dict``/``from_dict``.
    """

    pad_id, bos_id, eos_id, unk_id = PAD_ID, BOS_ID, EOS_ID, UNK_ID
    special_tokens = SPECIAL_TOKENS

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode(self, text: str, add_special_tokens: bool = False) -> list:
        raise NotImplementedError

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.vocab_size

    def _check_text(self, text) -> str:
        if not isinstance(text, str):
            raise TypeError(f"encode() expects a str, got {type(text).__name__}")
        return text

    def _check_ids(self, ids) -> list:
        """``ids`` as a list of Python ints, each in ``[0, vocab_size)``.

        Accepts a list, a 1-D NumPy integer array or a 1-D integer Tensor (anything with
        ``.data``)."""
        arr = np.asarray(getattr(ids, "data", ids))
        if arr.ndim != 1 and arr.size > 0:
            raise ValueError(f"decode() expects a 1-D sequence of ids, got shape {arr.shape}")
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"decode() expects integer ids, got dtype {arr.dtype}")
        out = [int(i) for i in arr.reshape(-1)]
        for pos, i in enumerate(out):
            if not 0 <= i < self.vocab_size:
                raise ValueError(
                    f"token id out of range at position {pos}: expected 0 <= id < {self.vocab_size}, got {i}"
                )
        return out

    def to_dict(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_dict(cls, d: dict) -> "Tokenizer":
        raise NotImplementedError

    def save(self, path) -> None:
        """Write the tokenizer to a JSON file (UTF-8)."""
        d = {"type": type(self).__name__, "format_version": 1, "special_tokens": list(SPECIAL_TOKENS)}
        d.update(self.to_dict())
        Path(path).write_text(json.dumps(d, ensure_ascii=True, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, path) -> "Tokenizer":
        """Read a tokenizer written by ``save``. ``Tokenizer.load`` accepts any kind;
        ``CharTokenizer.load`` insists on a character tokenizer."""
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        kind = d.get("type")
        classes = {c.__name__: c for c in Tokenizer.__subclasses__()}
        if kind not in classes:
            raise ValueError(f"{path}: unknown tokenizer type {kind!r}, expected one of {sorted(classes)}")
        if cls is not Tokenizer and kind != cls.__name__:
            raise ValueError(f"{path}: holds a {kind}, expected a {cls.__name__}")
        if tuple(d.get("special_tokens", ())) != SPECIAL_TOKENS:
            raise ValueError(f"{path}: special tokens {d.get('special_tokens')} differ from {list(SPECIAL_TOKENS)}")
        return classes[kind].from_dict(d)


def load_tokenizer(path) -> Tokenizer:
    """Load any tokenizer saved with ``.save(path)``."""
    return Tokenizer.load(path)

# %% [markdown]
# ## 2. The character tokenizer
#
# The vocabulary is the four specials, then every distinct character of the training text
# in sorted order, then (with `byte_fallback=True`, the default) the 256 byte tokens.
#
# ```
#   train("hello")  ->  chars = ['e', 'h', 'l', 'o']
#
#   id:     0     1     2     3     4    5    6    7     8 ... 263
#   token: <pad> <bos> <eos> <unk>  e    h    l    o    <0x00> ... <0xFF>
#
#   encode("hole")                      = [5, 7, 6, 4]
#   encode("hole", add_special_tokens)  = [1, 5, 7, 6, 4, 2]
#   encode("hé")  (é unknown, C3 A9)    = [5, 8 + 0xC3, 8 + 0xA9] = [5, 203, 177]
#   with byte_fallback=False            = [5, 3]          ("hé" -> "h<unk>": lossy)
# ```
#
# Your job: `encode` and `decode`. The constructor, which builds the two lookup tables
# `char_to_id` and `id_to_char` and `byte_offset` (the id of `<0x00>`), is given.
#
# In `decode`, collect consecutive byte tokens in a `bytearray` and turn them into text with
# `bytes_to_text` only when a non-byte token (or the end) arrives: one character can span up
# to four byte tokens, and decoding them one at a time would break it.

# %% nbgrader={"grade": false, "grade_id": "char-tokenizer", "locked": false, "schema_version": 3, "solution": true}
#| export
class CharTokenizer(Tokenizer):
    """One token per character, with specials and (by default) lossless byte fallback.

    >>> tok = CharTokenizer().train("hello")
    >>> tok.encode("hole")
    [5, 7, 6, 4]
    """

    def __init__(self, chars="", byte_fallback: bool = True):
        self.chars = sorted(set(chars))                    # the learned alphabet, sorted
        self.byte_fallback = bool(byte_fallback)
        self.char_to_id = {c: N_SPECIAL + i for i, c in enumerate(self.chars)}
        self.id_to_char = {i: c for c, i in self.char_to_id.items()}
        self.byte_offset = N_SPECIAL + len(self.chars)     # id of the byte token <0x00>

    def train(self, corpus: str) -> "CharTokenizer":
        """Learn the alphabet of ``corpus`` (replacing the current one); returns self."""
        self.__init__(self._check_text(corpus), self.byte_fallback)
        return self

    @property
    def vocab_size(self) -> int:
        return self.byte_offset + (256 if self.byte_fallback else 0)

    def encode(self, text: str, add_special_tokens: bool = False) -> list:
        """Token ids of ``text``; ``add_special_tokens`` wraps them in <bos> ... <eos>.

        Known character -> its id. Unknown character -> its UTF-8 bytes as byte tokens
        (``byte_offset + b``) when ``byte_fallback``, else ``UNK_ID``.
        HINT: ``text_to_bytes(ch)`` gives the bytes; iterating over bytes yields ints.
        """
        text = self._check_text(text)
        ids = [BOS_ID] if add_special_tokens else []
        ### BEGIN SOLUTION
        char_to_id, offset = self.char_to_id, self.byte_offset
        for ch in text:
            i = char_to_id.get(ch)
            if i is not None:
                ids.append(i)
            elif self.byte_fallback:
                ids.extend(offset + b for b in text_to_bytes(ch))
            else:
                ids.append(UNK_ID)
        ### END SOLUTION
        if add_special_tokens:
            ids.append(EOS_ID)
        return ids

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        """Text of ``ids``. Specials appear as ``"<bos>"`` etc. unless ``skip_special_tokens``.

        HINT: keep a ``bytearray`` of pending byte tokens; flush it with ``bytes_to_text``
        before appending any non-byte token, and once more at the end.
        """
        ids = self._check_ids(ids)
        ### BEGIN SOLUTION
        out, pending = [], bytearray()
        for i in ids:
            if i >= self.byte_offset:                      # a byte token
                pending.append(i - self.byte_offset)
                continue
            if pending:
                out.append(bytes_to_text(pending))
                pending = bytearray()
            if i < N_SPECIAL:
                if not skip_special_tokens:
                    out.append(SPECIAL_TOKENS[i])
            else:
                out.append(self.id_to_char[i])
        if pending:
            out.append(bytes_to_text(pending))
        return "".join(out)
        ### END SOLUTION

    def to_dict(self) -> dict:
        return {"chars": "".join(self.chars), "byte_fallback": self.byte_fallback}

    @classmethod
    def from_dict(cls, d: dict) -> "CharTokenizer":
        return cls(d["chars"], d["byte_fallback"])

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size}, chars={len(self.chars)}, byte_fallback={self.byte_fallback})"

# %% nbgrader={"grade": true, "grade_id": "test-char-tokenizer", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_char_tokenizer():
    """CharTokenizer: ids, specials, byte fallback, <unk>, round trip."""
    tok = CharTokenizer().train("hello")
    assert tok.chars == ["e", "h", "l", "o"], f"expected sorted distinct chars, got {tok.chars}"
    assert tok.vocab_size == 4 + 4 + 256, f"expected 264, got {tok.vocab_size}"
    assert tok.encode("hole") == [5, 7, 6, 4], f"got {tok.encode('hole')}"
    assert tok.encode("hole", add_special_tokens=True) == [1, 5, 7, 6, 4, 2]
    assert tok.encode("") == []
    # unknown character -> UTF-8 bytes as byte tokens
    assert tok.encode("h\u00e9") == [5, 8 + 0xC3, 8 + 0xA9], f"got {tok.encode('h' + chr(233))}"
    for s in ["hello", "h\u00e9llo w\u00f6rld \U0001F600", "<eos>", "\x00\n\t", "\u4e2d\u6587"]:
        assert tok.decode(tok.encode(s)) == s, f"round trip broke for {s!r}: got {tok.decode(tok.encode(s))!r}"
    assert tok.decode(tok.encode("hole", add_special_tokens=True)) == "<bos>hole<eos>"
    assert tok.decode([1, 5, 7, 2, 0, 0], skip_special_tokens=True) == "ho"
    # without fallback, unknown characters become <unk> and information is lost
    lossy = CharTokenizer("hello", byte_fallback=False)
    assert lossy.vocab_size == 8
    assert lossy.encode("h\u00e9") == [5, UNK_ID]
    assert lossy.decode(lossy.encode("h\u00e9")) == "h<unk>"
    ### BEGIN HIDDEN TESTS
    assert tok.decode(np.array([5, 7], dtype=np.int64)) == "ho"
    try:
        tok.decode([264])
    except ValueError:
        pass
    else:
        raise AssertionError("an id >= vocab_size must raise ValueError")
    ### END HIDDEN TESTS
    print("CharTokenizer: ok")


test_unit_char_tokenizer()

# %% [markdown]
# ## 3. Byte-pair encoding: the idea
#
# BPE (Sennrich et al. 2016, byte-level since GPT-2) learns a vocabulary by compression.
# Start with one token per byte; find the most frequent adjacent pair; make it a new token;
# replace it everywhere; repeat. Worked example on the text `aaabdaaabac`:
#
# ```
#   step  sequence          most frequent pair   count   new token
#   0     a a a b d a a a b a c     (a, a)         4      X = aa
#   1     X a b d X a b a c         (a, b)         2      Y = ab
#   2     X Y d X Y a c             (X, Y)         2      Z = aaab
#   3     Z d Z a c                 every pair occurs once: stop (or keep going)
#
#   11 tokens -> 5 tokens with 3 merges.  The merges, in order, ARE the tokenizer:
#   merges = [(a, a), (a, b), (X, Y)]
# ```
#
# Two details make it work on real text:
#
# 1. **Pre-tokenization.** Merges never cross word boundaries. The text is first cut into
#    chunks such as `"the"`, `" cat"`, `" sat"`, `"."` (the space sticks to the word after
#    it, as in GPT-2), and pairs are counted inside chunks only. A frequent chunk is counted
#    once with its frequency: the first 100 KB of Shakespeare cut into about 27,000 chunks,
#    but only about 3,600 *distinct* ones, and only those need work.
# 2. **Encoding replays the merges in order of rank.** To encode a new word, start from its
#    bytes and repeatedly apply the *earliest learned* merge that is present, until none is.
#
# The first building block merges one pair everywhere in a list, left to right, without
# overlaps:
#
# ```
#   merge_pair([a, a, a, b], (a, a), X) -> [X, a, b]      (not [a, X, b], not [X, X, b])
# ```

# %% nbgrader={"grade": false, "grade_id": "merge-pair", "locked": false, "schema_version": 3, "solution": true}
#| export
def merge_pair(ids: list, pair: tuple, new_id: int) -> list:
    """Replace every non-overlapping occurrence of ``pair`` in ``ids``, scanning left to
    right, by ``new_id``. Returns a new list; ``ids`` is not modified.

    EXAMPLE: merge_pair([1, 1, 1, 2], (1, 1), 9) -> [9, 1, 2]
    HINT: walk with an index i; if ids[i], ids[i + 1] equals the pair, emit new_id and
    jump by 2, else emit ids[i] and step by 1.
    """
    ### BEGIN SOLUTION
    a, b = pair
    out, i, n = [], 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-merge-pair", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_merge_pair():
    """merge_pair: left to right, no overlaps, input untouched."""
    ids = [1, 1, 1, 2]
    assert merge_pair(ids, (1, 1), 9) == [9, 1, 2], f"got {merge_pair(ids, (1, 1), 9)}"
    assert ids == [1, 1, 1, 2], "merge_pair must not modify its input"
    assert merge_pair([1, 1, 1, 1], (1, 1), 9) == [9, 9]
    assert merge_pair([1, 2, 3, 1, 2], (1, 2), 7) == [7, 3, 7]
    assert merge_pair([1, 2], (2, 1), 7) == [1, 2]
    assert merge_pair([], (1, 2), 7) == []
    assert merge_pair([4], (4, 4), 7) == [4]
    print("merge_pair: ok")


test_unit_merge_pair()

# %% [markdown]
# ## 4. Training BPE fast: incremental pair counts
#
# The naive trainer recounts every pair of every chunk after each merge: for `M` merges over
# `W` distinct chunks of average length `L` that is `M * W * L` steps (500 merges x 3,600
# chunks x 5 = 9 million Python steps: many seconds; measured at the end of the lesson).
#
# But a merge of `(a, b)` only changes the chunks that **contain** `(a, b)`, and for
# those only the pairs touching the merged spot. So keep two tables and update them:
#
# ```
#   counts[pair]  = total frequency of the pair over all chunks      (Counter)
#   where[pair]   = set of chunk indices that contain the pair        (dict of sets)
#
#   merge (a, b) -> new id X:
#     for every chunk i in where[(a, b)]:
#         subtract chunk i's pairs from counts   (times the chunk's frequency)
#         chunk_i = merge_pair(chunk_i, (a, b), X)
#         add chunk i's new pairs to counts and to where
#
#   chunk " the" (freq 300):   [ ' ', t, h, e ]   pairs ( ,t) (t,h) (h,e)
#   merge (t, h) -> X:         [ ' ', X, e ]      pairs ( ,X) (X,e)
#   counts: ( ,t) -300, (t,h) -300, (h,e) -300, ( ,X) +300, (X,e) +300
# ```
#
# Most merges touch a few dozen chunks, not all of them. Picking the best pair is still a
# scan over `counts` (a heap would remove that too; the scan is fast enough here and much
# easier to get right).
#
# **Ties** are broken deterministically: the highest count wins; among equal counts the
# pair with the smaller `(first id, second id)` wins. The same corpus always gives the same
# merges, on every machine.
#
# A stale entry in `where` (a chunk that no longer contains the pair) is harmless: you
# subtract the chunk's pairs and add back the same pairs, a net change of zero. Delete pairs
# whose count falls to zero so that the scan never picks a pair that no longer exists.

# %% nbgrader={"grade": false, "grade_id": "train-bpe", "locked": false, "schema_version": 3, "solution": true}
#| export
def train_bpe(word_freqs: dict, num_merges: int, first_id: int) -> list:
    """Learn up to ``num_merges`` merges from ``word_freqs``.

    word_freqs: {tuple of token ids (one pre-tokenized chunk): frequency}
    Merge k creates token ``first_id + k``. Returns the merges in order, a list of
    ``(a, b)`` tuples. Stops early when no pair is left (every chunk is one token).
    Highest count wins; ties go to the smallest ``(a, b)``.

    HINT: chunks = [list(w) for w in word_freqs]; freqs = list(word_freqs.values());
    build counts (Counter) and where (defaultdict(set)) once, then per merge:
    best = max(counts, key=lambda p: (counts[p], -p[0], -p[1])) and update only the chunks
    in where.pop(best).
    """
    if num_merges < 0:
        raise ValueError(f"num_merges must be >= 0, got {num_merges}")
    merges = []
    ### BEGIN SOLUTION
    chunks = [list(w) for w in word_freqs]
    freqs = list(word_freqs.values())
    counts = Counter()
    where = defaultdict(set)
    for i, (w, f) in enumerate(zip(chunks, freqs)):
        for pair in zip(w, w[1:]):
            counts[pair] += f
            where[pair].add(i)
    for k in range(num_merges):
        if not counts:
            break
        best = max(counts, key=lambda p: (counts[p], -p[0], -p[1]))
        new_id = first_id + k
        for i in sorted(where.pop(best, ())):
            w, f = chunks[i], freqs[i]
            for pair in zip(w, w[1:]):                    # remove the chunk's old pairs
                counts[pair] -= f
                if counts[pair] <= 0:
                    del counts[pair]
            w = merge_pair(w, best, new_id)
            chunks[i] = w
            for pair in zip(w, w[1:]):                    # add its new pairs
                counts[pair] += f
                where[pair].add(i)
        counts.pop(best, None)
        merges.append(best)
    ### END SOLUTION
    return merges

# %% nbgrader={"grade": true, "grade_id": "test-train-bpe", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def _naive_train_bpe(word_freqs, num_merges, first_id):
    """The slow reference: recount every pair after every merge."""
    chunks = {tuple(w): f for w, f in word_freqs.items()}
    merges = []
    for k in range(num_merges):
        counts = Counter()
        for w, f in chunks.items():
            for pair in zip(w, w[1:]):
                counts[pair] += f
        if not counts:
            break
        best = max(counts, key=lambda p: (counts[p], -p[0], -p[1]))
        merges.append(best)
        merged = Counter()
        for w, f in chunks.items():
            merged[tuple(merge_pair(list(w), best, first_id + k))] += f
        chunks = merged
    return merges


def test_unit_train_bpe():
    """train_bpe: the worked example, ties, early stop, and agreement with the naive trainer."""
    a, b, c, d = 97, 98, 99, 100                      # ids of the letters, as in the example
    merges = train_bpe({(a, a, a, b, d, a, a, a, b, a, c): 1}, 3, first_id=1000)
    assert merges == [(a, a), (a, b), (1000, 1001)], f"worked example: got {merges}"
    # frequency counts: one chunk seen 10 times beats two chunks seen once
    merges = train_bpe({(1, 2): 10, (3, 4, 3, 4): 1}, 1, first_id=50)
    assert merges == [(1, 2)], f"got {merges}"
    # ties: smallest pair first
    assert train_bpe({(5, 6): 1, (1, 2): 1}, 1, first_id=50) == [(1, 2)]
    # early stop when every chunk is a single token
    assert train_bpe({(1, 2): 3, (7,): 2}, 10, first_id=50) == [(1, 2)]
    assert train_bpe({(1, 2): 3}, 0, first_id=50) == []
    # incremental == naive on a real-looking corpus
    rng = np.random.default_rng(0)
    corpus = {tuple(int(x) for x in rng.integers(0, 6, size=rng.integers(1, 9))): int(rng.integers(1, 20))
              for _ in range(300)}
    fast, slow = train_bpe(corpus, 40, first_id=100), _naive_train_bpe(corpus, 40, first_id=100)
    assert fast == slow, f"incremental and naive merges differ: first at index " \
        f"{next(i for i, (x, y) in enumerate(zip(fast, slow)) if x != y)}"
    print(f"train_bpe: ok ({len(fast)} merges identical to the naive trainer)")


test_unit_train_bpe()

# %% [markdown]
# ## 5. Encoding a chunk with the learned merges
#
# `ranks[(a, b)] = k` means the pair `(a, b)` was the k-th merge and became token
# `first_id + k`. To encode a chunk, repeat: among its adjacent pairs take the one with the
# **lowest rank**; if no pair has a rank, stop; otherwise merge it everywhere.
#
# ```
#   merges: 0: (t, h) -> 260    1: (260, e) -> 261    2: (' ', 261) -> 262
#   " the"  [' ', t, h, e]  pairs: ( ,t)=-  (t,h)=0  (h,e)=-    -> merge rank 0
#           [' ', 260, e]   pairs: ( ,260)=-  (260,e)=1         -> merge rank 1
#           [' ', 261]      pairs: ( ,261)=2                    -> merge rank 2
#           [262]           one token: done
# ```

# %% nbgrader={"grade": false, "grade_id": "bpe-encode-word", "locked": false, "schema_version": 3, "solution": true}
#| export
def bpe_encode_word(ids: list, ranks: dict, first_id: int) -> list:
    """Apply learned merges to one chunk's token ids (earliest merge first).

    ranks: {(a, b): k} for the k-th merge, which produced token ``first_id + k``.
    EXAMPLE: bpe_encode_word([1, 2, 3], {(1, 2): 0, (9, 3): 1}, 9) -> [10]
    HINT: best = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, inf)); stop if best
    is not in ranks; otherwise ids = merge_pair(ids, best, first_id + ranks[best]).
    """
    ids = list(ids)
    ### BEGIN SOLUTION
    inf = float("inf")
    while len(ids) >= 2:
        best = min(zip(ids, ids[1:]), key=lambda p: ranks.get(p, inf))
        rank = ranks.get(best)
        if rank is None:
            break
        ids = merge_pair(ids, best, first_id + rank)
    ### END SOLUTION
    return ids

# %% nbgrader={"grade": true, "grade_id": "test-bpe-encode-word", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_bpe_encode_word():
    """bpe_encode_word: rank order, not left-to-right order."""
    assert bpe_encode_word([1, 2, 3], {(1, 2): 0, (9, 3): 1}, 9) == [10]
    # (2, 3) was learned first, so it wins even though (1, 2) comes first in the text
    assert bpe_encode_word([1, 2, 3], {(1, 2): 1, (2, 3): 0}, 9) == [1, 9]
    assert bpe_encode_word([5], {(1, 2): 0}, 9) == [5]
    assert bpe_encode_word([], {}, 9) == []
    # replaying merges on the training chunk reproduces the worked example
    a, b, c, d = 97, 98, 99, 100
    word = [a, a, a, b, d, a, a, a, b, a, c]
    merges = train_bpe({tuple(word): 1}, 3, first_id=1000)
    ranks = {p: k for k, p in enumerate(merges)}
    assert bpe_encode_word(word, ranks, 1000) == [1002, d, 1002, a, c]
    print("bpe_encode_word: ok")


test_unit_bpe_encode_word()

# %% [markdown]
# ## 6. The BPE tokenizer (provided)
#
# Your three functions are the whole algorithm; the class below wires them to text. Its
# vocabulary:
#
# ```
#   ids 0..3        <pad> <bos> <eos> <unk>
#   ids 4..259      the 256 byte values (byte b is id 4 + b): any string is encodable
#   ids 260..       one per learned merge, in the order learned
#   vocab_size = 260 + len(merges)         train(corpus, vocab_size) learns vocab_size - 260
# ```
#
# Pre-tokenization uses one regular expression: a run of letters/digits with an optional
# leading space, a run of punctuation with an optional leading space, or whitespace. Every
# character of the text lands in exactly one chunk, so joining the chunks gives the text
# back (a Hypothesis test in `tests/text/` checks that for arbitrary strings). Encoding caches
# each distinct chunk, so a 1 MB text costs one `bpe_encode_word` per *distinct* word.
# `<unk>` is never produced: byte-level BPE has no unknown characters.

# %% nbgrader={"grade": false, "grade_id": "bpe-tokenizer", "locked": true, "schema_version": 3, "solution": false}
#| export
PRETOKENIZE = re.compile(r" ?\w+| ?[^\w\s]+|\s+(?!\S)|\s+")


def pretokenize(text: str) -> list:
    """Cut text into chunks that merges never cross; ``"".join(chunks) == text``."""
    return PRETOKENIZE.findall(text)


class BPETokenizer(Tokenizer):
    """Byte-level byte-pair encoding with the four special tokens.

    >>> tok = BPETokenizer().train("the cat sat on the mat. the end.", vocab_size=270)
    >>> tok.decode(tok.encode("the rat")) == "the rat"
    True
    """

    byte_offset = N_SPECIAL                  # id of byte 0
    base_vocab_size = N_SPECIAL + 256        # 260: specials + bytes, before any merge

    def __init__(self, merges=()):
        self.merges = [tuple(int(x) for x in m) for m in merges]
        for k, (a, b) in enumerate(self.merges):
            if not (0 <= a < self.base_vocab_size + k and 0 <= b < self.base_vocab_size + k):
                raise ValueError(f"merge {k} ({a}, {b}) uses an id that does not exist yet "
                                 f"(expected ids < {self.base_vocab_size + k})")
        self.ranks = {pair: k for k, pair in enumerate(self.merges)}
        token_bytes = [b""] * N_SPECIAL + [bytes([b]) for b in range(256)]
        for a, b in self.merges:
            token_bytes.append(token_bytes[a] + token_bytes[b])
        self.token_bytes = token_bytes               # id -> the bytes it stands for
        self._cache = {}                             # chunk -> ids

    @property
    def vocab_size(self) -> int:
        return self.base_vocab_size + len(self.merges)

    def train(self, corpus: str, vocab_size: int, verbose: bool = False) -> "BPETokenizer":
        """Learn ``vocab_size - 260`` merges from ``corpus`` (replacing any earlier ones).

        Fewer merges are learned when the corpus runs out of pairs. Returns self."""
        corpus = self._check_text(corpus)
        if vocab_size < self.base_vocab_size:
            raise ValueError(f"vocab_size must be >= {self.base_vocab_size} (4 specials + 256 bytes), got {vocab_size}")
        t0 = time.perf_counter()
        word_freqs = Counter()
        for chunk, f in Counter(pretokenize(corpus)).items():
            word_freqs[tuple(self.byte_offset + b for b in text_to_bytes(chunk))] += f
        merges = train_bpe(word_freqs, vocab_size - self.base_vocab_size, self.base_vocab_size)
        self.__init__(merges)
        if verbose:
            print(f"BPE: {len(merges)} merges from {len(corpus):,} characters "
                  f"({len(word_freqs):,} distinct chunks) in {time.perf_counter() - t0:.2f} s")
        return self

    def _encode_chunk(self, chunk: str) -> list:
        ids = self._cache.get(chunk)
        if ids is None:
            ids = bpe_encode_word([self.byte_offset + b for b in text_to_bytes(chunk)],
                                  self.ranks, self.base_vocab_size)
            if len(self._cache) > 200_000:
                self._cache.clear()
            self._cache[chunk] = ids
        return ids

    def encode(self, text: str, add_special_tokens: bool = False) -> list:
        """Token ids of ``text``; ``add_special_tokens`` wraps them in <bos> ... <eos>."""
        text = self._check_text(text)
        ids = [BOS_ID] if add_special_tokens else []
        for chunk in pretokenize(text):
            ids.extend(self._encode_chunk(chunk))
        if add_special_tokens:
            ids.append(EOS_ID)
        return ids

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        """Text of ``ids``; specials appear as ``"<bos>"`` etc. unless skipped."""
        out, pending = [], bytearray()
        for i in self._check_ids(ids):
            if i >= N_SPECIAL:
                pending += self.token_bytes[i]
                continue
            if pending:
                out.append(bytes_to_text(pending))
                pending = bytearray()
            if not skip_special_tokens:
                out.append(SPECIAL_TOKENS[i])
        if pending:
            out.append(bytes_to_text(pending))
        return "".join(out)

    def token_str(self, i: int) -> str:
        """A readable form of token ``i`` (for tables and debugging)."""
        i = self._check_ids([i])[0]
        return SPECIAL_TOKENS[i] if i < N_SPECIAL else bytes_to_text(self.token_bytes[i])

    def to_dict(self) -> dict:
        return {"merges": [list(m) for m in self.merges]}

    @classmethod
    def from_dict(cls, d: dict) -> "BPETokenizer":
        return cls(d["merges"])

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)})"

# %% [markdown]
# ### A corpus to measure on
#
# The measurement below uses the Tiny Shakespeare corpus (1.1 MB) when the directory named
# by the environment variable `TINYTORCH_DATA` holds `text/tinyshakespeare.txt`, and the
# short built-in text below otherwise (results are then much less interesting, but the
# code runs anywhere).

# %% nbgrader={"grade": false, "grade_id": "corpus", "locked": true, "schema_version": 3, "solution": false}
#| export
SAMPLE_TEXT = """\
A tokenizer turns text into a list of integers, and a language model only ever sees those
integers. The choice looks small and is not. Give every character its own id and the
vocabulary stays tiny, but a sentence becomes a long sequence, and the cost of attention
grows with the square of its length. Give every word its own id and sentences become
short, but the vocabulary grows without end, and a word that was never seen in training
has no id at all. Byte-pair encoding sits between the two. It starts from the bytes of the
text, counts which neighbouring pair occurs most often, and glues that pair into a new
token. Then it counts again, and glues again, until the vocabulary has the size we asked
for. Frequent words end up as single tokens; rare words fall apart into frequent pieces;
and since every string is made of bytes, nothing is ever unknown. The merges are learned
once, by counting, before the network exists, and they never change during training.
"""


def load_text_corpus(max_chars=None):
    """(text, source): Tiny Shakespeare from ``$TINYTORCH_DATA/text/tinyshakespeare.txt``
    when present, else the built-in ``SAMPLE_TEXT``. ``max_chars`` truncates."""
    root = os.environ.get("TINYTORCH_DATA")
    path = Path(root, "text", "tinyshakespeare.txt") if root else None
    if path is not None and path.is_file():
        text, source = path.read_text(encoding="utf-8"), "tinyshakespeare.txt"
    else:
        text, source = SAMPLE_TEXT, "built-in sample text (set TINYTORCH_DATA for Tiny Shakespeare)"
    return (text[:max_chars] if max_chars else text), source

# %% nbgrader={"grade": true, "grade_id": "test-module", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_module():
    """Both tokenizers end to end: training, round trips, specials, save/load."""
    import tempfile
    corpus, _ = load_text_corpus(max_chars=20_000)
    bpe = BPETokenizer().train(corpus, vocab_size=300)
    assert 260 < bpe.vocab_size <= 300, f"expected 260 < vocab_size <= 300, got {bpe.vocab_size}"
    char = CharTokenizer().train(corpus)
    tricky = ["", " ", "  two  spaces ", "new\nlines\r\n", "caf\u00e9 na\u00efve \u4e2d\u6587 \U0001F600",
              "<bos> is text here", "\x00\x7f", "\ud800 lone surrogate", corpus[:500]]
    for tok in (char, bpe):
        for s in tricky:
            ids = tok.encode(s)
            assert all(isinstance(i, int) and 0 <= i < tok.vocab_size for i in ids), f"{tok}: bad ids for {s!r}"
            assert tok.decode(ids) == s, f"{tok}: round trip broke for {s!r}: got {tok.decode(ids)!r}"
            wrapped = tok.encode(s, add_special_tokens=True)
            assert wrapped[0] == BOS_ID and wrapped[-1] == EOS_ID and wrapped[1:-1] == ids
            assert tok.decode(wrapped, skip_special_tokens=True) == s
        assert UNK_ID not in tok.encode("\u00e9\u00e8\U0001F600"), f"{tok}: lossless tokenizers never emit <unk>"
    # BPE compresses its own training text
    assert len(bpe.encode(corpus)) < len(char.encode(corpus)), "BPE should need fewer tokens than characters"
    # save / load round trip
    with tempfile.TemporaryDirectory() as d:
        for tok in (char, bpe):
            path = Path(d) / f"{type(tok).__name__}.json"
            tok.save(path)
            again = load_tokenizer(path)
            assert type(again) is type(tok) and again.vocab_size == tok.vocab_size
            assert again.encode(corpus[:2000]) == tok.encode(corpus[:2000])
        try:
            CharTokenizer.load(Path(d) / "BPETokenizer.json")
        except ValueError:
            pass
        else:
            raise AssertionError("CharTokenizer.load of a BPE file must raise ValueError")
    print(f"test_module: ok ({char}, {bpe})")


test_module()

# %% [markdown]
# ## 7. Systems measurement: vocabulary size vs sequence length vs embedding parameters
#
# Every tokenizer is a point on one trade-off:
#
# ```
#   bigger vocabulary V  ->  fewer tokens T per text   ->  attention cost ~ T^2 falls
#                        ->  embedding table V x d     ->  parameters and memory rise
#                            (and the output layer, d x V, rises the same again)
# ```
#
# Below, the learner's own tokenizers are trained on the first 90% of the corpus and
# measured on the held-out last 10%: tokens needed, characters per token, how many
# characters a 64-token context window covers, and the size of a `V x 128` float32
# embedding table (allocated and measured with `nbytes`). BPE training time is measured
# too. Everything printed is computed by the code you just wrote.

# %%
text, source = load_text_corpus()
split = int(0.9 * len(text))
train_text, held_out = text[:split], text[split:]
train_slice = train_text[:100_000]          # BPE trains on ~100 KB: seconds, not minutes
EMBED_DIM, CONTEXT = 128, 64
print(f"corpus: {source}: {len(text):,} characters; training BPE on {len(train_slice):,}, "
      f"measuring on {len(held_out):,} held-out characters")

tokenizers = [("char (no fallback)", CharTokenizer(byte_fallback=False).train(train_text), 0.0),
              ("char + byte fallback", CharTokenizer().train(train_text), 0.0)]
for target in (300, 512, 1024):
    t0 = time.perf_counter()
    tok = BPETokenizer().train(train_slice, vocab_size=target)
    tokenizers.append((f"BPE {target}", tok, time.perf_counter() - t0))

print(f"\n{'tokenizer':<22}{'vocab':>7}{'train s':>9}{'tokens':>10}{'chars/tok':>10}"
      f"{'chars/ctx':>10}{'emb params':>12}{'emb MB':>8}{'unk':>6}")
rows = []
for name, tok, seconds in tokenizers:
    ids = tok.encode(held_out)
    table = np.zeros((tok.vocab_size, EMBED_DIM), dtype=np.float32)   # (V, d) embedding table
    chars_per_tok = len(held_out) / max(len(ids), 1)
    rows.append((name, tok.vocab_size, len(ids), table.size, table.nbytes))
    print(f"{name:<22}{tok.vocab_size:>7}{seconds:>9.2f}{len(ids):>10,}{chars_per_tok:>10.2f}"
          f"{chars_per_tok * CONTEXT:>10.0f}{table.size:>12,}{table.nbytes / 1e6:>8.3f}{ids.count(UNK_ID):>6}")
    assert tok.decode(ids) == held_out or UNK_ID in ids

base, best = rows[0], rows[-1]
print(f"\n{best[0]} vs {base[0]}: {base[2] / best[2]:.2f}x fewer tokens "
      f"(attention ~T^2: {(base[2] / best[2]) ** 2:.1f}x less), "
      f"{best[3] / base[3]:.1f}x more embedding parameters")

line = max(held_out.splitlines()[:40], key=len).strip()      # a long line near the start
print(f"\nhow each BPE vocabulary cuts a held-out line ({len(line)} characters):")
for name, tok, _ in tokenizers[2:]:
    pieces = [tok.token_str(i) for i in tok.encode(line)]
    print(f"  {name:<10}{len(pieces):>4} tokens  " + "|".join(pieces))

# %% [markdown]
# A second measurement: why incremental pair counts matter. The naive trainer from the
# test cell (recount everything after every merge) against your `train_bpe`, on the same
# chunks and the same number of merges; the merges must be identical.

# %%
chunks = Counter()
for chunk, f in Counter(pretokenize(train_text[:30_000])).items():
    chunks[tuple(4 + b for b in text_to_bytes(chunk))] += f
n_merges = 150
t0 = time.perf_counter(); fast = train_bpe(chunks, n_merges, 260); t_fast = time.perf_counter() - t0
t0 = time.perf_counter(); slow = _naive_train_bpe(chunks, n_merges, 260); t_slow = time.perf_counter() - t0
assert fast == slow
print(f"{len(fast)} merges on {len(chunks):,} distinct chunks: naive {t_slow:.3f} s, "
      f"incremental {t_fast:.3f} s ({t_slow / max(t_fast, 1e-9):.1f}x faster), identical merges")
sample = BPETokenizer(fast)
print("first merges learned:", ", ".join(repr(sample.token_str(260 + k)) for k in range(12)))

# %% [markdown]
# ## Reflect
#
# 1. In the table above, BPE 1024 needs fewer tokens than the character tokenizer for the
#    same held-out text. If a model's attention costs `O(T^2)` in memory, what factor does
#    that ratio buy you at a fixed context of 64 tokens, and what does it cost in
#    embedding-table bytes at `d = 128`? At `d = 768` (GPT-2 small)?
# 2. GPT-2's vocabulary has 50,257 tokens and `d = 768`. Compute its embedding table in
#    float32 MB. The output layer has the same shape again (unless weights are tied). What
#    fraction of a 124 M-parameter model is that?
# 3. Byte fallback added 256 rows to the character vocabulary. Most of them never appear
#    in Shakespeare. What do those rows cost in memory, and what do they cost in the
#    softmax at every generation step? Would you switch fallback off for milestone 5?
# 4. BPE was trained here on 100 KB. What happens to merges learned on Shakespeare when
#    the tokenizer meets Python source code or Chinese text? Which measurement in the
#    table would change, and which guarantee (round trip) would not?
# 5. Your trainer scans all pair counts to pick the best pair: `O(P)` per merge. With
#    `P = 50,000` pairs and 50,000 merges, how many steps is that? What data structure
#    makes each step `O(log P)`, and what makes it awkward (hint: counts go *down*, too)?
