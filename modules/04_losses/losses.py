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
# # Module 04: Losses
#
# A network's output means nothing until something scores it. The loss function turns
# "prediction vs truth" into a single number, and everything training does (module 05's
# gradients, module 06's updates) is an effort to make that number smaller. Losses are
# also where numerical bugs become fatal: a single `log(0)` is `-inf`, its gradient is
# `inf`, and one step later every weight is `nan`. In this module you write the three
# losses that cover most of deep learning (mean squared error for regression, binary
# cross-entropy for yes/no, cross-entropy over classes for classification and language
# modelling), built on a numerically stable `log_softmax`, and you measure what the
# stable versions save you from, and how much memory the logits of a language model take.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far               you build now                   this unlocks
#   ------------               -------------                   ------------
#   01 Tensor       ----->     04 Losses              ----->   05 Autograd (loss.backward()
#   02 Activations  ----->     log_softmax(x, dim)               starts at this scalar)
#   (Sigmoid, Softmax)         MSELoss                         07 Training (minimize it)
#   03 Layers       ----->     BinaryCrossEntropyLoss          milestone 1 (Perceptron)
#   (Linear, Sequential)       CrossEntropyLoss                13 GPT (next-token loss)
# ```
#
# Every loss has `forward(predictions, targets) -> Tensor` (a scalar, shape `()`) and
# `__call__`. The forward here is plain NumPy on `.data`; module 05's `enable_autograd()`
# replaces it with a differentiable version, so keep the names exactly.

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp core.losses
#| export
#| namespace tinytorch.nn MSELoss BinaryCrossEntropyLoss BCELoss CrossEntropyLoss
#| namespace tinytorch.nn.functional log_softmax
import numpy as np

from tinytorch.core.activations import _check_dim, _float_data
from tinytorch.core.tensor import Tensor, _wrap

# %% [markdown]
# ### Helpers (provided)
#
# `_float_data` and `_check_dim` are module 02's (the float array behind an input; a checked
# `dim`), `_wrap` is module 01's (a Tensor that keeps its dtype). `_check_same_shape` refuses
# predictions and targets of different shapes: with broadcasting, `(N, 1) - (N,)` is silently
# an `(N, N)` matrix, and the loss is then a wrong number that still goes down during
# training, one of the nastiest bugs there is. `_class_indices` turns class targets (a list,
# an integer array, or a Tensor, whose data may be float32 because `Tensor([0, 2, 1])` is
# float32) into a checked int64 array, and `_check_probabilities` refuses binary targets
# outside [0, 1]. Module 05's differentiable losses check their inputs with these same helpers.

# %% nbgrader={"grade": false, "grade_id": "helpers", "locked": true, "schema_version": 3, "solution": false}
#| export
def _check_same_shape(pred: np.ndarray, target: np.ndarray, who: str) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"{who}: predictions and targets must have the same shape, got predictions "
                         f"{pred.shape} and targets {target.shape} (reshape one of them; broadcasting "
                         f"here would silently compute the wrong loss)")


def _check_probabilities(target: np.ndarray, who: str) -> None:
    """Binary targets must lie in [0, 1] (they are probabilities too)."""
    if target.size and (target.min() < 0 or target.max() > 1):
        raise ValueError(f"{who}: targets must be in [0, 1], got min {target.min()} and max {target.max()}")


def _class_indices(targets, logits_shape: tuple, who: str) -> np.ndarray:
    """Targets as an int64 array of shape logits_shape[:-1], every value in [0, C)."""
    t = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if t.dtype.kind == "f":
        if not np.all(np.isfinite(t)) or not np.all(t == np.round(t)):
            raise ValueError(f"{who}: targets must be integer class indices, got non-integer values")
        t = t.astype(np.int64)
    elif t.dtype.kind not in "iu":
        raise TypeError(f"{who}: targets must be integer class indices, got dtype {t.dtype}")
    if len(logits_shape) < 1:
        raise ValueError(f"{who}: expected logits of shape (N, C), got a scalar")
    expected = tuple(logits_shape[:-1])
    if t.shape != expected:
        raise ValueError(f"{who}: logits {tuple(logits_shape)} need targets of shape {expected}, got {t.shape}")
    num_classes = logits_shape[-1]
    if t.size and (t.min() < 0 or t.max() >= num_classes):
        raise ValueError(f"{who}: class indices must be in [0, {num_classes}), got min {t.min()} and max {t.max()}")
    return t.astype(np.int64, copy=False)

