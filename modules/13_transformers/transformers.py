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
# # Module 13: Transformers
#
# This is where the pieces become a language model. You add the last three ingredients, layer
# normalization, a GELU feed-forward network and residual connections, stack them into a
# pre-norm transformer block, and build a GPT-style decoder that reads token ids and predicts
# the next token. Then you make it *write*: `generate` samples one token at a time with a
# temperature and top-k filter. GPT-2, LLaMA and the model in milestone 5 are all this
# architecture with different numbers. Finally you measure where a transformer's memory goes
# (parameters vs activations, component by component) and why generating token by token without
# a cache does quadratic work.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far                        you build now                 this unlocks
#   ------------                        -------------                 ------------
#   01/02 Tensor, activations     -->   LayerNorm (fused)        -->  milestone 5: TinyTalks Q&A
#   03 Layers (Module, Linear)    -->   MLP (GELU from before)   -->    and Shakespeare generation
#   04 Losses (next-token CE)     -->   TransformerBlock         -->  14 Profiling (where time goes)
#   05 Autograd (Function, GELU)  -->   GPT decoder              -->  17 KV cache (fast generation)
#   06/07 Optimizers, training    -->   generate (temp, top-k)
#   10 Tokenization (ids)         -->
#   11 Embeddings (tok + pos)     -->
#   12 Attention (MHA, causal)    -->
# ```

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp models.transformer
#| export
#| namespace tinytorch.nn LayerNorm TransformerBlock Transformer=GPT
import numpy as np

from tinytorch.core.activations import GELU
from tinytorch.core.attention import MultiHeadAttention, causal_mask, child_seeds
from tinytorch.core.autograd import Function, no_grad
from tinytorch.core.layers import Linear, Module
from tinytorch.core.tensor import Tensor
from tinytorch.text.embeddings import Embedding

# %% [markdown]
# ## 1. Layer normalization
#
# Deep stacks train badly when the scale of activations drifts from layer to layer. LayerNorm
# re-centres and re-scales *each token's vector* independently (unlike batch norm, it does not
# look at other examples, so it behaves the same in training and generation):
#
# ```
#   x = [2, 4, 6, 8]            one token, C = 4
#   mean = 5                    var = (9 + 1 + 1 + 9) / 4 = 5
#   x_hat = (x - 5) / sqrt(5 + eps) = [-1.342, -0.447, 0.447, 1.342]
#   y = gamma * x_hat + beta    gamma (C,) starts at 1, beta (C,) at 0: learned
# ```
#
# As a fused Function, forward first standardizes each row (`standardize(x, eps)` centres it,
# then `rms_normalize` divides it by its root mean square, which for a centred row is the
# standard deviation; module 17 reuses that half on its own), saves x_hat and
# rstd = 1 / sqrt(var + eps), then scales and shifts. Backward, with g = dL/dy over the last axis of size C (mean_C is a mean over that
# axis):
#
# ```
#   dgamma = sum over all tokens of g * x_hat        (C,)
#   dbeta  = sum over all tokens of g                (C,)
#   dx_hat = g * gamma                               (..., C)
#   dx     = rstd * (dx_hat - mean_C(dx_hat) - x_hat * mean_C(dx_hat * x_hat))
# ```
#
# The two mean terms are the gradient flowing back through the mean and the variance: shifting
# every input by the same amount, or scaling them all, leaves x_hat unchanged.
#
# Three of these sums are dot products: the variance is a row's `x_c . x_c / C`,
# `mean_C(dx_hat * x_hat)` a row's `dx_hat . x_hat / C`, and dgamma a column's `g . x_hat`.
# `np.einsum("...i,...i->...", a, b)` computes the dot products of matching rows without
# writing the (..., C) product array that `(a * b).mean(-1)` makes first, and in-place
# updates (`x_hat *= rstd`, `dx -= ...`) reuse buffers instead of allocating new ones. On
# milestone 5's (12, 64, 128) activations (one thread) the forward went from 0.14 to 0.11 ms
# and the backward from 0.19 to 0.15 ms; the GPT calls LayerNorm 9 times a step.

# %% nbgrader={"grade": false, "grade_id": "layernorm-function", "locked": false, "schema_version": 3, "solution": true}
#| export
def _rowdot(a, b):
    """The dot products of matching rows of a and b (..., C) -> (...): np.vecdot (NumPy 2), a
    ufunc that is cheaper to call than the einsum it replaces on NumPy 1."""
    return np.einsum("...i,...i->...", a, b)


