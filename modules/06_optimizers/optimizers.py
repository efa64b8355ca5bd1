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
# # Module 06: Optimizers
#
# Autograd (module 05) tells every parameter which way is "uphill" for the loss. An
# optimizer decides how far to step the other way, and it is where most of the practical
# wisdom of deep learning lives: momentum smooths noisy gradients, Adam gives every
# parameter its own step size, AdamW fixes how Adam interacts with weight decay, and a
# learning-rate schedule changes the step size over training. In this module you write
# `SGD`, `Adam` and `AdamW` exactly as PyTorch defines them, plus `StepLR`,
# `CosineAnnealingLR` and `OneCycleLR`, and you measure the price of that wisdom: Adam
# keeps two extra numbers per parameter, so a model's training memory is not its size.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far                 you build now                  this unlocks
#   ------------                 -------------                  ------------
#   01 Tensor (.data, .grad)     06 Optimizers                  07 Training loops
#   02/04 activations, losses      Optimizer.zero_grad/step -->  milestone 2 (XOR)
#   03 Module.parameters()  -->    SGD, momentum, Nesterov       milestone 3 (MLP on MNIST)
#   05 Autograd (backward)         Adam, AdamW                   every later model
#                                  StepLR, Cosine, OneCycle
#                                  state_dict (checkpoints)
# ```

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp core.optimizers
#| export
#| namespace tinytorch.optim Optimizer SGD Adam AdamW
#| namespace tinytorch.optim.lr_scheduler LRScheduler StepLR CosineAnnealingLR OneCycleLR
import math

import numpy as np

from tinytorch.core.tensor import Tensor
from tinytorch.core.autograd import no_grad


# %% [markdown]
# ## 1. One step downhill
#
# After `loss.backward()` every parameter `p` holds `p.grad`: the slope of the loss in
# each coordinate. Gradient descent moves against it:
#
# ```
#   p  <-  p - lr * grad
#
#   loss(w) = (w - 3)^2        grad = 2 (w - 3)
#
#   step   w        grad      w - 0.1 * grad
#   ----   -----    ------    --------------
#    0     0.000    -6.000         0.600
#    1     0.600    -4.800         1.080
#    2     1.080    -3.840         1.464      each step closes 20% of the gap to 3
# ```
#
# Two details matter for a real framework:
#
# 1. **In place, outside the graph.** The update must change the *same* NumPy array the
#    model's layers hold (`p.data -= ...`), not create a new Tensor: a new Tensor would be
#    invisible to the model, and if it were built from Tensor arithmetic with autograd on,
#    it would link this step's graph to the next one and memory would grow every step.
#    We therefore update raw arrays (`p.data`, `p.grad.data`) inside `no_grad()`.
# 2. **Gradients accumulate.** `backward()` adds into `.grad` (module 05), so each step
#    begins with `zero_grad()`; otherwise step 2 would use `grad1 + grad2`.
#
# The base class below holds the parameter list, the learning rate and a per-parameter
# `state` dictionary (momentum buffers, Adam moments). You write `zero_grad`.