# %% [markdown]
# ## 1. Mean squared error
#
# For regression: the average squared distance between prediction and target.
#
# ```
#   MSE = mean( (pred - target)^2 )
#
#   pred   = [2.5, 0.0, 2.0]
#   target = [3.0, -0.5, 2.0]
#   diff   = [-0.5, 0.5, 0.0]  ->  squared [0.25, 0.25, 0.0]  ->  mean 0.1667
# ```
#
# Squaring punishes big errors much more than small ones (an error of 10 costs 100 times
# an error of 1), which is why a few outliers can dominate an MSE-trained model.

# %% nbgrader={"grade": false, "grade_id": "mse", "locked": false, "schema_version": 3, "solution": true}
#| export
class MSELoss:
    """Mean squared error over all elements."""

    def forward(self, predictions: Tensor, targets: Tensor) -> Tensor:
        """Return mean((predictions - targets)**2) as a scalar Tensor (shape ()).

        HINT: _float_data for both, cast targets to the predictions' dtype, _check_same_shape.
        """
        ### BEGIN SOLUTION
        pred = _float_data(predictions)                          # (N, ...) any shape
        target = _float_data(targets).astype(pred.dtype, copy=False)
        _check_same_shape(pred, target, "MSELoss")
        diff = pred - target                                     # (N, ...)
        return _wrap(np.mean(diff * diff, dtype=pred.dtype))     # ()
        ### END SOLUTION

    def __call__(self, predictions: Tensor, targets: Tensor) -> Tensor:
        return self.forward(predictions, targets)

    def __repr__(self) -> str:
        return "MSELoss()"

# %% nbgrader={"grade": true, "grade_id": "test-mse", "locked": true, "points": 1, "schema_version": 3, "solution": false}
from tinytorch.testing import assert_tensor


def test_unit_mse():
    """MSE: worked example, scalar float32 Tensor, zero for perfect predictions, shape check."""
    loss = assert_tensor(MSELoss()(Tensor([2.5, 0.0, 2.0]), Tensor([3.0, -0.5, 2.0])), (), np.float32,
                         name="a loss (a scalar)")
    assert abs(loss.item() - 1 / 6) < 1e-6, f"expected 0.16667, got {loss.item()}"
    mixed = MSELoss()(Tensor([2.5, 0.0, 2.0]), np.array([3.0, -0.5, 2.0]))  # float64 targets
    assert_tensor(mixed, (), np.float32, name="MSELoss with float64 targets")
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    assert MSELoss()(Tensor(x), Tensor(x)).item() == 0.0
    try:
        MSELoss()(Tensor(np.zeros((4, 1), dtype=np.float32)), Tensor(np.zeros(4, dtype=np.float32)))
    except ValueError as e:
        assert "(4, 1)" in str(e) and "(4,)" in str(e), f"name both shapes: {e}"
    else:
        raise AssertionError("(4, 1) vs (4,) must raise ValueError, not broadcast to (4, 4)")
    ### BEGIN HIDDEN TESTS
    assert abs(MSELoss()(Tensor([[1.0, 2.0]]), np.array([[3.0, 2.0]])).item() - 2.0) < 1e-6
    ### END HIDDEN TESTS
    print("test_unit_mse passed")


test_unit_mse()