if hasattr(np, "vecdot"):
    _rowdot = np.vecdot  # noqa: F811


class LayerNormFunction(Function):
    """Fused y = (x - mean) / sqrt(var + eps) * gamma + beta over the last axis."""

    @staticmethod
    def standardize(x, eps=1e-5):
        """x (..., C) -> (x_hat, rstd): every row centred and divided by its standard deviation,
        and rstd (..., 1) = 1 / sqrt(var + eps). LayerNorm without gamma and beta."""
        ### BEGIN SOLUTION
        C = x.shape[-1]
        mu = np.add.reduce(x, axis=-1, keepdims=True) / C   # (..., 1): x.mean, without its Python wrapper
        x_hat = x - mu                                      # (..., C): centred, scaled in place below
        return LayerNormFunction.rms_normalize(x_hat, eps, out=x_hat)
        ### END SOLUTION

    @staticmethod
    def rms_normalize(x, eps=1e-5, out=None):
        """x (..., C) -> (x * rstd, rstd) with rstd (..., 1) = 1 / sqrt(mean(x^2) + eps): the
        second half of standardize. On centred rows mean(x^2) is the variance. (LLaMA's RMSNorm
        is this alone; module 17's packed decoder keeps its rows centred and calls only this.)"""
        ### BEGIN SOLUTION
        var = _rowdot(x, x)[..., None]                      # (..., 1) row dot products
        rstd = (var / x.shape[-1] + eps) ** -0.5            # (..., 1): 1/sqrt in one call; eps a weak Python float
        return np.multiply(x, rstd, out=out), rstd          # in place when out is x
        ### END SOLUTION

    def forward(self, x, gamma, beta, eps=1e-5):
        """x (..., C), gamma (C,), beta (C,) -> y (..., C). Save x_hat, rstd, gamma."""
        ### BEGIN SOLUTION
        x_hat, rstd = self.standardize(x, eps)
        self.save_for_backward(x_hat, rstd, gamma)
        out = x_hat * gamma
        out += beta
        return out                                          # x_hat * gamma + beta
        ### END SOLUTION

    def backward(self, grad_out):
        """grad_out (..., C) -> (dx, dgamma, dbeta)."""
        ### BEGIN SOLUTION
        x_hat, rstd, gamma = self.saved
        g = grad_out
        C = x_hat.shape[-1]
        g2 = g.reshape(-1, C)
        dgamma = np.einsum("ni,ni->i", g2, x_hat.reshape(-1, C))   # (C,) column dot products
        dbeta = g2.sum(axis=0)                              # (C,)
        dxh = g * gamma                                     # (..., C)
        mean_dxh = dxh.mean(axis=-1, keepdims=True)         # (..., 1)
        mean_dxh_xh = np.einsum("...i,...i->...", dxh, x_hat)[..., None] / C   # (..., 1)
        dx = dxh                                            # reuse dxh's buffer
        dx -= mean_dxh
        dx -= x_hat * mean_dxh_xh
        dx *= rstd
        return dx, dgamma, dbeta
        ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "layernorm-module", "locked": true, "schema_version": 3, "solution": false}
#| export
class LayerNorm(Module):
    """LayerNorm(normalized_shape, eps=1e-5): learned gamma (weight) and beta (bias) of size C."""

    def __init__(self, normalized_shape: int, eps: float = 1e-5):
        super().__init__()
        self.normalized_shape = int(normalized_shape)
        self.eps = eps
        self.weight = Tensor(np.ones(self.normalized_shape, dtype=np.float32), requires_grad=True)
        self.bias = Tensor(np.zeros(self.normalized_shape, dtype=np.float32), requires_grad=True)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.normalized_shape:
            raise ValueError(f"LayerNorm expected last dim {self.normalized_shape}, got shape {x.shape}")
        return LayerNormFunction.apply(x, self.weight, self.bias, eps=self.eps)


# %% nbgrader={"grade": true, "grade_id": "test-layernorm", "locked": true, "points": 4, "schema_version": 3, "solution": false}
from tinytorch.core.autograd import gradcheck
from tinytorch.testing import assert_tensor