# %% nbgrader={"grade": false, "grade_id": "optimizer-base", "locked": false, "schema_version": 3, "solution": true}
#| export
class Optimizer:
    """Base class: holds parameters, hyper-parameters and per-parameter state.

    Subclasses implement ``step()``. ``self.state[i]`` is a dict of NumPy arrays for
    parameter ``i`` (created lazily on the first step), ``self.step_count`` counts steps.
    """

    #: hyper-parameters a subclass saves in its state_dict (besides ``lr``)
    hyper_names: tuple = ()

    def __init__(self, params, lr: float):
        params = list(params)
        if not params:
            raise ValueError("Optimizer got an empty parameter list: expected at least one Tensor")
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"parameter {i}: expected a Tensor, got {type(p).__name__}")
            if not p.requires_grad:
                raise ValueError(f"parameter {i} of shape {p.shape} does not require grad: "
                                 "expected requires_grad=True")
        if lr < 0:
            raise ValueError(f"invalid learning rate: expected lr >= 0, got {lr}")
        self.params = params
        self.lr = float(lr)
        self.state = {}
        self.step_count = 0

    def zero_grad(self):
        """Forget the gradients of every parameter (set ``p.grad`` to None).

        HINT: one loop over ``self.params``. None (rather than zeros) costs no memory
        and lets ``step`` skip parameters that received no gradient.
        """
        ### BEGIN SOLUTION
        for p in self.params:
            p.grad = None
        ### END SOLUTION

    def step(self):
        raise NotImplementedError("a subclass of Optimizer implements step()")

    # --- helpers shared by every optimizer (provided) ---------------------------------
    @staticmethod
    def _grad(p):
        """The gradient of ``p`` as a NumPy array of p's dtype, or None."""
        g = p.grad
        if g is None:
            return None
        g = g.data if isinstance(g, Tensor) else np.asarray(g)
        if g.shape != p.data.shape:
            raise ValueError(f"gradient shape {g.shape} does not match parameter shape {p.data.shape}")
        return g if g.dtype == p.data.dtype else g.astype(p.data.dtype)

    def _buffer(self, i, name):
        """The state array ``name`` of parameter ``i``, created as zeros on first use."""
        st = self.state.setdefault(i, {})
        if name not in st:
            st[name] = np.zeros_like(self.params[i].data)
        return st[name]

    def state_bytes(self) -> int:
        """Bytes held by the optimizer's state arrays (momentum buffers, moments)."""
        return int(sum(a.nbytes for st in self.state.values() for a in st.values()))

    def state_dict(self) -> dict:
        """Everything needed to resume: a flat dict of name -> NumPy array (fits in .npz)."""
        d = {"lr": np.array(self.lr, dtype=np.float64),
             "step_count": np.array(self.step_count, dtype=np.int64)}
        for name in self.hyper_names:
            d[f"hyper.{name}"] = np.array(getattr(self, name), dtype=np.float64)
        for i, st in self.state.items():
            for name, arr in st.items():
                d[f"state.{i}.{name}"] = arr.copy()
        return d

    def load_state_dict(self, d: dict):
        """Restore what ``state_dict`` saved; shapes are checked against the parameters."""
        self.lr = float(np.asarray(d["lr"]))
        self.step_count = int(np.asarray(d["step_count"]))
        for name in self.hyper_names:
            key = f"hyper.{name}"
            if key in d:
                value = np.asarray(d[key]).item()
                setattr(self, name, type(getattr(self, name))(value))
        self.state = {}
        for key, arr in d.items():
            if not key.startswith("state."):
                continue
            _, idx, name = key.split(".", 2)
            i = int(idx)
            if i >= len(self.params):
                raise ValueError(f"state for parameter {i}, but the optimizer has {len(self.params)} parameters")
            arr = np.asarray(arr)
            if arr.shape != self.params[i].data.shape:
                raise ValueError(f"state {key}: expected shape {self.params[i].data.shape}, got {arr.shape}")
            self.state.setdefault(i, {})[name] = arr.astype(self.params[i].data.dtype, copy=True)


# %% nbgrader={"grade": true, "grade_id": "test-optimizer-base", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_optimizer_base():
    """zero_grad clears every gradient; bad parameter lists are rejected with clear errors."""
    a = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    b = Tensor(np.ones((2, 2), dtype=np.float32), requires_grad=True)
    a.grad = Tensor(np.full(3, 5.0, dtype=np.float32))
    b.grad = Tensor(np.full((2, 2), 5.0, dtype=np.float32))
    opt = Optimizer([a, b], lr=0.1)
    opt.zero_grad()
    assert a.grad is None and b.grad is None, "zero_grad must set every p.grad to None"
    opt.zero_grad()  # nothing to clear: still fine
    assert a.grad is None
    for bad in ([], [Tensor([1.0])]):
        try:
            Optimizer(bad, lr=0.1)
        except (ValueError, TypeError):
            pass
        else:
            raise AssertionError(f"Optimizer({bad!r}) should raise")
    ### BEGIN HIDDEN TESTS
    try:
        Optimizer([a], lr=-1.0)
    except ValueError:
        pass
    else:
        raise AssertionError("negative lr should raise")
    ### END HIDDEN TESTS


test_unit_optimizer_base()

# %% [markdown]
# ## 2. SGD, momentum and Nesterov
#
# Plain SGD follows the current gradient only. On a long narrow valley the gradient
# points mostly across the valley, so SGD zig-zags. **Momentum** keeps a running
# velocity `buf` that adds up consistent directions and cancels alternating ones:
#
# ```
#   g    = grad + weight_decay * p          (L2 penalty folded into the gradient)
#   buf  = g                                 on the first step
#   buf  = momentum * buf + g                afterwards
#   p    = p - lr * buf                      (classic momentum)
#   p    = p - lr * (g + momentum * buf)     (Nesterov: look one step ahead)
# ```
#
# Worked numbers, lr = 0.1, momentum = 0.9, the same gradient g = 1 every step:
#
# ```
#   step   buf                  step taken (lr * buf)
#    1     1.00                 0.100
#    2     0.9*1.00 + 1 = 1.90  0.190
#    3     0.9*1.90 + 1 = 2.71  0.271      -> tends to g / (1 - 0.9) = 10x plain SGD
# ```
#
# Memory: the buffer has the shape of the parameter, so momentum costs **1x** the
# parameter bytes; plain SGD costs nothing. These are PyTorch's formulas (with
# `dampening=0`), so your numbers match `torch.optim.SGD` to float32 precision.
#
# Speed matters here: the step runs once per batch over every parameter. Use in-place
# NumPy operations (`buf *= m`, `buf += g`, `p.data -= ...`) so no new arrays are
# allocated for the parameters themselves.