# %% [markdown]
# ## 2. Binary cross-entropy, and log(0)
#
# For yes/no targets `t` in {0, 1} and predicted probabilities `p` in (0, 1) (the output of
# a Sigmoid):
#
# ```
#   BCE = -mean( t * log(p) + (1 - t) * log(1 - p) )
#
#   t = 1, p = 0.9   ->  -log(0.9)  = 0.105     confident and right: small loss
#   t = 1, p = 0.1   ->  -log(0.1)  = 2.303     confident and wrong: large loss
#   t = 1, p = 0.0   ->  -log(0.0)  = inf       certain and wrong: infinite loss
# ```
#
# A Sigmoid in float32 returns exactly 0.0 for inputs below about -104 and exactly 1.0 above
# about 17 (`1 + exp(-17)` already rounds to 1.0), so `p = 0` and `p = 1` do happen. Then
# `log(0) = -inf`, and even for the *correct* class `0 * log(0) = 0 * -inf = nan`. The fix:
# clip `p` into `[eps, 1 - eps]` before taking logs, with `eps = 1e-7`. The largest possible
# loss per element becomes `-log(1e-7) = 16.1`: large, finite, and with a finite gradient.
#
# (In float32, `1 - 1e-7` rounds to `0.99999988`, which is still below 1, so `log(1 - p)`
# stays finite at the top end too. PyTorch's `BCEWithLogitsLoss` avoids the problem
# altogether by working on logits; module 05 can fuse Sigmoid and BCE the same way.)

# %% nbgrader={"grade": false, "grade_id": "bce", "locked": false, "schema_version": 3, "solution": true}
#| export
class BinaryCrossEntropyLoss:
    """Binary cross-entropy on probabilities, clipped to [eps, 1 - eps]."""

    def __init__(self, eps: float = 1e-7):
        if not 0.0 < eps < 0.5:
            raise ValueError(f"BinaryCrossEntropyLoss: eps must be in (0, 0.5), got {eps}")
        self.eps = eps

    def forward(self, predictions: Tensor, targets: Tensor) -> Tensor:
        """Return -mean(t log p + (1 - t) log(1 - p)) with p clipped to [eps, 1 - eps].

        Predictions are probabilities (after a Sigmoid); targets are in [0, 1], same shape.
        HINT: np.clip(pred, self.eps, 1 - self.eps); _check_probabilities(target, ...) first.
        """
        ### BEGIN SOLUTION
        pred = _float_data(predictions)                               # (N, ...)
        target = _float_data(targets).astype(pred.dtype, copy=False)
        _check_same_shape(pred, target, "BinaryCrossEntropyLoss")
        _check_probabilities(target, "BinaryCrossEntropyLoss")
        p = np.clip(pred, self.eps, 1 - self.eps)                     # (N, ...) never 0 or 1
        per_element = target * np.log(p) + (1 - target) * np.log(1 - p)
        return _wrap(-np.mean(per_element, dtype=pred.dtype))         # ()
        ### END SOLUTION

    def __call__(self, predictions: Tensor, targets: Tensor) -> Tensor:
        return self.forward(predictions, targets)

    def __repr__(self) -> str:
        return f"BinaryCrossEntropyLoss(eps={self.eps})"


BCELoss = BinaryCrossEntropyLoss  # PyTorch's name

# %% nbgrader={"grade": true, "grade_id": "test-bce", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_bce():
    """BCE: worked values, exactly 0 and 1 stay finite, scalar float32, target checks."""
    bce = BinaryCrossEntropyLoss()
    loss = assert_tensor(bce(Tensor([0.9, 0.1]), Tensor([1.0, 1.0])), (), np.float32, name="BCE loss")
    np.testing.assert_allclose(loss.item(), (0.1053605 + 2.3025851) / 2, rtol=1e-5)
    np.testing.assert_allclose(bce(Tensor([0.3]), Tensor([0.0])).item(), -np.log(0.7), rtol=1e-5)
    with np.errstate(divide="raise", invalid="raise"):   # log(0) would raise here
        right = bce(Tensor([0.0, 1.0]), Tensor([0.0, 1.0])).item()
        wrong = bce(Tensor([0.0, 1.0]), Tensor([1.0, 0.0])).item()
    assert np.isfinite(right) and right < 1e-5, f"certain and right must be ~0, got {right}"
    assert np.isfinite(wrong) and 15 < wrong < 17, f"certain and wrong must be ~-log(1e-7) = 16.1, got {wrong}"
    assert BCELoss is BinaryCrossEntropyLoss
    try:
        bce(Tensor([0.5]), Tensor([2.0]))
    except ValueError:
        pass
    else:
        raise AssertionError("a target of 2.0 must raise ValueError")
    ### BEGIN HIDDEN TESTS
    np.testing.assert_allclose(bce(Tensor([[0.5, 0.5]]), Tensor([[1.0, 0.0]])).item(), np.log(2), rtol=1e-5)
    ### END HIDDEN TESTS
    print("test_unit_bce passed")