def test_unit_layernorm():
    """Worked example, float32, per-token statistics, backward by finite differences."""
    ln = LayerNorm(4)
    y = assert_tensor(ln(Tensor([[2.0, 4.0, 6.0, 8.0]])), (1, 4), np.float32, name="LayerNorm(4)(x)")
    np.testing.assert_allclose(y.data, [[-1.342, -0.447, 0.447, 1.342]], atol=1e-3)
    const = LayerNorm(3)(Tensor(np.full((2, 3), 7.0, dtype=np.float32))).data
    assert np.isfinite(const).all(), "a constant row must not produce NaN (eps)"
    x = np.random.default_rng(0).normal(3.0, 5.0, (2, 3, 16)).astype(np.float32)
    y = LayerNorm(16)(Tensor(x)).data
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-5, err_msg="each token: mean 0")
    np.testing.assert_allclose(y.std(-1), 1.0, atol=1e-3, err_msg="each token: std 1")
    rng = np.random.default_rng(1)
    xs, gam, bet = rng.standard_normal((2, 3, 5)), rng.standard_normal(5), rng.standard_normal(5)
    # module 05's gradcheck: your backward against central differences
    gradcheck(lambda a, b, c: LayerNormFunction.apply(a, b, c), *(Tensor(v, dtype=np.float64) for v in (xs, gam, bet)))
    ### BEGIN HIDDEN TESTS
    shifted = LayerNorm(16)(Tensor(x + 100.0)).data
    np.testing.assert_allclose(shifted, y, atol=1e-3)
    ### END HIDDEN TESTS


test_unit_layernorm()


# %% [markdown]
# ## 2. GELU and the feed-forward network
#
# Attention mixes information *between* positions; the feed-forward network (MLP) then
# processes each position on its own: expand C to 4C, apply a non-linearity, project back.
#
# ```
#   x (B, T, C) --Linear(C, 4C)--> (B, T, 4C) --GELU--> (B, T, 4C) --Linear(4C, C)--> (B, T, C)
# ```
#
# GPT uses GELU, a smooth ReLU that you already have: module 02 wrote its forward (the tanh
# approximation of GPT-2 and PyTorch's `GELU(approximate="tanh")`) and module 05 its
# backward, as the fused `GELUFn` that `enable_autograd()` puts behind the class:
#
# ```
#   u = sqrt(2/pi) * (x + 0.044715 x^3)       t = tanh(u)
#   gelu(x)  = 0.5 x (1 + t)
#   gelu'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
#
#   x      -3      -1      0      1      3
#   gelu  -0.004  -0.159   0    0.841  2.996
# ```
#
# Unlike ReLU, small negative inputs keep a small gradient, and the curve is smooth at 0. So
# the MLP below is only wiring: `Linear`, module 02's `GELU`, `Linear`. Each sub-layer gets
# its own seed from the layer's one seed with module 12's `child_seeds`, so a whole GPT is
# reproducible from `GPT(..., seed=0)`.

# %% nbgrader={"grade": false, "grade_id": "gelu-mlp", "locked": true, "schema_version": 3, "solution": false}
#| export
class MLP(Module):
    """Feed-forward block: Linear(C, hidden) -> GELU -> Linear(hidden, C); hidden = 4C by default."""

    def __init__(self, n_embd: int, hidden: int = None, seed=None):
        super().__init__()
        hidden = 4 * n_embd if hidden is None else hidden
        s = child_seeds(seed, 2)
        self.fc = Linear(n_embd, hidden, seed=s[0])
        self.act = GELU()
        self.proj = Linear(hidden, n_embd, seed=s[1])

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.act(self.fc(x)))             # (..., C) -> (..., 4C) -> (..., C)


# %%
def check_gelu_mlp():
    """Module 02's GELU, with module 05's backward, inside the MLP: table values, float32,
    derivative by finite differences, MLP shapes and parameter count."""
    x = np.array([-3.0, -1.0, 0.0, 1.0, 3.0], dtype=np.float32)
    y = assert_tensor(GELU()(Tensor(x)), (5,), np.float32, name="GELU()(x)").data
    np.testing.assert_allclose(y, [-0.004, -0.159, 0.0, 0.841, 2.996], atol=1e-3)
    xs = np.random.default_rng(0).standard_normal(7) * 3
    gradcheck(lambda t: GELU()(t), Tensor(xs, dtype=np.float64))
    assert np.isfinite(GELU()(Tensor(np.array([-1e4, 1e4], dtype=np.float32))).data).all()
    mlp = MLP(8, seed=0)
    assert_tensor(mlp(Tensor(np.ones((2, 3, 8), dtype=np.float32))), (2, 3, 8), np.float32, name="MLP(8)(x)")
    n = sum(p.size for p in mlp.parameters())
    assert n == 8 * 32 + 32 + 32 * 8 + 8, f"expected {8 * 32 + 32 + 32 * 8 + 8} parameters, got {n}"
    print(f"GELU and MLP(8): {n} parameters, gradient checked")