# %% nbgrader={"grade": false, "grade_id": "sgd", "locked": false, "schema_version": 3, "solution": true}
#| export
class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and L2 weight decay.

    EXAMPLE: opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
             loss.backward(); opt.step(); opt.zero_grad()
    """

    hyper_names = ("momentum", "weight_decay", "nesterov")

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False):
        super().__init__(params, lr)
        if momentum < 0 or weight_decay < 0:
            raise ValueError(f"expected momentum >= 0 and weight_decay >= 0, got {momentum}, {weight_decay}")
        if nesterov and momentum == 0:
            raise ValueError("Nesterov momentum needs momentum > 0, got momentum=0")
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.nesterov = bool(nesterov)

    def step(self):
        """Update every parameter that has a gradient, in place.

        HINTS:
        - loop ``for i, p in enumerate(self.params)``; ``g = self._grad(p)``; skip None
        - weight decay: ``g = g + self.weight_decay * p.data`` (a new array: never
          modify the gradient in place, it belongs to the caller)
        - momentum: ``buf = self.state.get(i, {}).get("momentum_buffer")``; on the first
          step store ``g.copy()``, later ``buf *= m; buf += g`` (use ``self._buffer``)
        - Nesterov: the direction is ``g + m * buf``; classic momentum uses ``buf``
        - finally ``p.data -= self.lr * direction`` and ``self.step_count += 1``
        """
        with no_grad():
            ### BEGIN SOLUTION
            lr, m, wd = self.lr, self.momentum, self.weight_decay
            for i, p in enumerate(self.params):
                g = self._grad(p)
                if g is None:
                    continue
                if wd != 0.0:
                    g = g + wd * p.data
                if m != 0.0:
                    st = self.state.setdefault(i, {})
                    if "momentum_buffer" not in st:
                        st["momentum_buffer"] = np.array(g, dtype=p.data.dtype, copy=True)
                    else:
                        buf = st["momentum_buffer"]
                        buf *= m
                        buf += g
                    buf = st["momentum_buffer"]
                    g = g + m * buf if self.nesterov else buf
                p.data -= lr * g
            self.step_count += 1
            ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-sgd", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def _param(values):
    return Tensor(np.array(values, dtype=np.float32), requires_grad=True)


def _set_grad(p, values):
    p.grad = Tensor(np.array(values, dtype=np.float32))


def test_unit_sgd():
    """SGD, momentum, Nesterov and weight decay match hand-computed numbers, in place."""
    # plain SGD on loss (w - 3)^2, the table of section 1
    w = _param([0.0])
    data_before = w.data
    opt = SGD([w], lr=0.1)
    for expected in (0.6, 1.08, 1.464):
        _set_grad(w, 2 * (w.data - 3.0))
        opt.step()
        np.testing.assert_allclose(w.data, [expected], rtol=1e-6)
    assert w.data is data_before, "SGD must update p.data in place, not replace the array"
    assert w.data.dtype == np.float32, f"parameter dtype changed to {w.data.dtype}"

    # momentum with a constant gradient of 1: steps 0.1, 0.19, 0.271
    w = _param([0.0])
    opt = SGD([w], lr=0.1, momentum=0.9)
    for expected in (-0.1, -0.29, -0.561):
        _set_grad(w, [1.0])
        opt.step()
        np.testing.assert_allclose(w.data, [expected], rtol=1e-5)
    assert opt.state_bytes() == w.data.nbytes, "momentum keeps one buffer per parameter"

    # Nesterov: first step direction g + m*g = 1.9
    w = _param([0.0])
    opt = SGD([w], lr=0.1, momentum=0.9, nesterov=True)
    _set_grad(w, [1.0])
    opt.step()
    np.testing.assert_allclose(w.data, [-0.19], rtol=1e-5)
    # the gradient belongs to the caller: two momentum steps on the same p.grad leave it intact
    w = _param([0.0])
    opt = SGD([w], lr=0.1, momentum=0.9)
    _set_grad(w, [1.0])
    opt.step()
    opt.step()
    np.testing.assert_array_equal(w.grad.data, [1.0], err_msg="SGD must not modify p.grad (copy it into the buffer)")
    np.testing.assert_allclose(w.data, [-0.29], rtol=1e-5)
    # weight decay folds wd * p into the gradient and never mutates p.grad
    w = _param([2.0])
    opt = SGD([w], lr=0.5, weight_decay=0.1)
    _set_grad(w, [0.0])
    g_before = w.grad.data.copy()
    opt.step()
    np.testing.assert_allclose(w.data, [2.0 - 0.5 * 0.2], rtol=1e-6)
    np.testing.assert_array_equal(w.grad.data, g_before, err_msg="weight decay must not modify p.grad")
    # parameters without a gradient are skipped
    a, b = _param([1.0]), _param([1.0])
    _set_grad(a, [1.0])
    SGD([a, b], lr=1.0).step()
    np.testing.assert_allclose(b.data, [1.0])
    ### BEGIN HIDDEN TESTS
    w = _param([1.0])
    opt = SGD([w], lr=0.1, momentum=0.9, weight_decay=0.1)
    _set_grad(w, [0.0])
    opt.step()
    np.testing.assert_allclose(w.data, [0.99], rtol=1e-6)
    ### END HIDDEN TESTS


test_unit_sgd()

# %% [markdown]
# ## 3. Adam: a step size per parameter
#
# Gradients of different parameters live on very different scales (an embedding row
# seen once per epoch versus a bias seen every batch). Adam (Kingma and Ba, 2014) keeps
# two running averages per parameter and divides one by the square root of the other:
#
# ```
#   m  = b1 * m + (1 - b1) * g             first moment  (mean of g)       1x params
#   v  = b2 * v + (1 - b2) * g * g         second moment (mean of g^2)     1x params
#   m_hat = m / (1 - b1^t)                 bias correction: m, v start at 0
#   v_hat = v / (1 - b2^t)
#   p  = p - lr * m_hat / (sqrt(v_hat) + eps)
# ```
#
# Worked numbers for the first step (t = 1), g = 4, lr = 0.001:
#
# ```
#   m = 0.1 * 4 = 0.4         m_hat = 0.4 / 0.1   = 4
#   v = 0.001 * 16 = 0.016    v_hat = 0.016/0.001 = 16
#   step = 0.001 * 4 / (4 + 1e-8) = 0.001      -> the first step is lr * sign(g),
#                                                 whatever the gradient's scale
# ```
#
# Without the bias correction the first step would be `0.001 * 0.4 / sqrt(0.016)`
# = 0.0032, more than 3x too large. Adam's state is `m` and `v`: **2x** the parameter
# bytes. For a 7-billion-parameter model in float32 that is 56 GB of optimizer state on
# top of 28 GB of weights.
#
# Implementation tip (how PyTorch does it): fold both corrections into scalars,
# `step_size = lr / (1 - b1^t)` and `denom = sqrt(v) / sqrt(1 - b2^t) + eps`, so the only
# full-size temporaries are `g * g`, `sqrt(v)` and the final quotient.

# %% nbgrader={"grade": false, "grade_id": "adam", "locked": false, "schema_version": 3, "solution": true}
#| export
class Adam(Optimizer):
    """Adam with bias correction; ``weight_decay`` is the classic L2 term added to g.

    EXAMPLE: opt = Adam(model.parameters(), lr=1e-3)
    """

    hyper_names = ("beta1", "beta2", "eps", "weight_decay")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, lr)
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"expected betas in [0, 1), got {betas}")
        self.beta1, self.beta2 = float(b1), float(b2)
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)

    @property
    def betas(self):
        return (self.beta1, self.beta2)

    def _decay(self, p, g):
        """Adam: weight decay as an L2 term in the gradient (AdamW overrides this)."""
        return g + self.weight_decay * p.data if self.weight_decay != 0.0 else g

    def step(self):
        """One Adam step for every parameter with a gradient, in place.

        HINTS:
        - ``self.step_count += 1`` first: the bias correction uses t = step_count
        - ``g = self._decay(p, g)`` handles weight decay (so AdamW can reuse this step)
        - ``m = self._buffer(i, "m")``, ``v = self._buffer(i, "v")``, update them in place
        - ``bc1 = 1 - b1 ** t``, ``bc2 = 1 - b2 ** t`` are Python floats
        - ``p.data -= (lr / bc1) * m / (np.sqrt(v) / math.sqrt(bc2) + eps)``
        """
        with no_grad():
            ### BEGIN SOLUTION
            self.step_count += 1
            t = self.step_count
            b1, b2, eps = self.beta1, self.beta2, self.eps
            step_size = self.lr / (1.0 - b1 ** t)
            sqrt_bc2 = math.sqrt(1.0 - b2 ** t)
            for i, p in enumerate(self.params):
                g = self._grad(p)
                if g is None:
                    continue
                g = self._decay(p, g)
                m = self._buffer(i, "m")
                v = self._buffer(i, "v")
                m *= b1
                m += (1.0 - b1) * g
                v *= b2
                v += (1.0 - b2) * (g * g)
                denom = np.sqrt(v)
                denom /= sqrt_bc2
                denom += eps
                p.data -= step_size * (m / denom)
            ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-adam", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_adam():
    """Adam's first step is lr * sign(g); later steps follow the bias-corrected formulas."""
    w = _param([1.0, -2.0, 0.5])
    opt = Adam([w], lr=0.001)
    _set_grad(w, [4.0, -0.01, 100.0])
    opt.step()
    np.testing.assert_allclose(w.data, [0.999, -1.999, 0.499], rtol=1e-5)
    assert w.data.dtype == np.float32, f"parameter dtype changed to {w.data.dtype}"
    assert opt.state_bytes() == 2 * w.data.nbytes, "Adam keeps m and v: 2x parameter bytes"

    # second step by hand (float64 reference)
    g1, g2 = np.array([4.0, -0.01, 100.0]), np.array([1.0, 1.0, -50.0])
    m = 0.1 * g1
    v = 0.001 * g1 ** 2
    m = 0.9 * m + 0.1 * g2
    v = 0.999 * v + 0.001 * g2 ** 2
    expected = np.array([0.999, -1.999, 0.499]) - 0.001 * (m / 0.19) / (np.sqrt(v / (1 - 0.999 ** 2)) + 1e-8)
    _set_grad(w, g2)
    opt.step()
    np.testing.assert_allclose(w.data, expected, rtol=1e-5)
    # every parameter has its own moments
    a, b = _param([1.0, 1.0]), _param([[1.0], [1.0]])
    opt = Adam([a, b], lr=0.1)
    for ga, gb in (([1.0, -1.0], [[-2.0], [2.0]]), ([1.0, -1.0], [[-2.0], [2.0]])):
        _set_grad(a, ga)
        _set_grad(b, gb)
        opt.step()
    np.testing.assert_allclose(a.data, [0.8, 1.2], rtol=1e-5)
    np.testing.assert_allclose(b.data, [[1.2], [0.8]], rtol=1e-5)
    ### BEGIN HIDDEN TESTS
    w = _param([1.0])
    opt = Adam([w], lr=0.1, weight_decay=0.5)
    _set_grad(w, [0.0])          # the L2 term alone gives g = 0.5 > 0
    opt.step()
    np.testing.assert_allclose(w.data, [0.9], rtol=1e-5)
    ### END HIDDEN TESTS