test_unit_bce()

# %% [markdown]
# ## 3. log_softmax: the stable road to cross-entropy
#
# Cross-entropy over `C` classes needs `log(softmax(x))` of the correct class. Computing
# softmax first and then the log fails twice over: softmax underflows to exactly 0 for a
# class whose logit is far below the maximum (`exp(-104)` is 0 in float32), and `log(0)`
# is `-inf`. Do the algebra first instead. With `m = max(x)`:
#
# ```
#   log softmax(x)_i = log( exp(x_i) / sum_j exp(x_j) )
#                    = x_i - log sum_j exp(x_j)
#                    = (x_i - m) - log sum_j exp(x_j - m)        ("log-sum-exp" trick)
#
#   x = [2.0, 1.0, 0.1], m = 2.0
#   x - m            = [ 0.0, -1.0, -1.9]
#   sum exp(x - m)   = 1 + 0.368 + 0.150 = 1.518,   log = 0.417
#   log_softmax      = [-0.417, -1.417, -2.317]     (exp gives back 0.659, 0.242, 0.099)
#
#   x = [0, 1000]:   x - m = [-1000, 0],  log sum exp = log(0 + 1) = 0
#   log_softmax      = [-1000, 0]          exact; softmax-then-log would give [-inf, 0]
# ```
#
# The largest term of the sum is `exp(0) = 1`, so the sum is in `[1, C]` and its log is in
# `[0, log C]`: no overflow, no log(0), for any logits.

# %% nbgrader={"grade": false, "grade_id": "log-softmax", "locked": false, "schema_version": 3, "solution": true}
#| export
def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """log(softmax(x)) along ``dim``, computed as (x - m) - log(sum(exp(x - m))).

    EXAMPLE: log_softmax(Tensor([0.0, 1000.0])) -> Tensor([-1000., 0.])
    HINT: reductions with axis=dim and keepdims=True so (N, C) - (N, 1) broadcasts.
    """
    data = _float_data(x)
    _check_dim(dim, data.ndim, "log_softmax")
    ### BEGIN SOLUTION
    shifted = data - data.max(axis=dim, keepdims=True)                 # (N, C), max of each row is 0
    log_sum = np.log(np.exp(shifted).sum(axis=dim, keepdims=True))     # (N, 1), in [0, log C]
    return _wrap(shifted - log_sum)                                    # (N, C)
    ### END SOLUTION

# %% nbgrader={"grade": true, "grade_id": "test-log-softmax", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_log_softmax():
    """log_softmax: worked example, exp sums to 1, exact for huge gaps, finite at +-1e4, dim."""
    out = assert_tensor(log_softmax(Tensor([[2.0, 1.0, 0.1]])), (1, 3), np.float32, name="log_softmax(x)")
    np.testing.assert_allclose(out.data, [[-0.4170299, -1.4170299, -2.3170299]], rtol=1e-5)
    x = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32) * 3
    np.testing.assert_allclose(np.exp(log_softmax(Tensor(x)).data).sum(axis=-1), np.ones(5), rtol=1e-5)
    np.testing.assert_allclose(log_softmax(Tensor([0.0, 1000.0])).data, [-1000.0, 0.0])
    extreme = log_softmax(Tensor([[-1e4, 0.0, 1e4], [1e4, 1e4, 1e4]])).data
    assert np.all(np.isfinite(extreme)), f"log_softmax must be finite for +-1e4 logits, got {extreme}"
    np.testing.assert_allclose(extreme[1], [-np.log(3)] * 3, rtol=1e-5)
    cols = log_softmax(Tensor(x), dim=0).data
    np.testing.assert_allclose(np.exp(cols).sum(axis=0), np.ones(7), rtol=1e-5)
    ### BEGIN HIDDEN TESTS
    assert log_softmax(Tensor(np.zeros((2, 3, 4), dtype=np.float32)), dim=1).shape == (2, 3, 4)
    ### END HIDDEN TESTS
    print("test_unit_log_softmax passed")