check_gelu_mlp()


# %% [markdown]
# ## 3. The pre-norm transformer block
#
# ```
#          x (B, T, C)
#          |------------------------.
#          v                        |
#       LayerNorm -> causal MHA     |   "communicate": each position reads the earlier ones
#          |                        |
#          +<-----------------------'   residual: x = x + attn(ln1(x))
#          |------------------------.
#          v                        |
#       LayerNorm -> MLP            |   "compute": each position thinks on its own
#          |                        |
#          +<-----------------------'   residual: x = x + mlp(ln2(x))
#          v
#        (B, T, C)
# ```
#
# *Pre*-norm (LayerNorm inside the branch, as in GPT-2) keeps the residual path a clean sum from
# the embeddings to the output, so gradients reach the first layer undiminished. The original
# 2017 transformer normalized after the addition (post-norm) and needed careful warm-up.

# %% nbgrader={"grade": false, "grade_id": "block", "locked": false, "schema_version": 3, "solution": true}
#| export
class TransformerBlock(Module):
    """Pre-norm block: x + attn(ln1(x)), then + mlp(ln2(x)). TransformerBlock(n_embd, n_head, seed)."""

    def __init__(self, n_embd: int, n_head: int, seed=None):
        super().__init__()
        s = child_seeds(seed, 2)
        self.ln1 = LayerNorm(n_embd)
        self.attn = MultiHeadAttention(n_embd, n_head, seed=s[0])
        self.ln2 = LayerNorm(n_embd)
        self.mlp = MLP(n_embd, seed=s[1])

    def forward(self, x: Tensor, mask=None) -> Tensor:
        """x (B, T, C) -> (B, T, C); mask defaults to causal_mask(T)."""
        if mask is None:
            mask = causal_mask(x.shape[1])
        ### BEGIN SOLUTION
        x = x + self.attn(self.ln1(x), mask=mask)      # (B, T, C)
        x = x + self.mlp(self.ln2(x))                  # (B, T, C)
        return x
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-block", "locked": true, "points": 3, "schema_version": 3, "solution": false}
def test_unit_block():
    """Shape, residual structure and causality of one block."""
    blk = TransformerBlock(16, 4, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 5, 16)).astype(np.float32)
    y = assert_tensor(blk(Tensor(x)), (2, 5, 16), np.float32, name="TransformerBlock(16, 4)(x)")
    # residual: y - x is exactly what the two branches add
    h = x + blk.attn(blk.ln1(Tensor(x)), mask=causal_mask(5)).data
    ref = h + blk.mlp(blk.ln2(Tensor(h))).data
    np.testing.assert_allclose(y.data, ref, rtol=1e-5, atol=1e-5)
    x2 = x.copy()
    x2[:, 3:] = 0.0
    y2 = blk(Tensor(x2))
    np.testing.assert_allclose(y.data[:, :3], y2.data[:, :3], atol=1e-5,
                               err_msg="positions 0..2 changed when only 3..4 changed: not causal")
    ### BEGIN HIDDEN TESTS
    n = sum(p.size for p in blk.parameters())
    assert n == 12 * 16 * 16 + 13 * 16, f"block parameter count {n}"
    ### END HIDDEN TESTS


test_unit_block()

# %% [markdown]
# ## 4. The GPT decoder
#
# ```
#   idx (B, T) int token ids
#     |-- tok_emb: Embedding(V, C) ---> (B, T, C)
#     |-- pos_emb: Embedding(block_size, C) of [0..T-1] ---> (T, C), broadcast over B
#   x = tok + pos                                   (B, T, C)
#   x = block_1(x) ... block_L(x)                   (B, T, C)
#   x = ln_f(x)                                     (B, T, C)
#   logits = lm_head(x), Linear(C, V, bias=False)   (B, T, V)
# ```
#
# logits[b, t] scores every vocabulary entry as the token that comes *after* position t. One
# forward pass of a length-T sequence thus gives T training examples at once, which is why
# the causal mask matters: without it, position t could read token t+1 and simply copy it.
#
# Initialization follows GPT-2: every weight ~ Normal(0, 0.02), biases 0, and the two
# projections that write into the residual stream (attention `out_proj`, MLP `proj`) scaled by
# 1/sqrt(2 * n_layer) so the residual sum does not grow with depth.
#
# Worked numbers for milestone 5's Shakespeare model (V = 65, block 64, 4 layers, C = 128):
# embeddings 65*128 + 64*128 = 16,512; each block 12*128^2 + 13*128 = 198,272 (attention
# 66,048, MLP 131,712, two LayerNorms 512); ln_f 256; head 128*65 = 8,320. Total 818,176.

