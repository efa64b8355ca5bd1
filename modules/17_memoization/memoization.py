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
# # Module 17: Memoization (KV cache)
#
# Your GPT writes text one token at a time, and for every new token module 13's `generate` runs
# the *whole* context through the model again. Token 500 recomputes the keys and values of the
# 499 tokens before it, which were already computed for token 499, and for 498, and so on: the
# work per token grows with the length, and the total work of a generation grows with its
# square. Yet those keys and values never change (a causal model never lets an early token see
# a later one). Remember them, and each new token costs one token's work. This is memoization,
# the oldest trick in computing, applied to attention: the **KV cache**, which every production
# language model server uses. You build it on your own GPT without changing a line of module 13,
# prove that it gives the same tokens and the same logits, measure its memory against the
# formula, and measure the speed-up (the full-size figure with module 19's harness). Then you
# find that a cached step is no longer arithmetic but Python overhead, and remove most of it
# the way inference engines do: pack the weights once and run each step on bare arrays with
# the kernels you already wrote.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far                        you build now                      this unlocks
#   ------------                        -------------                      ------------
#   12 MultiHeadAttention: q, k, v -->  KVCache: per-layer keys and  -->   20 capstone: the speed
#      projections, causal mask           values, preallocated               track's generation
#   13 GPT, generate(): the whole  -->  cached_causal_mask(offset, t) -->  milestone 6: >= 10x
#      context again for each token     forward_cached: positions          faster generation
#   14 count_flops, profile_memory -->    offset, one token per step
#      instrument (op counts)           CachedModel, generate_cached
#                                       memory = 2 x L x T x C x 4 bytes
#                                       FusedDecoder: weights packed once,
#                                         q|k|v in one GEMM, kernels on arrays
#                                       generate(..., use_cache=True)
# ```

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp generation.kv_cache
#| export
import weakref

import numpy as np

from tinytorch.core.attention import ScaledDotProductAttention, causal_mask, scaled_dot_product_attention
from tinytorch.core.autograd import GELUFn, no_grad
from tinytorch.core.tensor import Tensor, _wrap

# %% [markdown]
# ## 1. Where the work goes without a cache
#
# One step of `generate` with a context of T tokens runs every layer on all T positions:
#
# ```
#   step t (context T = t tokens)           per layer, per sequence
#   ------------------------------          ------------------------------------------
#   q, k, v, out projections                4 x (T x C x C) multiply-adds
#   MLP (C -> 4C -> C)                      8 x (T x C x C)
#   scores q k^T and weights @ v            2 x (T x T x C)
# ```
#
# Only the *last* position's logits are used. With a cache, step t computes q, k, v for the one
# new token, appends k and v to the stored ones, and lets the single query attend to all t keys:
#
# ```
#   cached step t                           per layer, per sequence
#   projections + MLP of 1 token            12 x (1 x C x C)
#   one query against t keys                2 x (1 x t x C)
# ```
#
# Worked numbers for the speed benchmark's model (4 layers, C = 128, context 512), at the last
# step (t = 512): without the cache 4 x (12 x 512 x 128^2 + 2 x 512^2 x 128) = 671 M multiply-adds;
# with it 4 x (12 x 128^2 + 2 x 512 x 128) = 1.3 M, about 500 times fewer. Module 14's
# `count_flops` counts it on a small GPT (2 FLOPs per multiply-add):
# %%
from tinytorch.models.transformer import GPT
from tinytorch.profiling.profiler import count_flops

small = GPT(vocab_size=20, block_size=64, n_layer=2, n_head=2, n_embd=32, seed=0)
for T in (8, 16, 32, 64):
    f = count_flops(small, np.zeros((1, T), dtype=np.int64)).flops
    print(f"forward of {T:>2} tokens (what step {T} recomputes without a cache): {f / 1e6:6.2f} MFLOP "
          f"({f / T / 1e3:5.1f} kFLOP per token)")

# %% [markdown]
# The FLOPs per token grow with T (the attention term), and a generation of n tokens without a
# cache does the sum of all of them: O(n^2) projection work and O(n^3) attention work. With the
# cache: O(n) and O(n^2), with a much smaller constant.
#
# ## 2. The cache: preallocated keys and values
#
# Each layer keeps the keys and values of every token seen so far, shaped like attention needs
# them: `(B, H, t, D)` with `H x D = C`. Appending with `np.concatenate` would copy the whole
# cache at every step (O(n^2) bytes copied over a generation); instead the cache allocates
# room for `max_len` tokens once and writes each new token in place:
#
# ```
#   keys[layer]   (B, H, max_len, D)     length = 5 tokens written so far
#                  t=0 t=1 t=2 t=3 t=4 | t=5 ... (empty) ... max_len-1
#   update(layer, k_new (B, H, 2, D))    writes slots 5 and 6, returns keys[layer][:, :, :7]
#   advance(2)                            length = 7 (once every layer has written)
# ```
#
# `update` returns *views* of the filled part (no copy). `advance` is separate from `update`
# because all layers write at the same offset during one forward pass; the length moves on
# once, at the end.

# %% nbgrader={"grade": false, "grade_id": "kv-cache", "locked": false, "schema_version": 3, "solution": true}
#| export
class KVCache:
    """KVCache(n_layer, batch_size, n_head, head_dim, max_len): room for ``max_len`` tokens.

    ``keys`` and ``values`` are float32 arrays (n_layer, B, H, max_len, D), allocated once as
    the two halves of ``kv`` (2, n_layer, B, H, max_len, D);
    ``length`` is the number of tokens stored. ``update(layer, k, v)`` writes k, v (B, H, t, D)
    at positions length..length+t-1 of that layer and returns the views (B, H, length+t, D) of
    keys and values; ``advance(t)`` moves ``length`` on after all layers have written.
    """

    def __init__(self, n_layer: int, batch_size: int, n_head: int, head_dim: int, max_len: int,
                 dtype=np.float32):
        for label, value in (("n_layer", n_layer), ("batch_size", batch_size), ("n_head", n_head),
                             ("head_dim", head_dim), ("max_len", max_len)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"KVCache: {label} must be a positive int, got {value!r}")
        self.n_layer, self.max_len = int(n_layer), int(max_len)
        shape = (int(n_layer), int(batch_size), int(n_head), int(max_len), int(head_dim))
        self.kv = np.zeros((2,) + shape, dtype=dtype)           # keys and values in one block,
        self.keys, self.values = self.kv                        # seen as two views of shape `shape`
        self.length = 0

    def update(self, layer: int, k: np.ndarray, v: np.ndarray):
        """Write k, v (B, H, t, D) after the stored tokens of ``layer``; return all of them.

        EXAMPLE: with length 5, update(0, k, v) with t = 2 fills slots 5 and 6 of layer 0 and
                 returns keys[0, :, :, :7], values[0, :, :, :7] (views, not copies).
        HINT: end = self.length + t; refuse end > self.max_len with a ValueError that says the
              cache is full; slice assignment self.keys[layer, :, :, self.length:end] = k.
        """
        k, v = np.asarray(k), np.asarray(v)
        if not 0 <= layer < self.n_layer:
            raise IndexError(f"KVCache has {self.n_layer} layers, got layer {layer}")
        if k.shape != v.shape or k.ndim != 4 or k.shape[:2] != self.keys.shape[1:3] or k.shape[3] != self.keys.shape[4]:
            want = self.keys.shape[1:3] + ("t",) + self.keys.shape[4:]
            raise ValueError(f"KVCache.update expected k and v of shape {want}, got {k.shape} and {v.shape}")
        ### BEGIN SOLUTION
        end = self.length + k.shape[2]
        if end > self.max_len:
            raise ValueError(f"KV cache full: {self.length} tokens stored + {k.shape[2]} new > max_len "
                             f"{self.max_len}")
        self.keys[layer, :, :, self.length:end] = k
        self.values[layer, :, :, self.length:end] = v
        return self.keys[layer, :, :, :end], self.values[layer, :, :, :end]
        ### END SOLUTION

    def advance(self, t: int) -> None:
        """The t tokens just written by every layer now count as stored."""
        if self.length + t > self.max_len:
            raise ValueError(f"KV cache full: cannot advance {t} past max_len {self.max_len}")
        self.length += int(t)

    def reset(self) -> None:
        """Forget every token (the memory stays allocated for the next sequence)."""
        self.length = 0

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.values.nbytes