test_unit_log_softmax()

# %% [markdown]
# ## 4. Cross-entropy over classes
#
# A classifier outputs one logit per class; the target is the index of the right class.
# The loss is the negative log-probability of the right class, averaged over the batch:
#
# ```
#   logits (N=2, C=3)          targets (N,)     log_softmax                  pick        -mean
#   [[2.0, 1.0, 0.1],          [0,              [[-0.417, -1.417, -2.317],   -0.417
#    [0.5, 2.5, 0.3]]           1]               [-2.220, -0.220, -2.420]]   -0.220  ->  0.319
# ```
#
# "Pick" is NumPy fancy indexing: `logp[np.arange(N), targets]` takes element
# `targets[i]` of row `i`. A model that knows nothing predicts uniform probabilities and
# scores `log(C)` (2.303 for 10 classes): the loss you should see before training starts.
#
# Logits with more dimensions, such as a language model's `(B, T, V)` with targets `(B, T)`,
# are handled by flattening to `(B*T, V)` and `(B*T,)`: one classification per token.
# (PyTorch puts the class dimension second for such inputs; we keep it last, where the
# logits of a Linear layer already have it.)

# %% nbgrader={"grade": false, "grade_id": "cross-entropy", "locked": false, "schema_version": 3, "solution": true}
#| export
class CrossEntropyLoss:
    """Mean negative log-likelihood of integer class targets under softmax(logits)."""

    def forward(self, predictions: Tensor, targets) -> Tensor:
        """Return -mean(log_softmax(logits)[i, targets[i]]) as a scalar Tensor.

        predictions: logits of shape (N, C) (or (..., C)); targets: class indices of shape
        (N,) (or (...)) as a list, integer array or Tensor.
        HINT: t = _class_indices(targets, logits.shape, "CrossEntropyLoss"); flatten with
        reshape(-1, C) and reshape(-1); then fancy indexing with np.arange.
        """
        logits = _float_data(predictions)
        ### BEGIN SOLUTION
        t = _class_indices(targets, logits.shape, "CrossEntropyLoss")    # (N,)
        num_classes = logits.shape[-1]
        logp = log_softmax(logits.reshape(-1, num_classes), dim=-1).data  # (N, C)
        picked = logp[np.arange(logp.shape[0]), t.reshape(-1)]            # (N,)
        return _wrap(-np.mean(picked, dtype=logits.dtype))                # ()
        ### END SOLUTION

    def __call__(self, predictions: Tensor, targets) -> Tensor:
        return self.forward(predictions, targets)

    def __repr__(self) -> str:
        return "CrossEntropyLoss()"

# %% nbgrader={"grade": true, "grade_id": "test-cross-entropy", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_cross_entropy():
    """Cross-entropy: worked example, uniform = log C, targets as list/array/Tensor, stability, errors."""
    ce = CrossEntropyLoss()
    logits = Tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
    loss = assert_tensor(ce(logits, np.array([0, 1])), (), np.float32, name="cross-entropy loss")
    np.testing.assert_allclose(loss.item(), (0.4170300 + 0.2200495) / 2, rtol=1e-5)
    assert abs(ce(logits, Tensor([0, 1])).item() - loss.item()) < 1e-7, "Tensor targets (float32 data) must work"
    assert abs(ce(logits, [0, 1]).item() - loss.item()) < 1e-7, "list targets must work"
    uniform = ce(Tensor(np.zeros((4, 10), dtype=np.float32)), np.array([0, 3, 5, 9]))
    np.testing.assert_allclose(uniform.item(), np.log(10), rtol=1e-6)
    huge = ce(Tensor([[1e4, -1e4, 0.0], [0.0, 0.0, 1e4]]), np.array([1, 2]))
    assert np.isfinite(huge.item()), f"logits of +-1e4 must give a finite loss, got {huge.item()}"
    np.testing.assert_allclose(huge.item(), 1e4, rtol=1e-5)  # (2e4 + 0) / 2
    seq = ce(Tensor(np.zeros((2, 3, 5), dtype=np.float32)), np.zeros((2, 3), dtype=np.int64))
    np.testing.assert_allclose(seq.item(), np.log(5), rtol=1e-6)
    for bad, kind in ((np.array([0, 3]), ValueError), (np.array([0]), ValueError), (np.array([0.5, 1.0]), ValueError)):
        try:
            ce(logits, bad)
        except kind:
            pass
        else:
            raise AssertionError(f"targets {bad} must raise {kind.__name__}")
    ### BEGIN HIDDEN TESTS
    np.testing.assert_allclose(ce(Tensor([[0.0, 0.0]]), np.array([1])).item(), np.log(2), rtol=1e-6)
    ### END HIDDEN TESTS
    print("test_unit_cross_entropy passed")