# %% nbgrader={"grade": false, "grade_id": "gpt", "locked": false, "schema_version": 3, "solution": true}
#| export
class GPT(Module):
    """GPT(vocab_size, block_size, n_layer, n_head, n_embd, seed=None): a decoder-only transformer.

    forward(idx) with idx (B, T) integer ids (NumPy array or Tensor), T <= block_size,
    returns logits (B, T, vocab_size).
    """

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int,
                 n_embd: int, seed=None):
        super().__init__()
        self.vocab_size, self.block_size = vocab_size, block_size
        self.n_layer, self.n_head, self.n_embd = n_layer, n_head, n_embd
        s = child_seeds(seed, n_layer + 4)
        self.tok_emb = Embedding(vocab_size, n_embd, seed=s[0])
        self.pos_emb = Embedding(block_size, n_embd, seed=s[1])
        self.blocks = [TransformerBlock(n_embd, n_head, seed=s[4 + i]) for i in range(n_layer)]
        self.ln_f = LayerNorm(n_embd)
        self.lm_head = Linear(n_embd, vocab_size, bias=False, seed=s[2])
        self._init_weights(seed=s[3])

    def _init_weights(self, seed=None):
        """GPT-2 initialization: N(0, 0.02) weights, zero biases, scaled residual projections."""
        rng = np.random.default_rng(seed)
        for name, p in self.named_parameters():
            if name.endswith("bias") or ".ln" in name or name.startswith("ln_f"):
                continue                       # biases and LayerNorm gains keep their init
            std = 0.02
            if name.endswith("out_proj.weight") or name.endswith("mlp.proj.weight"):
                std = 0.02 / np.sqrt(2 * self.n_layer)
            p.data[...] = rng.normal(0.0, std, p.shape).astype(np.float32)
        for name, p in self.named_parameters():
            if name.endswith("bias") and ".ln" not in name and not name.startswith("ln_f"):
                p.data[...] = 0.0

    def forward(self, idx) -> Tensor:
        idx = np.asarray(idx.data if isinstance(idx, Tensor) else idx)
        if idx.ndim != 2:
            raise ValueError(f"GPT expected token ids of shape (B, T), got {idx.shape}")
        B, T = idx.shape
        if T > self.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.block_size}")
        ### BEGIN SOLUTION
        tok = self.tok_emb(idx)                            # (B, T, C)
        pos = self.pos_emb(np.arange(T))                   # (T, C)
        x = tok + pos                                      # (B, T, C)
        mask = causal_mask(T)                              # (T, T)
        for block in self.blocks:
            x = block(x, mask=mask)                        # (B, T, C)
        x = self.ln_f(x)                                   # (B, T, C)
        return self.lm_head(x)                             # (B, T, V)
        ### END SOLUTION

    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int = None,
                 seed=None, use_cache: bool = False) -> np.ndarray:
        """Append max_new_tokens sampled tokens to idx (B, T); returns int64 ids (B, T + new).

        temperature 0 means greedy (argmax); top_k keeps only the k most likely tokens.
        use_cache=True keeps every layer's keys and values (module 17's KV cache) instead of
        running the whole context again for each token, and runs each step on the weights
        packed for inference (module 17's FusedDecoder): the same tokens, much faster.
        """
        if use_cache:
            from tinytorch.generation.kv_cache import generate_fused  # module 17
            return generate_fused(self, idx, max_new_tokens, temperature=temperature, top_k=top_k, seed=seed)
        return generate(self, idx, max_new_tokens, temperature=temperature, top_k=top_k, seed=seed)