# %% nbgrader={"grade": true, "grade_id": "test-kv-cache", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_kv_cache():
    """update writes at the current length, returns views of everything stored, refuses overflow."""
    rng = np.random.default_rng(0)
    cache = KVCache(n_layer=2, batch_size=1, n_head=2, head_dim=3, max_len=4)
    k1, v1 = rng.standard_normal((2, 1, 2, 2, 3)).astype(np.float32)
    ka, va = cache.update(0, k1, v1)
    assert ka.shape == (1, 2, 2, 3) and va.shape == (1, 2, 2, 3), (ka.shape, va.shape)
    np.testing.assert_array_equal(ka, k1)
    np.testing.assert_array_equal(va, v1)
    assert cache.length == 0, "update must not move the length: advance does, after every layer"
    cache.update(1, k1 * 2, v1 * 2)
    cache.advance(2)
    k2, v2 = rng.standard_normal((2, 1, 2, 1, 3)).astype(np.float32)
    ka, va = cache.update(0, k2, v2)
    assert ka.shape == (1, 2, 3, 3), f"after 2 stored + 1 new, expected 3 keys, got {ka.shape}"
    np.testing.assert_array_equal(ka[:, :, :2], k1)
    np.testing.assert_array_equal(ka[:, :, 2:], k2)
    np.testing.assert_array_equal(va[:, :, 2:], v2)
    np.testing.assert_array_equal(cache.keys[1, :, :, :2], k1 * 2)
    cache.advance(1)
    try:
        cache.update(0, np.zeros((1, 2, 2, 3), np.float32), np.zeros((1, 2, 2, 3), np.float32))
    except ValueError as e:
        assert "full" in str(e), str(e)
    else:
        raise AssertionError("writing 2 tokens into a cache with 1 free slot must raise ValueError")
    ### BEGIN HIDDEN TESTS
    assert cache.nbytes == 2 * 2 * 1 * 2 * 4 * 3 * 4
    cache.reset()
    assert cache.length == 0 and cache.update(0, k2, v2)[0].shape == (1, 2, 1, 3)
    ### END HIDDEN TESTS


test_unit_kv_cache()

# %% [markdown]
# ## 3. The causal mask when the queries start late
#
# Without a cache, a sequence of T tokens has T queries and T keys, and query i may see keys
# 0..i: `causal_mask(T)` of module 12. With a cache, a forward pass brings t *new* tokens at
# absolute positions `offset .. offset + t - 1` (offset = tokens already stored), and they
# attend to all `offset + t` keys. New query i sits at position offset + i and may see keys
# 0 .. offset + i:
#
# ```
#   offset = 3, t = 2            keys 0 1 2 3 4
#   query at position 3    ->         1 1 1 1 0
#   query at position 4    ->         1 1 1 1 1
# ```
#
# The prefill (offset 0, t = T) is the ordinary causal mask; a single new token (t = 1) sees
# everything, so no mask is needed at all.