test_unit_cross_entropy()

# %% [markdown]
# ## 5. Systems measurement A: log(0) and large logits
#
# Below, the "textbook" losses (`-log(softmax(x))` and BCE without clipping) meet your
# stable versions. The logits are `[0, gap]` with the target on class 0, so the right
# answer is exactly `gap` (`log(1 + exp(-gap)) + gap`, which is `gap` to float32 precision
# once `gap > 17`).

# %%
def naive_cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    e = np.exp(logits)
    p = e / e.sum(axis=-1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(targets)), targets])))


print(f"{'gap':>8} | {'naive CE':>12} | {'your CE':>12}")
for gap in (1.0, 50.0, 100.0, 200.0, 1e4):
    lg = np.array([[0.0, gap]], dtype=np.float32)  # (1, 2)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        naive = naive_cross_entropy(lg, np.array([0]))
    ours = CrossEntropyLoss()(Tensor(lg), np.array([0])).item()
    print(f"{gap:>8.0f} | {naive:>12.4f} | {ours:>12.4f}")

print(f"\n{'p (sigmoid out)':>16} | {'target':>6} | {'naive BCE':>10} | {'your BCE':>10}")
for p, t in ((0.5, 1.0), (1e-3, 1.0), (0.0, 1.0), (0.0, 0.0), (1.0, 1.0)):
    with np.errstate(divide="ignore", invalid="ignore"):
        naive = float(-(t * np.log(np.float32(p)) + (1 - t) * np.log(np.float32(1 - p))))
    ours = BinaryCrossEntropyLoss()(Tensor([p]), Tensor([t])).item()
    print(f"{p:>16g} | {t:>6.0f} | {naive:>10.4f} | {ours:>10.4f}")

# %% [markdown]
# ## 6. Systems measurement B: the memory of the logits
#
# A classifier with 10 classes has tiny logits. A language model predicts one of `V`
# tokens at every position, so its logits are `(B, T, V)`: with GPT-2's vocabulary of
# V = 50,257 they are the largest activation of the whole model. And computing the loss
# needs more than the logits: `log_softmax` creates `shifted`, `exp(shifted)` and its own
# output, each as large as the logits (though not all alive at the same moment). Python's
# `tracemalloc` sees NumPy's allocations, so we can measure the peak extra memory of one
# call of your `CrossEntropyLoss`.

# %%
import tracemalloc