# %% [markdown]
# ## 5. Generating text
#
# Generation is a loop: run the model on the context, take the logits of the *last* position,
# turn them into a distribution and draw the next token, append, repeat. The context is cropped
# to the last `block_size` tokens because the position table has no row beyond that.
#
# ```
#   logits (V,) = [2.0, 1.0, 0.1]      temperature 1.0 -> softmax [0.66, 0.24, 0.10]
#                 divided by 0.5    -> [4.0, 2.0, 0.2] -> softmax [0.86, 0.12, 0.02]  sharper
#   top_k = 2: set every logit below the 2nd largest to -inf -> [0.73, 0.27, 0.00]
#   temperature 0: argmax, deterministic (what a Q&A evaluation wants)
# ```
#
# Sampling draws u ~ U(0, 1) per row and picks the first token whose cumulative probability
# exceeds u; a seeded `np.random.default_rng(seed)` makes the text reproducible.

# %% nbgrader={"grade": false, "grade_id": "generate", "locked": false, "schema_version": 3, "solution": true}
#| export
def generate(model, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int = None,
             seed=None) -> np.ndarray:
    """Autoregressive sampling from model (a GPT). idx (B, T) ints -> (B, T + max_new_tokens) int64.

    HINT: inside `with no_grad():` loop max_new_tokens times:
          ctx = idx[:, -model.block_size:]; logits = model(ctx).data[:, -1, :]   # (B, V)
          greedy if temperature == 0, else divide by temperature, keep top_k, softmax,
          sample with rng.random((B, 1)) against the cumulative sum.
    """
    idx = np.asarray(idx.data if isinstance(idx, Tensor) else idx, dtype=np.int64)
    if idx.ndim == 1:
        idx = idx[None, :]                                 # (1, T)
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    rng = np.random.default_rng(seed)
    ### BEGIN SOLUTION
    with no_grad():
        for _ in range(max_new_tokens):
            ctx = idx[:, -model.block_size:]                               # (B, <=block)
            logits = model(ctx).data[:, -1, :].astype(np.float64)         # (B, V)
            if temperature == 0:
                nxt = logits.argmax(axis=-1)                               # (B,)
            else:
                logits = logits / temperature
                if top_k is not None:
                    k = min(int(top_k), logits.shape[-1])
                    kth = np.sort(logits, axis=-1)[:, -k][:, None]         # (B, 1)
                    logits = np.where(logits < kth, -np.inf, logits)
                p = np.exp(logits - logits.max(axis=-1, keepdims=True))
                p /= p.sum(axis=-1, keepdims=True)                         # (B, V)
                u = rng.random((p.shape[0], 1))                            # (B, 1)
                nxt = (p.cumsum(axis=-1) < u).sum(axis=-1)                 # (B,)
                nxt = np.minimum(nxt, p.shape[-1] - 1)
            idx = np.concatenate([idx, nxt[:, None].astype(np.int64)], axis=1)
    return idx
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-gpt", "locked": true, "points": 3, "schema_version": 3, "solution": false}
def test_unit_gpt():
    """Logit shapes, parameter count formula, causality, and one training step reduces the loss."""
    V, bs, L, H, C = 11, 8, 2, 2, 16
    m = GPT(V, bs, L, H, C, seed=0)
    n = sum(p.size for p in m.parameters())
    expect = V * C + bs * C + L * (12 * C * C + 13 * C) + 2 * C + C * V
    assert n == expect, f"expected {expect} parameters, got {n}"
    idx = np.random.default_rng(0).integers(0, V, (3, 6))
    logits = assert_tensor(m(idx), (3, 6, V), np.float32, name="GPT logits")
    # the layers in order: token + position embeddings, the blocks (causal), the final LayerNorm, the head
    with no_grad():
        h = m.tok_emb(idx) + m.pos_emb(np.arange(6))
        for blk in m.blocks:
            h = blk(h, mask=causal_mask(6))
        ref = m.lm_head(m.ln_f(h).reshape(18, C)).data.reshape(3, 6, V)
    np.testing.assert_allclose(logits.data, ref, rtol=1e-5, atol=1e-5)
    idx2 = idx.copy()
    idx2[:, 4:] = (idx2[:, 4:] + 1) % V
    np.testing.assert_allclose(m(idx2).data[:, :4], logits.data[:, :4], atol=1e-5,
                               err_msg="logits of early positions depend on later tokens")
    try:
        m(np.zeros((1, bs + 1), dtype=np.int64))
    except ValueError as e:
        assert str(bs) in str(e), f"error should name block_size {bs}: {e}"
    else:
        raise AssertionError("a sequence longer than block_size must raise")
    ### BEGIN HIDDEN TESTS
    m2 = GPT(V, bs, L, H, C, seed=0)
    np.testing.assert_array_equal(m2(idx).data, logits.data)
    ### END HIDDEN TESTS