test_unit_adam()

# %% [markdown]
# ## 4. AdamW: weight decay, decoupled
#
# With Adam, an L2 term `wd * p` added to the gradient is then *divided* by
# `sqrt(v_hat)`: parameters with large gradients barely decay, those with tiny gradients
# decay a lot. Loshchilov and Hutter (2017) showed this is not what weight decay should
# do and proposed to shrink the weights directly, outside the adaptive step:
#
# ```
#   p = p * (1 - lr * wd)        decay, the same for every parameter
#   p = p - lr * m_hat / (sqrt(v_hat) + eps)      Adam step with the raw gradient
# ```
#
# Example, lr = 0.1, wd = 0.5, p = 1, g = 0 (a parameter the loss ignores):
#
# ```
#   Adam + L2 : g' = 0.5   -> first step lr * sign(g') = 0.1      p = 0.90
#   AdamW     : p * (1 - 0.05) = 0.95, Adam step on g = 0 is 0    p = 0.95
# ```
#
# AdamW is the default optimizer of transformers (module 13). Its default `wd` is 0.01.

# %% nbgrader={"grade": false, "grade_id": "adamw", "locked": false, "schema_version": 3, "solution": true}
#| export
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter).

    EXAMPLE: opt = AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def _decay(self, p, g):
        """Shrink ``p.data`` in place by ``(1 - lr * wd)`` and return g unchanged.

        HINT: ``p.data *= ...`` (in place); Adam.step calls this before the moment update.
        """
        ### BEGIN SOLUTION
        if self.weight_decay != 0.0:
            p.data *= 1.0 - self.lr * self.weight_decay
        return g
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-adamw", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_adamw():
    """AdamW decays the weights directly: 1 -> 0.95 with lr=0.1, wd=0.5, g=0 (Adam+L2 gives 0.9)."""
    w = _param([1.0])
    opt = AdamW([w], lr=0.1, weight_decay=0.5)
    _set_grad(w, [0.0])
    opt.step()
    np.testing.assert_allclose(w.data, [0.95], rtol=1e-6)
    assert AdamW([_param([1.0])]).weight_decay == 0.01, "AdamW's default weight decay is 0.01"
    ### BEGIN HIDDEN TESTS
    w = _param([2.0])
    opt = AdamW([w], lr=0.01, weight_decay=0.1)
    _set_grad(w, [3.0])
    opt.step()
    np.testing.assert_allclose(w.data, [2.0 * (1 - 0.001) - 0.01], rtol=1e-5)
    ### END HIDDEN TESTS