def loss_peak_bytes(logits: Tensor, targets: np.ndarray) -> int:
    """Peak bytes allocated while computing the loss (the logits themselves excluded)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    CrossEntropyLoss()(logits, targets)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


rows = 64  # tokens in the batch (B * T)
print(f"{'vocab V':>8} | {'logits MB':>10} | {'loss peak MB':>12} | {'peak / logits':>13}")
measured = {}
for vocab in (10, 1_000, 10_000, 50_257):
    rng = np.random.default_rng(0)
    lg = Tensor(rng.normal(size=(rows, vocab)).astype(np.float32))  # (B*T, V)
    tg = rng.integers(0, vocab, size=rows)                            # (B*T,)
    peak = loss_peak_bytes(lg, tg)
    measured[vocab] = (lg.memory_footprint(), peak)
    print(f"{vocab:>8,} | {lg.memory_footprint() / 1e6:>10.3f} | {peak / 1e6:>12.3f} | {peak / lg.memory_footprint():>13.2f}")

logit_bytes, peak_bytes = measured[50_257]
scale = (8 * 1024) / rows  # GPT-2-style batch: B=8 sequences of T=1024 tokens
print(f"\nscaled from the V=50,257 measurement to B=8, T=1024: logits {logit_bytes * scale / 1e9:.2f} GB, "
      f"loss temporaries {peak_bytes * scale / 1e9:.2f} GB")

# %% nbgrader={"grade": true, "grade_id": "test-module-losses", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_module():
    """Losses with layers and activations: a Linear classifier scored three ways."""
    from tinytorch.core.activations import Sigmoid, Softmax
    from tinytorch.core.layers import Linear

    rng = np.random.default_rng(0)
    x = Tensor(rng.normal(size=(16, 4)).astype(np.float32))      # (B, 4)
    logits = Linear(4, 3, seed=0)(x)                             # (B, 3)
    y = rng.integers(0, 3, size=16)                              # (B,)
    ce = CrossEntropyLoss()(logits, y)
    # cross-entropy equals the mean -log of the softmax probability of the right class
    probs = Softmax()(logits).data
    np.testing.assert_allclose(ce.item(), -np.mean(np.log(probs[np.arange(16), y])), rtol=1e-5)
    # BCE on a sigmoid output and MSE on a regression output are scalars too
    p = Sigmoid()(Linear(4, 1, seed=1)(x))                       # (B, 1)
    bce = BCELoss()(p, Tensor((y == 0).astype(np.float32).reshape(16, 1)))
    mse = MSELoss()(Linear(4, 1, seed=2)(x), Tensor(np.zeros((16, 1), dtype=np.float32)))
    for loss in (ce, bce, mse):
        assert isinstance(loss, Tensor) and loss.shape == () and loss.dtype == np.float32, f"got {loss!r}"
        assert np.isfinite(loss.item()) and loss.item() >= 0
    print("test_module passed: losses score the outputs of layers")


test_module()

# %% [markdown]
# ## The function forms of the losses
#
# `F.mse_loss(pred, target)`, `F.binary_cross_entropy(prob, target)` and
# `F.cross_entropy(logits, labels)` are the loss classes called once; `F.log_softmax` is the
# function you wrote above.

# %% nbgrader={"grade": false, "grade_id": "functional", "locked": true, "schema_version": 3, "solution": false}
#| export
#| namespace tinytorch.nn.functional mse_loss binary_cross_entropy cross_entropy
def mse_loss(predictions, targets) -> Tensor:
    return MSELoss()(predictions, targets)


def binary_cross_entropy(predictions, targets) -> Tensor:
    return BinaryCrossEntropyLoss()(predictions, targets)


def cross_entropy(logits, targets) -> Tensor:
    return CrossEntropyLoss()(logits, targets)

# %% [markdown]
# ## Reflect
#
# 1. **Stability.** Your table showed the naive cross-entropy turning into `inf` somewhere
#    between a gap of 50 and 100. Using the float32 limit of `exp` you measured in module 02,
#    explain exactly why: is it an overflow or an underflow, and in which array? What
#    happens to the *gradient* at that point, and what would the loss curve of a real
#    training run look like one step later?
# 2. **Clipping's price.** With `eps = 1e-7`, BCE can never exceed 16.1 per example. A
#    model that is certain and wrong on 1% of examples, perfect on the rest: what is its
#    loss? What gradient does clipping give for `p` below `eps`, and why might that slow
#    the correction of confident mistakes? (Working on logits avoids this.)
# 3. **Memory.** You measured the loss temporaries at a multiple of the logits' size.
#    For B=8, T=1024, V=50,257, where does that put the loss in a GPU's memory budget?
#    What would a fused "log-softmax + pick" kernel need to store instead?
# 4. **Starting point.** An untrained 10-class classifier should start near
#    `log(10) = 2.303`. If your first loss is 35, what does that tell you about the
#    initialization of the last Linear layer?
# 5. **MSE vs cross-entropy.** Why is MSE a poor loss for classification with a Sigmoid
#    output? (Think about the slope of the Sigmoid when the prediction is confidently wrong.)