test_unit_gpt()


# %% nbgrader={"grade": true, "grade_id": "test-generate", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_generate():
    """Lengths, reproducibility with a seed, greedy decoding, top-k."""
    m = GPT(7, 4, 1, 1, 8, seed=1)
    start = np.array([[1, 2]])
    a = m.generate(start, 6, temperature=1.0, seed=3)
    b = m.generate(start, 6, temperature=1.0, seed=3)
    assert a.shape == (1, 8), f"expected (1, 8), got {a.shape}"
    assert np.array_equal(a, b), "same seed must give the same tokens"
    assert np.array_equal(a[:, :2], start), "the prompt must be kept"
    assert a.min() >= 0 and a.max() < 7, f"ids outside the vocabulary: {a}"
    g = m.generate(start, 3, temperature=0)
    with no_grad():
        first = m(start).data[0, -1].argmax()
    assert g[0, 2] == first, f"greedy must pick argmax {first}, got {g[0, 2]}"
    ref = start.copy()
    with no_grad():
        for _ in range(3):  # greedy by hand: the last position's argmax, the context cropped to block_size 4
            ref = np.concatenate([ref, m(ref[:, -4:]).data[:, -1].argmax(axis=-1)[:, None]], axis=1)
    assert np.array_equal(g, ref), f"greedy continuation: expected {ref.tolist()}, got {g.tolist()}"
    k1 = m.generate(start, 5, temperature=1.0, top_k=1, seed=9)
    assert np.array_equal(k1, m.generate(start, 5, temperature=0)), "top_k=1 equals greedy"
    cold = m.generate(start, 5, temperature=1e-4, seed=9)
    assert np.array_equal(cold, m.generate(start, 5, temperature=0)), "a tiny temperature is (almost) greedy"
    samples = {tuple(m.generate(start, 6, temperature=1.0, seed=s)[0]) for s in range(5)}
    assert len(samples) > 1, "temperature 1 must sample: five seeds gave the same tokens"
    ### BEGIN HIDDEN TESTS
    many = m.generate(np.zeros((4, 1), dtype=np.int64), 10, seed=0)
    assert many.shape == (4, 11)
    ### END HIDDEN TESTS


test_unit_generate()

# %% [markdown]
# ## 6. Systems measurement: where the memory goes
#
# Parameters are paid once; activations are paid per token in the batch, because autograd
# keeps every intermediate for backward. Below, a model of milestone 5's size (V = 65,
# block 64, 4 layers, 4 heads, C = 128) reports its parameters by component, then runs a
# forward pass with gradients on a batch of 12 x 64 tokens and walks the graph to add up the
# bytes of every intermediate it holds, grouped by the operation that produced it.

# %%
import time
from collections import defaultdict

from tinytorch.core.autograd import topological_order


def params_by_component(model):
    """Parameter count grouped by the first two name parts (e.g. blocks.0)."""
    groups = defaultdict(int)
    for name, p in model.named_parameters():
        parts = name.split(".")
        key = parts[0] if parts[0] != "blocks" else "blocks.*." + parts[2]
        groups[key] += p.size
    return dict(groups)


def activation_bytes_by_op(out):
    """Bytes of every tensor the graph below `out` holds, grouped by the op that produced it."""
    groups = defaultdict(int)
    for t in topological_order(out):                   # module 05's graph walk
        ctx = t._ctx
        if ctx is None:
            continue
        if any(np.may_share_memory(t.data, i.data) for i in ctx.inputs):
            groups["(views: no new memory)"] += 0
            continue
        groups[type(ctx).__name__] += t.data.nbytes
    return dict(groups)


demo = GPT(65, 64, 4, 4, 128, seed=0)
pc = params_by_component(demo)
total = sum(pc.values())
print(f"parameters: {total:,} ({total * 4 / 2**20:.2f} MiB float32)")
for k in sorted(pc, key=pc.get, reverse=True):
    print(f"  {k:<18} {pc[k]:>9,}  {100 * pc[k] / total:5.1f}%")

idx = np.random.default_rng(0).integers(0, 65, (12, 64))
logits = demo(idx)
acts = activation_bytes_by_op(logits)
atot = sum(acts.values())
print(f"\nactivations held for backward, batch 12 x 64: {atot / 2**20:.2f} MiB "
      f"({atot / (total * 4):.1f}x the parameters)")