test_unit_adamw()

# %% [markdown]
# ## 5. Learning-rate schedules
#
# A large learning rate makes fast progress early; a small one settles into a minimum
# late. A scheduler owns the optimizer's `lr` and rewrites it each time you call
# `scheduler.step()` (once per epoch or once per batch, as you decide):
#
# ```
#   StepLR(step_size=2, gamma=0.1), base lr 1.0
#     epoch:  0    1    2    3    4     5
#     lr   :  1.0  1.0  0.1  0.1  0.01  0.01          lr = base * gamma^(epoch // step_size)
#
#   CosineAnnealingLR(T_max=4, eta_min=0), base lr 1.0
#     epoch:  0    1      2    3      4
#     lr   :  1.0  0.854  0.5  0.146  0.0              lr = eta_min + (base - eta_min)
#                                                            * (1 + cos(pi * t / T_max)) / 2
#
#   OneCycleLR(max_lr=1.0, total_steps=10, pct_start=0.3)   (Smith, 2018)
#     lr  ^        /\
#         |       /  \__
#         |      /      \___
#         |_____/           \______  ends near max_lr / 25 / 1e4
#              warm-up (30%)  cosine annealing (70%)
# ```
#
# OneCycle's warm-up protects Adam's early, badly estimated second moments; it is what
# the CIFAR-10 milestone uses. The base class is provided; you write the three formulas.