# %% nbgrader={"grade": false, "grade_id": "cached-mask", "locked": false, "schema_version": 3, "solution": true}
#| export
def cached_causal_mask(offset: int, t: int) -> np.ndarray:
    """Boolean (t, offset + t) mask: True where new query i (position offset + i) may attend to
    key j, i.e. j <= offset + i.

    EXAMPLE: cached_causal_mask(0, 3) == causal_mask(3); cached_causal_mask(3, 1) is all True.
    HINT: compare np.arange(offset + t)[None, :] with (offset + np.arange(t))[:, None].
    """
    if offset < 0 or t < 1:
        raise ValueError(f"cached_causal_mask needs offset >= 0 and t >= 1, got offset={offset}, t={t}")
    ### BEGIN SOLUTION
    return np.arange(offset + t)[None, :] <= (offset + np.arange(t))[:, None]
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-cached-mask", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_cached_causal_mask():
    """The prefill mask is module 12's causal mask; later queries see every earlier key."""
    m = cached_causal_mask(3, 2)
    assert m.shape == (2, 5) and m.dtype == bool, (m.shape, m.dtype)
    np.testing.assert_array_equal(m, [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(cached_causal_mask(0, 4), causal_mask(4))
    assert cached_causal_mask(7, 1).all() and cached_causal_mask(7, 1).shape == (1, 8)
    ### BEGIN HIDDEN TESTS
    full = causal_mask(9)
    np.testing.assert_array_equal(cached_causal_mask(5, 4), full[5:9, :9])
    ### END HIDDEN TESTS


test_unit_cached_causal_mask()

# %% [markdown]
# ## 4. A forward pass that remembers
#
# `forward_cached(model, idx, cache)` runs module 13's GPT on the t *new* tokens `idx` (B, t),
# reusing its layers (the same `Linear`, `LayerNorm` and `MLP` objects, so the same weights):
#
# ```
#   positions    offset .. offset+t-1        (not 0 .. t-1: the new tokens come after the stored)
#   x            tok_emb(idx) + pos_emb(positions)                            (B, t, C)
#   each block   h = ln1(x)
#                q, k, v = projections of h, split into heads             (B, H, t, D)
#                k_all, v_all = cache.update(layer, k, v)                 (B, H, offset+t, D)
#                x = x + out_proj(attention(q, k_all, v_all, cached mask))
#                x = x + mlp(ln2(x))
#   then         cache.advance(t); logits = lm_head(ln_f(x))                  (B, t, V)
# ```
#
# `attend_cached` is the attention half of one block; `forward_cached` embeds, runs the blocks
# and the head. Both use only what the layers already have: module 13 is not changed.

# %% nbgrader={"grade": false, "grade_id": "forward-cached", "locked": false, "schema_version": 3, "solution": true}
#| export
def attend_cached(attn, x: Tensor, cache: KVCache, layer: int) -> Tensor:
    """Module 12's MultiHeadAttention ``attn`` on new tokens x (B, t, C), with the keys and values
    of earlier tokens from ``cache`` (and this call's written to it). Returns (B, t, C).

    HINT: the projections and head split of MultiHeadAttention.forward (Linear takes (B, t, C)
          as it is: no need to flatten to 2-D without a backward pass), then
          k_all, v_all = cache.update(layer, k.data, v.data); mask = None if t == 1 else
          cached_causal_mask(cache.length, t); scaled_dot_product_attention(q, Tensor(k_all),
          Tensor(v_all), mask=mask); merge the heads and apply out_proj.
    """
    B, t, C = x.shape
    H, D = attn.num_heads, attn.head_dim
    ### BEGIN SOLUTION
    q = attn.q_proj(x).reshape(B, t, H, D).transpose(1, 2)     # (B, H, t, D)
    k = attn.k_proj(x).reshape(B, t, H, D).transpose(1, 2)     # (B, H, t, D)
    v = attn.v_proj(x).reshape(B, t, H, D).transpose(1, 2)     # (B, H, t, D)
    k_all, v_all = cache.update(layer, k.data, v.data)          # (B, H, offset+t, D) each
    mask = None if t == 1 else cached_causal_mask(cache.length, t)   # (t, offset+t)
    y = scaled_dot_product_attention(q, Tensor(k_all), Tensor(v_all), mask=mask)   # (B, H, t, D)
    y = y.transpose(1, 2).reshape(B, t, C)                      # (B, t, C)
    return attn.out_proj(y)                                     # (B, t, C)
    ### END SOLUTION


def forward_cached(model, idx, cache: KVCache) -> Tensor:
    """Logits (B, t, V) of the new tokens ``idx`` (B, t) of a GPT, after the ``cache.length``
    tokens already in ``cache``; writes their keys and values and advances the cache.

    HINT: positions np.arange(cache.length, cache.length + t); for each block:
          x = x + attend_cached(block.attn, block.ln1(x), cache, i); x = x + block.mlp(block.ln2(x));
          then cache.advance(t), model.ln_f and model.lm_head.
    """
    idx = np.asarray(idx.data if isinstance(idx, Tensor) else idx)
    if idx.ndim != 2:
        raise ValueError(f"forward_cached expected token ids of shape (B, t), got {idx.shape}")
    B, t = idx.shape
    if cache.length + t > model.block_size:
        raise ValueError(f"{cache.length} cached + {t} new tokens exceed the model's context "
                         f"(block_size {model.block_size}): positions past it have no embedding")
    ### BEGIN SOLUTION
    start = cache.length
    x = model.tok_emb(idx) + model.pos_emb(np.arange(start, start + t))   # (B, t, C)
    for i, block in enumerate(model.blocks):
        x = x + attend_cached(block.attn, block.ln1(x), cache, i)         # (B, t, C)
        x = x + block.mlp(block.ln2(x))                                   # (B, t, C)
    cache.advance(t)
    return model.lm_head(model.ln_f(x))                                   # (B, t, V)
    ### END SOLUTION


def new_cache(model, batch_size: int, max_len: int = None) -> KVCache:
    """An empty KVCache shaped for ``model`` (a GPT), room for max_len (default block_size) tokens."""
    n_head = model.blocks[0].attn.num_heads
    return KVCache(model.n_layer, batch_size, n_head, model.n_embd // n_head,
                   model.block_size if max_len is None else max_len)


# %% nbgrader={"grade": true, "grade_id": "test-forward-cached", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_forward_cached():
    """Prefill, then one token at a time: the logits are those of the full forward pass."""
    from tinytorch.testing import assert_tensor

    model = GPT(vocab_size=11, block_size=12, n_layer=2, n_head=2, n_embd=16, seed=1)
    ids = np.random.default_rng(0).integers(0, 11, (2, 9))          # (B, T)
    with no_grad():
        full = model(ids).data                                       # (2, 9, 11)
        cache = new_cache(model, batch_size=2)
        first = forward_cached(model, ids[:, :5], cache)             # prefill 5 tokens
        assert_tensor(first, (2, 5, 11), np.float32)
        assert cache.length == 5, f"after a prefill of 5 tokens the cache holds {cache.length}"
        np.testing.assert_allclose(first.data, full[:, :5], atol=1e-5, rtol=1e-5)
        for t in range(5, 9):                                        # then one token at a time
            step = forward_cached(model, ids[:, t:t + 1], cache)
            assert_tensor(step, (2, 1, 11), np.float32)
            np.testing.assert_allclose(step.data[:, 0], full[:, t], atol=1e-5, rtol=1e-5,
                                       err_msg=f"token {t}: cached logits differ from the full pass "
                                               "(positions offset? mask? keys of earlier tokens?)")
        assert cache.length == 9
        two = forward_cached(model, ids[:, :2], new_cache(model, 2))  # a 2-token chunk after 0
        np.testing.assert_allclose(two.data, full[:, :2], atol=1e-5, rtol=1e-5)
    ### BEGIN HIDDEN TESTS
    with no_grad():
        cache = new_cache(model, batch_size=2)
        forward_cached(model, ids[:, :3], cache)
        chunk = forward_cached(model, ids[:, 3:7], cache)            # a chunk of 4 after 3 stored
        np.testing.assert_allclose(chunk.data, full[:, 3:7], atol=1e-5, rtol=1e-5)
    ### END HIDDEN TESTS


test_unit_forward_cached()

# %% [markdown]
# ## 5. `generate(..., use_cache=True)`: memoizing the model
#
# (Once this module is exported, module 13's `GPT.generate(..., use_cache=True)` calls the
# `generate_cached` you write here; inside the lesson we call `generate_cached` directly.)
#
# Module 13's `generate` calls `model(ctx)` with the whole context and reads the last
# position's logits. The cache can stand in for the model: a callable that remembers which
# tokens it has already seen, runs `forward_cached` on the new ones only, and hands back their
# logits. The sampling code (greedy, temperature, top-k, the seeded random numbers) stays
# module 13's, untouched, so with and without the cache the *same* code picks the tokens:
#
# ```
#   generate(model, ...)        ctx (B, T) --> model(ctx)               --> logits[:, -1]
#   generate(memo, ...)         ctx (B, T) --> memo: ctx[:, :stored] is what I saw? then
#                                              forward_cached(ctx[:, stored:]) --> logits[:, -1]
# ```
#
# **When the sequence outgrows the context.** The GPT has a position embedding for positions
# 0 .. block_size - 1 only. Past that, `generate` slides the window: the context is the last
# block_size tokens, so every token moves one position to the left, and its stored keys and
# values (computed with its *old* position's embedding) are stale. This cache then **re-prefills**:
# when the context it is given does not start with the tokens it stored, it empties itself and
# runs the whole context again. The tokens stay identical to the uncached ones, and past the
# context every step costs a full forward pass, as without the cache. (Models with relative
# positions, such as rotary embeddings, can keep their cache while the window slides; ours
# cannot.) Use `max_new_tokens <= block_size - prompt length` to stay on the fast path.

# %% nbgrader={"grade": false, "grade_id": "memo", "locked": false, "schema_version": 3, "solution": true}
#| export
class CachedModel:
    """A GPT behind a KV cache, called like the model: ``memo(ctx)`` returns logits whose last
    position is the model's for that context, computing only tokens it has not seen."""

    def __init__(self, model, batch_size: int, max_len: int = None):
        self.model = model
        self.block_size = model.block_size
        self.cache = new_cache(model, batch_size, max_len)
        self.seen = np.zeros((batch_size, 0), dtype=np.int64)   # (B, stored) the ids in the cache
        self.prefills = 0                                       # how often the whole context ran

    def __call__(self, ctx) -> Tensor:
        """Logits (B, new, V) of the tokens of ctx (B, T) after the longest stored prefix.

        HINT: stored = self.cache.length; if ctx is not longer than stored or
              ctx[:, :stored] differs from self.seen: reset the cache (and count a prefill);
              then forward_cached on ctx[:, stored:] and remember ctx in self.seen.
        """
        ctx = token_ids(ctx, self.seen.shape[0], getattr(self.model, "vocab_size", None))
        if ctx.shape[1] > self.cache.max_len:               # refused before the cache is touched
            raise ValueError(f"a context of {ctx.shape[1]} tokens exceeds the cache's {self.cache.max_len} "
                             f"(the model's context is {self.block_size}): crop it, as generate does")
        ### BEGIN SOLUTION
        stored = self.cache.length
        if ctx.shape[1] <= stored or not np.array_equal(ctx[:, :stored], self.seen):
            self.cache.reset()
            stored = 0
        if stored == 0:
            self.prefills += 1
        logits = self.forward_new(ctx[:, stored:])                       # (B, new, V)
        self.seen = ctx.copy()
        return logits
        ### END SOLUTION

    def forward_new(self, ids: np.ndarray) -> Tensor:
        """Logits of the new tokens ``ids`` (B, t) after the cached ones (the cache advances).
        Section 9's FusedDecoder keeps ``__call__`` and replaces only this."""
        return forward_cached(self.model, ids, self.cache)


def token_ids(ctx, batch_size: int = None, vocab_size: int = None) -> np.ndarray:
    """ctx (a Tensor, array or nested list of integer ids) as an int64 array (B, T), checked
    before anything is computed: integers (1.7 is not a token), 2-D with T >= 1, B ==
    batch_size and every id in [0, vocab_size) when those are given."""
    arr = np.asarray(ctx.data if isinstance(ctx, Tensor) else ctx)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"token ids must be integers, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] < 1 or (batch_size is not None and arr.shape[0] != batch_size):
        want = "B" if batch_size is None else batch_size
        raise ValueError(f"expected token ids of shape ({want}, T) with T >= 1, got {arr.shape}")
    if vocab_size is not None and arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        raise IndexError(f"token ids must be in [0, {vocab_size}), got {arr.min()}..{arr.max()}")
    return arr.astype(np.int64, copy=False)


def generate_cached(model, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int = None,
                    seed=None, decoder=None) -> np.ndarray:
    """Module 13's generate, with the model replaced by a CachedModel (or ``decoder``, a class
    called like it, such as section 9's FusedDecoder): same tokens, same sampling, one token of
    work per step while the sequence fits in the context."""
    from tinytorch.models.transformer import generate
    idx = np.asarray(idx.data if isinstance(idx, Tensor) else idx)
    idx = token_ids(idx[None, :] if idx.ndim == 1 else idx, vocab_size=getattr(model, "vocab_size", None))
    memo = (decoder or CachedModel)(model, batch_size=idx.shape[0],
                                    max_len=min(model.block_size, idx.shape[1] + max(0, int(max_new_tokens))))
    return generate(memo, idx, max_new_tokens, temperature=temperature, top_k=top_k, seed=seed)


# %% nbgrader={"grade": true, "grade_id": "test-memo", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_generate_cached():
    """Greedy and seeded sampling give the same tokens as without the cache, including past the
    context (a re-prefill), and the model is called once per token on the fast path."""
    model = GPT(vocab_size=13, block_size=16, n_layer=2, n_head=2, n_embd=16, seed=3)
    prompt = np.random.default_rng(1).integers(0, 13, (2, 4))
    plain = model.generate(prompt, 12, temperature=0)
    cached = generate_cached(model, prompt, 12, temperature=0)
    assert cached.dtype == np.int64 and cached.shape == (2, 16), (cached.dtype, cached.shape)
    np.testing.assert_array_equal(cached, plain, err_msg="greedy tokens differ with the cache")
    a = model.generate(prompt, 12, temperature=1.0, top_k=5, seed=7)
    b = generate_cached(model, prompt, 12, temperature=1.0, top_k=5, seed=7)
    np.testing.assert_array_equal(b, a, err_msg="seeded sampling differs with the cache")
    long_plain = model.generate(prompt, 20, temperature=0)             # 4 + 20 > 16: window slides
    long_cached = generate_cached(model, prompt, 20, temperature=0)
    np.testing.assert_array_equal(long_cached, long_plain, err_msg="past the context (re-prefill)")
    memo = CachedModel(model, batch_size=2)
    with no_grad():
        out = memo(prompt)
        assert out.shape == (2, 4, 13) and memo.prefills == 1, (out.shape, memo.prefills)
        nxt = np.concatenate([prompt, prompt[:, :1]], axis=1)
        assert memo(nxt).shape == (2, 1, 13), "a context one token longer must compute one token"
        assert memo.prefills == 1 and memo.cache.length == 5
        other = np.concatenate([nxt, nxt[:, :1]], axis=1)          # longer, but a different start
        other[:, 0] = (other[:, 0] + 1) % 13
        np.testing.assert_allclose(memo(other).data[:, -1], model(other).data[:, -1], atol=1e-5)
        assert memo.prefills == 2, "a context that does not extend the stored one must re-prefill"
    ### BEGIN HIDDEN TESTS
    np.testing.assert_array_equal(generate_cached(model, prompt[0], 5, temperature=0),
                                  model.generate(prompt[:1], 5, temperature=0))
    ### END HIDDEN TESTS


test_unit_generate_cached()

# %% [markdown]
# ## 6. What the cache costs: memory
#
# Every layer stores a key and a value vector of C numbers for every token of every sequence:
#
# ```
#   bytes = 2 (k and v) x layers x batch x tokens x C x 4 (float32)
#   the benchmark's GPT: 2 x 4 x 1 x 512 x 128 x 4 = 2,097,152 bytes = 2 MiB per sequence
#   a 7B model (32 layers, C = 4096, fp16: 2 bytes) at 4,096 tokens: 2 x 32 x 4096 x 4096 x 2 = 2 GiB
# ```
#
# That is why the cache, not the weights, limits how many users a language-model server can
# serve at once. Measured with module 14's `profile_memory` (tracemalloc sees NumPy's
# allocations):

# %%
from tinytorch.profiling.profiler import profile_memory

for layers, batch, tokens, dims, heads in ((4, 1, 512, 128, 4), (2, 8, 64, 32, 2)):
    mem = profile_memory(lambda: KVCache(layers, batch, heads, dims // heads, tokens))
    formula = 2 * layers * batch * tokens * dims * 4
    print(f"{layers} layers, batch {batch}, {tokens} tokens, {dims} dims: measured "
          f"{mem['retained_bytes']:,} bytes retained, formula 2 x L x B x T x C x 4 = {formula:,} "
          f"(ratio {mem['retained_bytes'] / formula:.4f})")

# %% nbgrader={"grade": true, "grade_id": "test-memory", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_cache_memory():
    """The cache allocates 2 x layers x batch x tokens x dims x 4 bytes, measured, plus a little."""
    for layers, batch, tokens, dims, heads in ((4, 1, 512, 128, 4), (3, 2, 40, 24, 3)):
        cache = KVCache(layers, batch, heads, dims // heads, tokens)
        formula = 2 * layers * batch * tokens * dims * 4
        assert cache.nbytes == formula, (cache.nbytes, formula)
        mem = profile_memory(lambda: KVCache(layers, batch, heads, dims // heads, tokens))
        assert formula <= mem["retained_bytes"] < formula + 4096, (mem["retained_bytes"], formula)


test_unit_cache_memory()

# %% [markdown]
# ## 7. What the cache buys: time per token
#
# Now the claim itself, on a small GPT so that the lesson stays quick (the full-size measurement
# is below). The two variants run interleaved, plain then cached, five times, so that a busy
# machine slows both alike; the speed-up is the median of the five ratios (module 19 turns this
# into `compare`, with a confidence interval and a rank test):

# %%
import time

demo = GPT(vocab_size=32, block_size=128, n_layer=2, n_head=2, n_embd=64, seed=0)
prompt = np.zeros((1, 8), dtype=np.int64)
ratios, plain_s, cached_s = [], [], []
for _ in range(5):
    t0 = time.perf_counter()
    slow = demo.generate(prompt, 120, temperature=0)
    t1 = time.perf_counter()
    fast = generate_cached(demo, prompt, 120, temperature=0)
    t2 = time.perf_counter()
    plain_s.append(t1 - t0)
    cached_s.append(t2 - t1)
    ratios.append((t1 - t0) / (t2 - t1))
assert np.array_equal(slow, fast)
print(f"120 new tokens, context 128, 2 layers, 64 dims: no cache {np.median(plain_s) * 1e3:.0f} ms, "
      f"KV cache {np.median(cached_s) * 1e3:.0f} ms -> speed-up {np.median(ratios):.1f}x "
      f"(five interleaved runs: {min(ratios):.1f}x to {max(ratios):.1f}x)")

# %% [markdown]
# `benchmarks/kv_cache.py` measures the GPT of the issue (4 layers, 4 heads, 128 dims, context
# 512) in one run: the speed-up at 16 to 496 new tokens and the time of every step against its
# position, written to `benchmarks/results/kv_cache.md` with the machine and its load:
#
# ![time per token against position, with and without the KV cache](../../benchmarks/results/kv_cache.png)
#
# Without the cache the time per token grows with the position (the whole context again, and
# attention over it); with it the time per token is almost flat: the projections and the MLP
# of one token, plus one query against t keys, which is small next to the fixed cost of the
# Python calls at this size.

# %% [markdown]
# ## 8. What a cached step costs now: overhead, not arithmetic
#
# The cache removed the recomputation. What is left in one cached step? Count it on a GPT of
# milestone 5's shape (4 layers, 4 heads, C = 128, context 96; random weights: the time does
# not depend on their values). Module 14's `instrument` reports every `Function` call, and a
# matrix product of the machine's own size tells how fast it multiplies when the matrices are
# big enough to keep it busy:

# %%
import time

from tinytorch.profiling.profiler import instrument


def per_call(fn, calls=200, repeats=5):
    """CPU seconds per call of fn, on this thread's clock (time spent waiting for a busy
    machine is not counted): the fastest of ``repeats`` runs of ``calls`` calls."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.thread_time()
        for _ in range(calls):
            fn()
        best = min(best, (time.thread_time() - t0) / calls)
    return best


shape = dict(vocab_size=100, block_size=96, n_layer=4, n_head=4, n_embd=128)
m5 = GPT(**shape, seed=0)
ids = np.random.default_rng(0).integers(0, 100, (1, 96))                  # (1, 96)
cache60 = new_cache(m5, 1)


def cached_step():                     # the step of position 60, repeatable: it rewrites slot 60
    cache60.length = 60
    return forward_cached(m5, ids[:, 60:61], cache60)


with no_grad():
    forward_cached(m5, ids[:, :60], cache60)                               # the 60 earlier tokens
    ops = []
    with instrument(on_op=ops.append):
        cached_step()
    t_step = per_call(cached_step)
    t_full = per_call(lambda: m5(ids[:, :61]), calls=20)
L_, C_, V_ = shape["n_layer"], shape["n_embd"], shape["vocab_size"]
macs = L_ * (12 * C_ * C_ + 2 * 61 * C_) + C_ * V_                        # one token at position 60
a, b = (np.random.default_rng(1).standard_normal(s).astype(np.float32) for s in ((256, 512), (512, 512)))
rate = 256 * 512 * 512 / per_call(lambda: a @ b, calls=20)                 # multiply-adds per second
print(f"uncached step at position 60 (61 tokens again): {t_full * 1e3:.2f} ms")
print(f"cached step at position 60: {t_step * 1e3:.3f} ms, {len(ops)} Function calls "
      f"({t_step / len(ops) * 1e6:.1f} us per call, everything included)")
print(f"its arithmetic: {macs / 1e6:.2f} M multiply-adds; at this machine's {rate / 1e9:.1f} G multiply-adds/s "
      f"(a 256x512 @ 512x512 product) that is {macs / rate * 1e6:.0f} us of the {t_step * 1e6:.0f} us")
kinds = {}
for e in ops:
    kinds[e.op] = kinds.get(e.op, 0) + 1
print("calls per cached token:", ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])))

# %% [markdown]
# The step does about a thousandth of the uncached step's work but takes a fair fraction of its
# time. Each of its hundred-odd `Function` calls is a few microseconds of Python (make a node,
# wrap the result in a Tensor, check shapes, allocate) around an array operation on 128 or 512
# numbers that itself takes a microsecond or less. At batch 1 the cached step is **overhead
# bound**: making the arithmetic faster would not help; making fewer, larger calls does.
#
# ## 9. A packed decoder: the same math in fewer calls
#
# Inference needs none of what those calls pay for: no graph, no gradients, no Tensor
# wrappers, and the weights do not change between tokens. So do what inference compilers
# (`torch.compile`, TensorRT, llama.cpp) do, by hand:
#
# 1. **Pack the weights once**, when the decoder is made: the three projections q, k, v read
#    the same input, so their (C, C) weights side by side make one (C, 3C) matrix, and one
#    product computes all three (one call instead of six: three products, three bias adds).
# 2. **Fold each LayerNorm's gamma and beta into the matrix that reads its output.** Every
#    LayerNorm in the GPT is followed by a product, and a scale-and-shift followed by a product
#    is a product: with x_hat the standardized row,
#
#    ```
#      LayerNorm(x) @ W + b  =  (x_hat * gamma + beta) @ W + b
#                            =  x_hat @ (gamma[:, None] * W)  +  (beta @ W + b)
#                            =  x_hat @ W'                    +  b'
#
#      C = 2:  x_hat = [1, -1]   gamma = [2, 0.5]   beta = [0.1, 0.3]   W = [[1, 2], [3, 4]]   b = [0, 1]
#      as the model computes it: x_hat * gamma + beta = [2.1, -0.2];  @ W = [1.5, 3.4];  + b = [1.5, 4.4]
#      folded:  W' = [[2, 4], [1.5, 2]]  (row c of W times gamma_c)   b' = [1.0, 1.4] + b = [1.0, 2.4]
#               x_hat @ W' = [0.5, 2.0];  + b' = [1.5, 4.4]          the same, two calls fewer
#    ```
#
#    W' and b' are computed once, and each step skips the two elementwise calls of gamma and
#    beta, 9 LayerNorms a token. Module 15 folds BatchNorm into a convolution the same way.
# 3. **Keep the residual stream centred.** What is left of a LayerNorm is `standardize`:
#    subtract the row's mean, then divide by its root mean square (module 13's
#    `rms_normalize`; LLaMA's RMSNorm is that half alone). The stream x is *read* only by
#    LayerNorms, and *written* only by linear maps: the two embedding tables, each attention
#    output projection and each MLP second layer, plus their biases. Subtracting the mean is
#    linear too, so it can be applied to the writers once, when packing, instead of to every
#    row at every step: centre each row of those matrices and each bias, and every row of x
#    they write has mean zero.
#
#    ```
#      x = [2, 4]  (mean 3; centred [-1, 1])    one input y = 1    W_o = [[1, 3]]    b_o = [0.5, 1.5]
#      as the model computes it: x + y @ W_o + b_o = [3.5, 8.5]       mean 6, centred [-2.5, 2.5]
#      centred writers: W_o' = [[-1, 1]]  b_o' = [-0.5, 0.5]
#                       [-1, 1] + y @ W_o' + b_o' = [-2.5, 2.5]          the centred row, directly
#    ```
#
#    So each LayerNorm of a step is `rms_normalize` alone: 5 NumPy calls instead of 9 plus the
#    two of gamma and beta.
# 4. **Run each step on NumPy arrays**, calling the lessons' own kernels directly: module 13's
#    `rms_normalize`, module 05's `GELUFn.forward`, module 12's
#    `ScaledDotProductAttention.forward`. The math has one definition, the one you wrote and
#    tested in those modules; only the calling changes. The residual stream is kept as one row
#    per token, (B t, C), so every product is of two 2-D arrays, and `np.dot` multiplies them:
#    on 2-D arrays it goes straight to BLAS, while `@` first runs the ufunc machinery that
#    broadcasts stacks of matrices (section 10 measures the difference).
# 5. **Write keys and values straight into the cache's arrays**, both in one assignment (the
#    cache keeps them as the two halves of one block, `cache.kv`), and add biases and residuals
#    in place.
#
# ```
#   one layer, x (B t, C): one centred row per new token            calls
#   ---------------------------------------------------------     -----------------------------
#   h   = rms_normalize(x)                                            1 (module 13's kernel)
#   qkv = h @ W'_qkv + b'_qkv      (B t, 3C)                           2   W' = gamma_1 * [W_q | W_k | W_v]
#   q, k, v = split(qkv)           (3, B, H, t, D) view                2   reshape + transpose: no copy
#   cache.kv[:, layer, t0:t0+t] = k, v                                 1   keys, values: one block
#   y   = ScaledDotProductAttention.forward(q, K[:end], V[:end])       1 (module 12's kernel)
#   x  += merge(y) @ W_o' + b_o'                                       4   W_o', b_o' centred
#   x  += GELUFn.forward(rms_normalize(x) @ W'_fc + b'_fc) @ W_proj' + b_proj'   7
# ```
#
# Section 8 counted about 26 Function calls per layer, each several NumPy calls plus a Tensor
# and a graph node; the packed layer makes 4 kernel calls and about 20 NumPy calls of its own.
# The packed weights are a `PackedGPT`, made once per model. Three more things the packed
# decoder owns:
#
# - **When the weights change after packing.** Every packed array is made from a *copy* of its
#   source taken when packing (the packed weights and those copies together cost about twice the
#   model's weights in memory, held as long as the model is). If the weights change afterwards (a
#   training step, `load_state_dict`, pruning in place), the packed arrays are out of date:
#   `stale()` sees it (it compares each parameter with its copy, exactly, so it also notices a
#   parameter whose array was replaced by different values), and the decoder checks it at every
#   prefill, that is at the start of every sequence, and repacks. A decoder kept across
#   generations therefore never computes with old weights; within a sequence the weights are
#   assumed fixed (checking at every step would cost more than the step). `repack()` packs again
#   by hand. `model.generate(..., use_cache=True)` makes a new decoder for every call, and
#   `PackedGPT.of(model)` gives it the packed weights of the last call after the same
#   comparison: generating again from an unchanged model costs one comparison of the weights,
#   not a packing.
# - **When the sequence outgrows the context**, nothing new: `__call__` is CachedModel's, so the
#   decoder re-prefills the window, exactly as section 5 describes, and the tokens stay those of
#   the uncached model.
# - **Only module 13's plain GPT can be packed**: the decoder reads the weights of `Linear`,
#   `LayerNorm`, `Embedding` and GELU layers and computes what they compute. A model with any
#   other layer (module 15's `QuantizedLinear`, a subclass with a different `forward`) raises
#   `NotPackable`, and `generate_fused` then falls back to `CachedModel`, which runs the layers
#   themselves.
#
# `FusedDecoder` keeps `CachedModel`'s `__call__` (the stored-prefix check, the re-prefill when
# the window slides past the context) and replaces only `forward_new`: the tokens it returns
# logits for, the cache it fills and the sampling in module 13's `generate` are all shared.
# It returns the logits of the last new token only (B, 1, V): all that `generate` reads (during
# a prefill of 40 tokens the head runs on 1 position instead of 40).

# %% nbgrader={"grade": false, "grade_id": "fused", "locked": false, "schema_version": 3, "solution": true}
#| export
class NotPackable(TypeError):
    """The model is not module 13's GPT of plain layers: FusedDecoder cannot pack it."""


def packing_problem(model):
    """Why ``model`` cannot be packed by FusedDecoder (a string), or None when it can."""
    from tinytorch.core.activations import GELU
    from tinytorch.core.attention import MultiHeadAttention
    from tinytorch.core.layers import Linear
    from tinytorch.models.transformer import GPT, MLP, LayerNorm, TransformerBlock
    from tinytorch.text.embeddings import Embedding

    if type(model) is not GPT:
        return f"{type(model).__name__} is not module 13's GPT (a subclass may compute something else)"
    layers = [("tok_emb", model.tok_emb, Embedding), ("pos_emb", model.pos_emb, Embedding),
              ("ln_f", model.ln_f, LayerNorm), ("lm_head", model.lm_head, Linear)]
    for i, b in enumerate(model.blocks):
        layers += [(f"blocks.{i}{name}", layer, cls) for name, layer, cls in (
            ("", b, TransformerBlock), (".ln1", b.ln1, LayerNorm), (".attn", b.attn, MultiHeadAttention),
            (".attn.q_proj", b.attn.q_proj, Linear), (".attn.k_proj", b.attn.k_proj, Linear),
            (".attn.v_proj", b.attn.v_proj, Linear), (".attn.out_proj", b.attn.out_proj, Linear),
            (".ln2", b.ln2, LayerNorm), (".mlp", b.mlp, MLP), (".mlp.fc", b.mlp.fc, Linear),
            (".mlp.act", b.mlp.act, GELU), (".mlp.proj", b.mlp.proj, Linear))]
    for name, layer, cls in layers:
        if type(layer) is not cls:
            return f"{name} is {type(layer).__name__}, not {cls.__name__}"
        for pname in ("weight", "bias"):
            p = getattr(layer, pname, None)
            if p is not None and p.dtype != np.float32:
                return f"{name}.{pname} is {p.dtype}, not float32"
    return None


class PackedGPT:
    """The weights of module 13's GPT packed for inference, made once per model and shared by
    every FusedDecoder of it (``PackedGPT.of(model)``):

    - q, k, v side by side in one (C, 3C) matrix;
    - each LayerNorm's gamma and beta folded into the matrix that reads its output
      (W' = gamma[:, None] * W, b' = beta @ W + b): qkv, the MLP's first layer, the head;
    - everything that writes the residual stream (the two embedding tables, each attention
      output projection and MLP second layer, their biases) centred along C, so the stream
      stays centred and each LayerNorm only has to divide by the root mean square.

    Every array is made from a copy of its source, kept in ``sources`` for ``stale()``.
    """

    def __init__(self, model):
        sources = []

        def keep(p):
            """A copy of parameter p's values, remembered as what was packed."""
            snap = np.array(p.data, dtype=np.float32)
            sources.append((p, snap))
            return snap

        def centred(p):
            """p's values minus their mean along the last axis (C): what writes the stream."""
            a = keep(p)
            ### BEGIN SOLUTION
            return a - a.mean(axis=-1, keepdims=True)
            ### END SOLUTION

        def folded(ln, *linears):
            """(W', b', eps) with LayerNorm(x) @ W + b == standardize(x) @ W' + b' for the
            Linears side by side [W_1 | W_2 | ...] that read ln's output: W' = gamma[:, None] * W,
            b' = beta @ W + b."""
            W = np.concatenate([keep(lin.weight) for lin in linears], axis=1)          # (C, n)
            b = np.concatenate([np.zeros(lin.out_features, np.float32) if lin.bias is None else keep(lin.bias)
                                for lin in linears])                                   # (n,)
            gamma, beta = keep(ln.weight), keep(ln.bias)                               # (C,), (C,)
            ### BEGIN SOLUTION
            w = np.ascontiguousarray(gamma[:, None] * W, dtype=np.float32)             # row c scaled by gamma_c
            b = (beta @ W + b).astype(np.float32)
            ### END SOLUTION
            return w, b, ln.eps

        self.tok, self.pos = centred(model.tok_emb.weight), centred(model.pos_emb.weight)   # (V, C), (block, C)
        self.layers = []
        for blk in model.blocks:
            a, mlp = blk.attn, blk.mlp
            self.layers.append((
                *folded(blk.ln1, a.q_proj, a.k_proj, a.v_proj),           # W'_qkv (C, 3C), b'_qkv (3C,), eps
                centred(a.out_proj.weight), centred(a.out_proj.bias),     # (C, C), (C,)
                *folded(blk.ln2, mlp.fc),                                 # (C, 4C), (4C,), eps
                centred(mlp.proj.weight), centred(mlp.proj.bias)))        # (4C, C), (C,)
        self.final = folded(model.ln_f, model.lm_head)                    # (C, V), (V,), eps
        self.sources = sources

    def stale(self) -> bool:
        """True when a weight of the model differs from what was packed: values changed
        (exact comparison with the copy) or a parameter whose array was replaced by another."""
        return any(p.data.shape != snap.shape or not np.array_equal(p.data, snap) for p, snap in self.sources)

    _of = weakref.WeakKeyDictionary()                 # model -> its PackedGPT, freed with the model

    @classmethod
    def of(cls, model, repack: bool = False) -> "PackedGPT":
        """The model's packed weights: packed at the first call, then reused while they are not
        stale (so generating again costs one comparison, not a packing)."""
        packed = cls._of.get(model)
        if repack or packed is None or packed.stale():
            packed = cls._of[model] = cls(model)
        return packed


class FusedDecoder(CachedModel):
    """A GPT packed for inference behind a KV cache: called like CachedModel (``dec(ctx)``:
    logits whose last position is the model's for ctx), each step on NumPy arrays with the
    model's PackedGPT and the lessons' own kernels.

    The packed weights are a snapshot: ``stale()`` says whether the model's weights changed
    since, ``repack()`` packs them again, and every prefill (a new sequence) repacks stale
    weights by itself. Raises NotPackable for a model that is not module 13's plain GPT.
    """

    def __init__(self, model, batch_size: int, max_len: int = None):
        problem = packing_problem(model)
        if problem is not None:
            raise NotPackable(f"FusedDecoder cannot pack this model: {problem}; use CachedModel")
        super().__init__(model, batch_size, max_len)
        self.n_head = model.blocks[0].attn.num_heads
        from tinytorch.models.transformer import LayerNormFunction
        self._rms = LayerNormFunction.rms_normalize     # the lessons' kernels, called on arrays
        self._attn = ScaledDotProductAttention()
        self._gelu = GELUFn()
        self.packed = PackedGPT.of(model)                # checked against the model just now
        self._fresh = True

    def repack(self) -> None:
        """Pack the model's weights again (for this decoder and every later one)."""
        self.packed = PackedGPT.of(self.model, repack=True)

    def stale(self) -> bool:
        """True when the model's weights changed since they were packed."""
        return self.packed.stale()

    def forward_new(self, ids: np.ndarray) -> Tensor:
        """Logits (B, 1, V) of the last of the new tokens ids (B, t); writes their keys and
        values into the cache and advances it."""
        if self.cache.length == 0:             # a new sequence or a re-prefill
            if not self._fresh and self.stale():
                self.repack()
            self._fresh = False
        return _wrap(self.step(ids))

    def step(self, idx: np.ndarray) -> np.ndarray:
        """The packed forward pass of idx (B, t) int64 after the cached tokens -> (B, 1, V).
        ``__call__`` has checked the ids (token_ids): ``step`` is the bare computation.

        HINT: x = (P.tok[idx] + P.pos[start:end]).reshape(B * t, C), one centred row per token;
              for each packed layer: qkv = np.dot(rms(x, eps1)[0], w_qkv); qkv += b_qkv; view
              it as (3, B, H, t, D) with .reshape(B, t, 3, H, D).transpose(2, 0, 3, 1, 4); write
              k and v at once into cache.kv[:, i, :, :, start:end]; attention of q against
              cache.keys[i, :, :, :end]; x += np.dot(merge(y), w_o); x += b_o; then the MLP the
              same way; finally cache.advance(t) and P.final on each sequence's last row.
        """
        cache, P = self.cache, self.packed
        B, t = idx.shape
        start, end = cache.length, cache.length + idx.shape[1]
        if end > cache.max_len:
            raise ValueError(f"{start} cached + {t} new tokens exceed the cache's {cache.max_len} "
                             f"(the model's context is {self.block_size})")
        H = self.n_head
        C = P.tok.shape[1]
        D = C // H
        rms, attention, gelu = self._rms, self._attn.forward, self._gelu.forward
        ### BEGIN SOLUTION
        x = (P.tok[idx] + P.pos[start:end]).reshape(B * t, C)             # (B t, C): a centred row per token
        mask = None if t == 1 else cached_causal_mask(start, t)            # (t, end)
        for i, (w_qkv, b_qkv, eps1, w_o, b_o, w_fc, b_fc, eps2, w_proj, b_proj) in enumerate(P.layers):
            qkv = np.dot(rms(x, eps1)[0], w_qkv)                           # (B t, 3C): q, k, v at once
            qkv += b_qkv
            qkv = qkv.reshape(B, t, 3, H, D).transpose(2, 0, 3, 1, 4)      # (3, B, H, t, D) view: q, k, v
            cache.kv[:, i, :, :, start:end] = qkv[1:]                      # k and v in one write
            y = attention(qkv[0], cache.keys[i, :, :, :end], cache.values[i, :, :, :end], mask=mask)  # (B, H, t, D)
            x += np.dot(y.transpose(0, 2, 1, 3).reshape(B * t, C), w_o)   # (B t, C), still centred
            x += b_o
            h = np.dot(rms(x, eps2)[0], w_fc)                              # (B t, 4C)
            h += b_fc
            x += np.dot(gelu(h), w_proj)                                   # (B t, C)
            x += b_proj
        cache.advance(t)
        w_head, b_head, eps = P.final
        logits = np.dot(rms(x.reshape(B, t, C)[:, -1], eps)[0], w_head)   # (B, V): each sequence's last token
        logits += b_head
        return logits[:, None]                                             # (B, 1, V)
        ### END SOLUTION


def generate_fused(model, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int = None,
                   seed=None) -> np.ndarray:
    """Module 13's generate with the model packed behind a KV cache (FusedDecoder); a model
    that cannot be packed runs behind a CachedModel. Same tokens, same seeded samples."""
    def decoder(model, batch_size, max_len):
        try:
            return FusedDecoder(model, batch_size, max_len)
        except NotPackable:
            return CachedModel(model, batch_size, max_len)       # its layers run themselves

    return generate_cached(model, idx, max_new_tokens, temperature=temperature, top_k=top_k, seed=seed,
                           decoder=decoder)


# %% nbgrader={"grade": true, "grade_id": "test-fused", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_fused_decoder():
    """The packed decoder gives the model's logits (prefill, then one token at a time), the same
    greedy and seeded tokens as without a cache (also past the context), repacks changed
    weights at the next sequence, and refuses what it cannot pack or compute."""
    from tinytorch.testing import assert_tensor

    model = GPT(vocab_size=13, block_size=16, n_layer=2, n_head=2, n_embd=16, seed=3)
    rng = np.random.default_rng(4)
    for ln in [model.ln_f] + [ln for b in model.blocks for ln in (b.ln1, b.ln2)]:
        ln.weight.data[...] = rng.uniform(0.5, 1.5, ln.weight.shape)       # gamma and beta as training
        ln.bias.data[...] = rng.normal(0.0, 0.2, ln.bias.shape)            # leaves them (not 1 and 0)
    ids = rng.integers(0, 13, (2, 12))                                      # (B, T)
    with no_grad():
        full = model(ids).data                                              # (2, 12, 13)
        dec = FusedDecoder(model, batch_size=2)
        first = dec(ids[:, :5])
        assert_tensor(first, (2, 1, 13), np.float32, name="FusedDecoder logits")
        np.testing.assert_allclose(first.data[:, 0], full[:, 4], atol=1e-5, rtol=1e-5,
                                   err_msg="prefill: the last position's logits")
        for t in range(6, 13):
            np.testing.assert_allclose(dec(ids[:, :t]).data[:, 0], full[:, t - 1], atol=1e-5, rtol=1e-5,
                                       err_msg=f"token {t - 1}: packed logits differ from the full pass")
        assert dec.cache.length == 12 and dec.prefills == 1, (dec.cache.length, dec.prefills)
    prompt = ids[:, :4]
    for kw in ({"temperature": 0}, {"temperature": 1.0, "top_k": 5, "seed": 7}):
        for n in (12, 20):                                                  # 4 + 20 > 16: re-prefills
            np.testing.assert_array_equal(generate_fused(model, prompt, n, **kw), model.generate(prompt, n, **kw),
                                          err_msg=f"{kw}, {n} new tokens")
    model.blocks[1].attn.k_proj.weight.data[...] *= 2.0                     # weights change after packing:
    model.blocks[0].mlp.fc.weight.data[...] *= 0.5                          # a copied one and one used in place
    assert dec.stale(), "stale() must see a changed weight"
    with no_grad():
        np.testing.assert_allclose(dec(ids[:, :3]).data[:, 0], model(ids[:, :3]).data[:, 2], atol=1e-5,
                                   err_msg="a new sequence after a weight change must use the new weights")
    assert not dec.stale()
    for bad, err in ((np.array([[1.5, 2.0], [1.0, 2.0]]), TypeError), (np.zeros((3, 2), np.int64), ValueError),
                     (np.array([[1, 13], [1, 2]]), IndexError), (np.array([[1, -1], [1, 2]]), IndexError)):
        try:
            with no_grad():
                dec(bad)
        except err:
            pass
        else:
            raise AssertionError(f"{bad.tolist()} must raise {err.__name__}")
    ### BEGIN HIDDEN TESTS
    with no_grad():
        dec.cache.reset()
        dec(ids[:, :3])
        np.testing.assert_allclose(dec(ids[:, :7]).data[:, 0], model(ids[:, :7]).data[:, 6], atol=1e-5)
    ### END HIDDEN TESTS


test_unit_fused_decoder()

# %% [markdown]
# ## 10. What the packing buys
#
# The same cached step of section 8, packed, and the whole generation of milestone 6's single
# stream (a 39-token prompt filled to the end of the 96-token context), the three variants
# interleaved so that a busy machine slows them alike:

# %%
with no_grad():
    packed = FusedDecoder(m5, 1)
    packed(ids[:, :60])
    ops_packed = []

    def packed_step():
        packed.cache.length = 60
        return packed.step(ids[:, 60:61])

    with instrument(on_op=ops_packed.append):
        packed_step()
    t_packed = per_call(packed_step)
    np.testing.assert_allclose(packed_step()[:, 0], cached_step().data[:, 0], atol=1e-5)
print(f"cached step at position 60: {t_step * 1e6:.0f} us, {len(ops)} Function calls; packed: "
      f"{t_packed * 1e6:.0f} us, {len(ops_packed)} Function kernel calls and {2 * m5.n_layer + 1} of rms_normalize "
      f"({t_step / t_packed:.1f}x faster)")
row, w_fc = np.ones((1, 128), np.float32), packed.packed.layers[0][5]    # one token's row, W'_fc (128, 512)
print(f"one row times W'_fc: @ {per_call(lambda: row @ w_fc, 2000) * 1e6:.1f} us, "
      f"np.dot {per_call(lambda: np.dot(row, w_fc), 2000) * 1e6:.1f} us (17 products a token)")

prompt39 = ids[:, :39]
runs = {"no cache": lambda: m5.generate(prompt39, 57, temperature=0),
        "KV cache": lambda: generate_cached(m5, prompt39, 57, temperature=0),
        "packed": lambda: generate_fused(m5, prompt39, 57, temperature=0)}
outs = {name: fn() for name, fn in runs.items()}
assert all(np.array_equal(o, outs["no cache"]) for o in outs.values()), "the three must give the same tokens"
times = {name: [] for name in runs}
for _ in range(5):
    for name, fn in runs.items():
        t0 = time.thread_time()
        fn()
        times[name].append(time.thread_time() - t0)
med = {name: float(np.median(v)) for name, v in times.items()}
for name in runs:
    print(f"{name:>8}: {med[name] * 1e3:6.1f} ms for 57 tokens, {med[name] / 57 * 1e3:.3f} ms per token, "
          f"{med['no cache'] / med[name]:4.1f}x the uncached speed")

# %% [markdown]
# Milestone 6 measures the same three on the trained `tinytalks_gpt` with module 19's
# `compare` (`milestones/06_mlperf/RESULTS.md`), and `benchmarks/kv_cache.py` on the context-512
# GPT. With a batch of prompts the per-call overhead is shared by every row, so the gain of
# packing shrinks as the batch grows, and the arithmetic, which packing does not change, takes
# over.

# %% nbgrader={"grade": true, "grade_id": "test-module", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_module():
    """The KV cache on a GPT, with and without packing: batch of prompts, greedy and sampled,
    and a bad cache refused."""
    model = GPT(vocab_size=17, block_size=24, n_layer=3, n_head=4, n_embd=32, seed=5)
    prompt = np.random.default_rng(2).integers(0, 17, (3, 6))
    for kw in ({"temperature": 0}, {"temperature": 0.8, "top_k": 4, "seed": 11}):
        plain = model.generate(prompt, 18, **kw)
        np.testing.assert_array_equal(generate_cached(model, prompt, 18, **kw), plain, err_msg=str(kw))
        np.testing.assert_array_equal(generate_fused(model, prompt, 18, **kw), plain, err_msg=f"packed, {kw}")
    with no_grad():
        cache = new_cache(model, batch_size=3)
        assert cache.keys.shape == (3, 3, 4, 24, 8), cache.keys.shape
        logits = forward_cached(model, prompt, cache)
        np.testing.assert_allclose(logits.data, model(prompt).data, atol=1e-5, rtol=1e-5)
        try:
            forward_cached(model, np.zeros((3, 19), dtype=np.int64), cache)   # 6 + 19 > 24
        except ValueError as e:
            assert "context" in str(e), str(e)
        else:
            raise AssertionError("tokens past the context must raise ValueError")
    ### BEGIN HIDDEN TESTS
    try:
        KVCache(2, 1, 2, 4, 0)
    except ValueError:
        pass
    else:
        raise AssertionError("max_len 0 must be refused")
    ### END HIDDEN TESTS


test_module()

# %% [markdown]
# ## Reflect
#
# 1. Without the cache, generating n tokens costs the sum over t of one forward pass of t
#    tokens. Write the total multiply-adds of the projections and of attention as functions of
#    n, L and C. At which n does attention's share pass the projections' for C = 128? (Hint:
#    compare 12 x C^2 per token with 2 x t x C.)
# 2. The benchmark's cache holds 2 MiB per sequence at 512 tokens. How many sequences of 4,096
#    tokens fit next to a 7B fp16 model (14 GB of weights) on an 80 GB GPU? What does grouped-query
#    attention (8 key/value heads shared by 32 query heads) change in that number?
# 3. On this machine the cached step at position 500 is not 500 times faster than the uncached
#    one, although it does about 500 times fewer multiply-adds. Where does its time go? (Count the
#    Python calls of one cached step, and look at module 14's profile of a step.)
# 4. Past the context, our cache re-prefills at every step. Propose a cheaper policy (for
#    example re-prefilling the last half of the window, once every block_size / 2 steps). What
#    does it cost, and why are its tokens no longer identical to the uncached ones?
# 5. Sampling with and without the cache gave the same text. Why is that not guaranteed in
#    general with floating point? (The logits agree to 1e-5, not exactly: when could two tokens'
#    probabilities be so close that the difference flips a choice?)
# 6. The packed decoder centres everything that writes the residual stream, so each LayerNorm is
#    only `rms_normalize`. Which change to the block would break that fold: a post-LN block
#    (`x = LayerNorm(x + attn(x))`), a ReLU applied to the stream, or a second residual branch
#    added in parallel? In float32 the rows' means are not exactly 0 after 4 layers: estimate
#    how far from 0 they drift and show why it changes the logits only in their last bits.
# 7. Section 10's gain of packing is measured at batch 1. With a batch of B prompts the arithmetic
#    of a step grows with B and the overhead does not. Using your section 8 figures (microseconds
#    per call, multiply-adds per token, the machine's multiply-add rate), estimate the batch size
#    at which a step's arithmetic equals its fixed cost, for CachedModel and for FusedDecoder.
#    What does that predict for milestone 6's Offline row (27 prompts at once)?