for k in sorted(acts, key=acts.get, reverse=True)[:8]:
    print(f"  {k:<28} {acts[k] / 2**20:7.2f} MiB")
del logits

# %% [markdown]
# ## 7. Systems measurement: why caching matters
#
# `generate` re-runs the model on the whole context for every new token. At context length t
# that forward costs about t times the work of one token, so producing n tokens costs
# 1 + 2 + ... + n ~ n^2 / 2 token-forwards. Measure the time of one generation step at growing
# context lengths:

# %%
def time_step(model, t, repeats=3, seed=0):
    ctx = np.random.default_rng(seed).integers(0, model.vocab_size, (1, t))
    best = float("inf")
    with no_grad():
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(ctx)
            best = min(best, time.perf_counter() - t0)
    return best


steps = [(t, time_step(demo, t)) for t in (8, 16, 32, 64)]
base = steps[0][1]
print(f"{'context':>8} {'ms per new token':>17} {'vs t=8':>7}")
for t, dt in steps:
    print(f"{t:>8} {dt * 1e3:>17.2f} {dt / base:>6.1f}x")
naive = sum(time_step(demo, t, repeats=1) for t in range(1, 65))
one = time_step(demo, 1)
print(f"generating 64 tokens from scratch, no cache: {naive * 1e3:.0f} ms measured")
print(f"64 forwards of a single token:              {64 * one * 1e3:.0f} ms measured "
      f"(what each step would cost if past keys/values were cached; module 17)")


# %% nbgrader={"grade": true, "grade_id": "test-module", "locked": true, "points": 3, "schema_version": 3, "solution": false}
def test_module():
    """A tiny GPT memorizes a repeating sequence: loss falls and greedy generation continues it."""
    from tinytorch.core.optimizers import Adam

    seq = np.array([0, 1, 2, 3, 4, 5] * 4)                # period-6 pattern, V = 6
    m = GPT(6, 8, 1, 2, 16, seed=0)
    opt = Adam(m.parameters(), lr=1e-2)
    x = np.stack([seq[i:i + 8] for i in range(8)])         # (8, 8)
    y = np.stack([seq[i + 1:i + 9] for i in range(8)])     # (8, 8)
    first = None
    for step in range(60):
        logits = m(x)                                      # (8, 8, 6)
        z = logits.reshape(64, 6)
        zmax = Tensor(z.data.max(axis=-1, keepdims=True))
        lse = ((z - zmax).exp().sum(axis=-1, keepdims=True)).log() + zmax
        onehot = np.eye(6, dtype=np.float32)[y.reshape(-1)]
        loss = ((lse - z) * onehot).sum() * (1.0 / 64)
        if first is None:
            first = loss.item()
        m.zero_grad()
        loss.backward()
        for name, p in m.named_parameters():
            assert p.grad is not None and p.grad.data.dtype == np.float32, f"{name}: bad grad"
        opt.step()
    assert loss.item() < 0.1 * first, f"loss only went from {first:.3f} to {loss.item():.3f}"
    out = m.generate(np.array([[2, 3, 4]]), 6, temperature=0)
    assert out[0].tolist() == [2, 3, 4, 5, 0, 1, 2, 3, 4], f"greedy continuation was {out[0].tolist()}"


test_module()

# %% [markdown]
# ## Reflect
#
# 1. In your parameter table, the blocks dominate and the MLP takes about two thirds of each
#    block (8C^2 of 12C^2). For GPT-2 small (C = 768, 12 layers, V = 50,257), what fraction of the
#    124M parameters sits in the token embedding? Why is it so much larger there than here?
# 2. Your activation measurement found the graph holding several times the parameter memory for
#    only 768 tokens. Which ops held the most? Activation memory grows with B * T (and the
#    attention part with B * T^2); parameters do not. What does this suggest about the batch size
#    you can train with on a laptop, and about techniques like activation checkpointing?
# 3. The generation timing shows cost per token growing with the context. Write the total cost of
#    generating n tokens with and without caching the keys and values of past positions. At
#    n = 1,000, how many times more work is the uncached loop?
# 4. Pre-norm vs post-norm: in a pre-norm stack of L blocks, the output is x_0 + sum of L branch
#    outputs. Why does that help gradients reach the first block, and why does GPT-2 scale the
#    residual projections by 1/sqrt(2L) at initialization?