# %% nbgrader={"grade": false, "grade_id": "scheduler-base", "locked": true, "schema_version": 3, "solution": false}
#| export
class LRScheduler:
    """Base class: ``step()`` advances ``last_epoch`` and writes ``get_lr()`` into the optimizer."""

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"expected an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0
        optimizer.lr = self.get_lr()

    def get_lr(self) -> float:
        raise NotImplementedError

    def step(self):
        self.last_epoch += 1
        self.optimizer.lr = float(self.get_lr())

    def get_last_lr(self) -> float:
        return self.optimizer.lr

    def state_dict(self) -> dict:
        return {"last_epoch": np.array(self.last_epoch, dtype=np.int64),
                "base_lr": np.array(self.base_lr, dtype=np.float64)}

    def load_state_dict(self, d: dict):
        self.last_epoch = int(np.asarray(d["last_epoch"]))
        self.base_lr = float(np.asarray(d["base_lr"]))
        self.optimizer.lr = float(self.get_lr())


# %% nbgrader={"grade": false, "grade_id": "schedulers", "locked": false, "schema_version": 3, "solution": true}
#| export
class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        if step_size < 1:
            raise ValueError(f"expected step_size >= 1, got {step_size}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer)

    def get_lr(self) -> float:
        """HINT: ``self.base_lr * self.gamma ** (self.last_epoch // self.step_size)``."""
        ### BEGIN SOLUTION
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)
        ### END SOLUTION


class CosineAnnealingLR(LRScheduler):
    """Cosine from the base lr down to ``eta_min`` over ``T_max`` steps."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0):
        if T_max < 1:
            raise ValueError(f"expected T_max >= 1, got {T_max}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer)

    def get_lr(self) -> float:
        """HINT: ``eta_min + (base - eta_min) * (1 + cos(pi * t / T_max)) / 2`` with t = last_epoch."""
        ### BEGIN SOLUTION
        t = self.last_epoch
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2
        ### END SOLUTION


class OneCycleLR(LRScheduler):
    """Warm up from ``max_lr / div_factor`` to ``max_lr``, then cosine-anneal to
    ``max_lr / div_factor / final_div_factor`` at step ``total_steps - 1`` (PyTorch's
    formula with ``anneal_strategy="cos"``; the momentum cycling is left out).
    Call ``step()`` once per batch."""

    def __init__(self, optimizer, max_lr: float, total_steps: int, pct_start: float = 0.3,
                 div_factor: float = 25.0, final_div_factor: float = 1e4):
        if total_steps < 2:
            raise ValueError(f"expected total_steps >= 2, got {total_steps}")
        self.max_lr = float(max_lr)
        self.total_steps = int(total_steps)
        self.initial_lr = self.max_lr / div_factor
        self.min_lr = self.initial_lr / final_div_factor
        self.warmup_end = float(pct_start * total_steps) - 1.0
        super().__init__(optimizer)

    @staticmethod
    def _cos(start, end, pct):
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    def get_lr(self) -> float:
        """HINTS: t = min(last_epoch, total_steps - 1).
        - if t <= warmup_end: cosine from initial_lr to max_lr, pct = t / warmup_end
        - else: cosine from max_lr to min_lr, pct = (t - warmup_end) / (total_steps - 1 - warmup_end)
        Use ``self._cos(start, end, pct)``.
        """
        ### BEGIN SOLUTION
        t = min(self.last_epoch, self.total_steps - 1)
        if t <= self.warmup_end and self.warmup_end > 0:
            return self._cos(self.initial_lr, self.max_lr, t / self.warmup_end)
        span = (self.total_steps - 1) - max(self.warmup_end, 0.0)
        pct = (t - max(self.warmup_end, 0.0)) / span
        return self._cos(self.max_lr, self.min_lr, pct)
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-schedulers", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def _lrs(scheduler, n):
    out = [scheduler.get_last_lr()]
    for _ in range(n):
        scheduler.step()
        out.append(scheduler.get_last_lr())
    return out


def test_unit_schedulers():
    """StepLR, CosineAnnealingLR and OneCycleLR produce the tables of section 5."""
    opt = SGD([_param([0.0])], lr=1.0)
    np.testing.assert_allclose(_lrs(StepLR(opt, step_size=2, gamma=0.1), 5),
                               [1.0, 1.0, 0.1, 0.1, 0.01, 0.01], rtol=1e-9)
    opt = SGD([_param([0.0])], lr=1.0)
    np.testing.assert_allclose(_lrs(CosineAnnealingLR(opt, T_max=4), 4),
                               [1.0, 0.8535534, 0.5, 0.1464466, 0.0], atol=1e-6)
    opt = SGD([_param([0.0])], lr=0.123)
    lrs = _lrs(OneCycleLR(opt, max_lr=1.0, total_steps=10), 9)
    np.testing.assert_allclose(lrs[0], 1.0 / 25, rtol=1e-9)
    assert max(lrs) == lrs[2] == 1.0, f"OneCycle peaks at max_lr after 30% of the steps, got {lrs}"
    np.testing.assert_allclose(lrs[-1], 1.0 / 25 / 1e4, rtol=1e-9)
    assert all(a >= b for a, b in zip(lrs[2:], lrs[3:])), "OneCycle decreases after the peak"
    opt = SGD([_param([0.0])], lr=1.0)
    np.testing.assert_allclose(_lrs(CosineAnnealingLR(opt, T_max=2, eta_min=0.5), 2), [1.0, 0.75, 0.5])
    ### BEGIN HIDDEN TESTS
    opt = SGD([_param([0.0])], lr=2.0)
    np.testing.assert_allclose(_lrs(StepLR(opt, step_size=3, gamma=0.5), 6), [2, 2, 2, 1, 1, 1, 0.5])
    ### END HIDDEN TESTS


test_unit_schedulers()

# %% [markdown]
# ## 6. Saving optimizer state
#
# Resuming training from a checkpoint needs more than the weights: Adam's `m` and `v`
# and the step count `t` (for bias correction) must come back too, or the first steps
# after a restart are the badly-scaled ones of a fresh optimizer. `state_dict()` (in the
# base class above) returns a flat `name -> NumPy array` dict, which module 07 writes to
# an `.npz` file. The test checks that a restored optimizer continues *exactly* as the
# original would have.

# %% nbgrader={"grade": true, "grade_id": "test-state-dict", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_state_dict():
    """A restored Adam continues bit-for-bit like the original."""
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((3, 2)).astype(np.float32) for _ in range(4)]
    w1 = _param(np.ones((3, 2)))
    opt1 = Adam([w1], lr=0.01)
    for g in grads[:2]:
        w1.grad = Tensor(g)
        opt1.step()
    saved_w, saved_state = w1.data.copy(), opt1.state_dict()
    assert all(isinstance(v, np.ndarray) for v in saved_state.values()), "state_dict values must be arrays"
    for g in grads[2:]:
        w1.grad = Tensor(g)
        opt1.step()

    w2 = _param(saved_w)
    opt2 = Adam([w2], lr=0.5)
    opt2.load_state_dict(saved_state)
    assert opt2.lr == 0.01 and opt2.step_count == 2
    for g in grads[2:]:
        w2.grad = Tensor(g)
        opt2.step()
    np.testing.assert_array_equal(w2.data, w1.data)
    ### BEGIN HIDDEN TESTS
    bad = dict(saved_state)
    bad["state.0.m"] = np.zeros((5,), dtype=np.float32)
    try:
        Adam([_param(saved_w)]).load_state_dict(bad)
    except ValueError:
        pass
    else:
        raise AssertionError("a state of the wrong shape must be rejected")
    ### END HIDDEN TESTS


test_unit_state_dict()

# %% [markdown]
# ## 7. Systems measurement: optimizer-state memory on a real model
#
# Build the MLP of milestone 3 (784-256-128-10), take one real training step with each
# optimizer, and ask each optimizer how many bytes of state it now holds.

# %%
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.activations import ReLU


def build_mlp(seed=0):
    return Sequential(Linear(784, 256, seed=seed), ReLU(), Linear(256, 128, seed=seed + 1), ReLU(),
                      Linear(128, 10, seed=seed + 2))


def one_step(opt_factory, seed=0):
    model = build_mlp(seed)
    params = model.parameters()
    opt = opt_factory(params)
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((64, 784)).astype(np.float32))   # (B, 784)
    target = Tensor(rng.standard_normal((64, 10)).astype(np.float32))  # (B, 10)
    loss = ((model(x) - target) ** 2).mean()                         # scalar
    loss.backward()
    opt.step()
    param_bytes = sum(p.data.nbytes for p in params)
    return param_bytes, opt.state_bytes()


print(f"{'optimizer':<22}{'param bytes':>14}{'state bytes':>14}{'state/params':>14}")
for name, factory in [("SGD", lambda ps: SGD(ps, lr=0.01)),
                      ("SGD momentum=0.9", lambda ps: SGD(ps, lr=0.01, momentum=0.9)),
                      ("Adam", lambda ps: Adam(ps, lr=1e-3)),
                      ("AdamW", lambda ps: AdamW(ps, lr=1e-3))]:
    pb, sb = one_step(factory)
    print(f"{name:<22}{pb:>14,}{sb:>14,}{sb / pb:>13.2f}x")

# %% [markdown]
# And the test that everything works together: each optimizer trains a small linear
# regression, and no step keeps the previous step's autograd graph alive (a weak
# reference to an intermediate tensor must die once we drop our own references).

# %% nbgrader={"grade": true, "grade_id": "test-module", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_module():
    """Every optimizer lowers a real loss; steps leave no graph behind."""
    import gc
    import weakref

    rng = np.random.default_rng(1)
    X = rng.standard_normal((32, 3)).astype(np.float32)          # (N, 3)
    y = X @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)   # (N, 1)
    for make in (lambda ps: SGD(ps, lr=0.1), lambda ps: SGD(ps, lr=0.05, momentum=0.9),
                 lambda ps: Adam(ps, lr=0.05), lambda ps: AdamW(ps, lr=0.05)):
        W = Tensor(np.zeros((3, 1), dtype=np.float32), requires_grad=True)
        opt = make([W])
        losses, refs = [], []
        for _ in range(60):
            pred = Tensor(X) @ W                          # (N, 1)
            loss = ((pred - Tensor(y)) ** 2).mean()
            refs.append(weakref.ref(pred))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.data))
            del pred, loss
        gc.collect()
        assert losses[-1] < 0.1 * losses[0], f"{type(opt).__name__}: loss {losses[0]:.3f} -> {losses[-1]:.3f}"
        alive = sum(r() is not None for r in refs)
        assert alive == 0, f"{alive} intermediate tensors still alive: a step keeps the graph"
        assert W._ctx is None and W.requires_grad, "a parameter must stay a leaf that requires grad"
        assert W.data.dtype == np.float32


test_module()

# %% [markdown]
# ## 8. What the state buys: a narrow valley
#
# Memory is the cost; here is the benefit. The loss `f(w) = 0.5 * (w0^2 + 100 * w1^2)` is a
# valley 100x more curved across than along (condition number 100). Plain SGD must keep `lr`
# below 2/100 to stay stable across the valley, and then crawls along it. Momentum
# accumulates speed along the valley; Adam rescales each coordinate by its own gradient
# size. Each optimizer gets its best learning rate from a small grid; we count steps until
# the loss drops below 1e-6 (from 50.5 at `w = (1, 1)`).

# %%
def steps_to_converge(make, lr, tol=1e-6, max_steps=3000):
    w = Tensor(np.array([1.0, 1.0], dtype=np.float32), requires_grad=True)
    scale = np.array([1.0, 100.0], dtype=np.float32)
    opt = make([w], lr)
    for step in range(1, max_steps + 1):
        w.grad = Tensor(scale * w.data)                 # gradient of 0.5 * sum(scale * w^2)
        opt.step()
        loss = 0.5 * float((scale * w.data.astype(np.float64) ** 2).sum())
        if loss < tol:
            return step
        if not loss < 1e6:                              # diverged: lr too large
            return max_steps
    return max_steps


print(f"{'optimizer':<18}{'best lr':>9}{'steps to 1e-6':>15}")
for name, make in [("SGD", lambda ps, lr: SGD(ps, lr=lr)),
                   ("SGD momentum 0.9", lambda ps, lr: SGD(ps, lr=lr, momentum=0.9)),
                   ("Adam", lambda ps, lr: Adam(ps, lr=lr))]:
    best = min((steps_to_converge(make, lr), lr) for lr in (0.001, 0.003, 0.01, 0.019, 0.03, 0.1))
    label = f"{best[0]}" if best[0] < 3000 else "> 3000"        # 3000: never (or diverged)
    print(f"{name:<18}{best[1]:>9}{label:>15}")

# %% [markdown]
# ## Reflect
#
# 1. The measurement above printed the state of each optimizer for a 235,146-parameter
#    MLP. Training a 7-billion-parameter model with Adam in float32 needs weights (28 GB),
#    gradients (28 GB) and Adam's `m` and `v`. How much in total? Which of the four would
#    you shrink first, and how (lower precision? sharding across devices? an optimizer
#    such as Adafactor that stores row and column averages instead of `v`)?
# 2. Adam's first step moves every parameter by about `lr`, whatever the gradient's size.
#    Why does that make the warm-up of `OneCycleLR` useful for Adam in particular?
# 3. Our `step()` updates `p.data` in place. Imagine instead
#    `self.params[i] = self.params[i] - lr * p.grad` with autograd on. List two things that
#    break (think of what the model's `Linear` layer still points to, and of the graph).
# 4. Momentum with `m = 0.9` takes steps up to 10x larger than plain SGD along a
#    consistent direction. If plain SGD is stable at `lr = 0.1`, what learning rate would
#    you try first with momentum, and why?
# 5. The step costs a handful of passes over every parameter (Adam: about 10 element-wise
#    operations). For the MLP above, compare that with the forward and backward matmuls
#    at batch size 64 (count multiply-adds). Which dominates, and when would it flip?
# 6. In section 8, plain SGD's best learning rate sat just below 2/100 = 0.02. Why is that the
#    stability limit on this valley, and why does it make progress *along* the valley slow
#    (how much does `w0` shrink per step)? Adam converged fastest here; construct a loss on
#    which its per-coordinate rescaling would not help (hint: a rotated valley).
