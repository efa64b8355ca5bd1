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
# `SGD`, `Adam` and `AdamW` exactly as PyTorch defines them, with PyTorch's parameter
# groups (different hyper-parameters for different parameters), plus `StepLR`,
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
#                                  parameter groups              milestone 5 (GPT, AdamW)
#                                  StepLR, Cosine, OneCycle
#                                  state_dict (checkpoints)
# ```

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp core.optimizers
#| export
#| namespace tinytorch.optim Optimizer SGD Adam AdamW
#| namespace tinytorch.optim.lr_scheduler LRScheduler LambdaLR StepLR CosineAnnealingLR OneCycleLR
import math

import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.core.tensor import Tensor

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
# The base class below holds the parameters, their hyper-parameters and a per-parameter
# `state` dictionary (momentum buffers, Adam moments). Like PyTorch's, it keeps the
# parameters in **parameter groups**: a list of dicts, each with its own `"params"` and
# its own copy of every hyper-parameter. `SGD(model.parameters(), lr=0.1)` makes one
# group; section 5 shows why a transformer wants two. A step therefore reads each
# hyper-parameter from the parameter's group, never from a single `self.lr`:
#
# ```
#   opt.param_groups = [ {"params": [W1, W2, E], "lr": 1e-3, "weight_decay": 0.1},
#                        {"params": [b1, b2, g], "lr": 1e-3, "weight_decay": 0.0} ]
#   opt.params       = [W1, W2, E, b1, b2, g]       every parameter once, in order
#   opt.state        = {0: {...}, 1: {...}, ...}    keyed by the position in opt.params
#
#   for group, i, p in self._indexed():             the loop every step() uses
#       lr = group["lr"]                            this parameter's group decides
# ```
#
# Building the groups (defaults filled in, clear errors for a parameter in two groups, an
# unknown key or an empty group) is provided. You write `zero_grad`.

# %% nbgrader={"grade": false, "grade_id": "optimizer-base", "locked": false, "schema_version": 3, "solution": true}
#| export
class Optimizer:
    """Base class: holds parameter groups, their hyper-parameters and per-parameter state.

    ``params`` is an iterable of Tensors (one group) or a list of dicts (PyTorch's
    parameter groups), e.g. ``[{"params": decay, "weight_decay": 0.1}, {"params": rest,
    "weight_decay": 0.0}]``; a key a group leaves out takes the value in ``defaults``.
    Subclasses pass their hyper-parameters as ``defaults`` and implement ``step()``.
    ``self.state[i]`` is a dict of NumPy arrays for parameter ``self.params[i]`` (created
    lazily on the first step); ``self.step_count`` counts steps.
    """

    def __init__(self, params, defaults: dict):
        if isinstance(params, Tensor):
            raise TypeError("Optimizer expects an iterable of Tensors or of parameter-group dicts, "
                            "got a single Tensor: wrap it in a list")
        if isinstance(params, dict):
            params = [params]
        items = list(params)
        if not items:
            raise ValueError("Optimizer got an empty parameter list: expected at least one Tensor")
        if all(isinstance(x, dict) for x in items):
            groups = items
        elif any(isinstance(x, dict) for x in items):
            raise TypeError("Optimizer got a mix of Tensors and parameter-group dicts: "
                            "pass either Tensors or dicts with a 'params' key")
        else:
            groups = [{"params": items}]
        self.defaults = dict(defaults)
        self.param_groups, self.params = [], []
        seen = {}
        for gi, group in enumerate(groups):
            unknown = sorted(set(group) - {"params"} - set(self.defaults))
            if unknown:
                raise ValueError(f"parameter group {gi}: unknown key(s) {unknown}; expected 'params' "
                                 f"and any of {sorted(self.defaults)}")
            if "params" not in group:
                raise ValueError(f"parameter group {gi} has no 'params' key")
            ps = group["params"]
            ps = [ps] if isinstance(ps, Tensor) else list(ps)
            if not ps:
                raise ValueError(f"parameter group {gi} is empty: expected at least one Tensor")
            for p in ps:
                where = f"parameter {len(self.params)} (group {gi})"
                if not isinstance(p, Tensor):
                    raise TypeError(f"{where}: expected a Tensor, got {type(p).__name__}")
                if not p.requires_grad:
                    raise ValueError(f"{where} of shape {p.shape} does not require grad: "
                                     "expected requires_grad=True")
                if id(p) in seen:
                    raise ValueError(f"{where} of shape {p.shape} is already in group {seen[id(p)]}: "
                                     "a parameter may belong to one group only")
                seen[id(p)] = gi
                self.params.append(p)
            full = {"params": ps}
            for name, default in self.defaults.items():
                full[name] = group.get(name, default)
            self._check_group(full, gi)
            self.param_groups.append(full)
        self.state = {}
        self.step_count = 0

    def _check_group(self, group: dict, gi: int):
        """Reject bad hyper-parameters of one group (subclasses add their own checks)."""
        if not group["lr"] >= 0:
            raise ValueError(f"invalid learning rate: expected lr >= 0, got {group['lr']} (group {gi})")

    @property
    def lr(self) -> float:
        """The learning rate of the first group (setting it sets every group's)."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float):
        for group in self.param_groups:
            group["lr"] = float(value)

    def _indexed(self):
        """``(group, i, p)`` for every parameter: ``self.state[i]`` belongs to ``p``."""
        i = 0
        for group in self.param_groups:
            for p in group["params"]:
                yield group, i, p
                i += 1

    def zero_grad(self):
        """Forget the gradients of every parameter (set ``p.grad`` to None).

        HINT: one loop over ``self.params`` (every group's parameters). None (rather than
        zeros) costs no memory and lets ``step`` skip parameters that received no gradient.
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
        """Everything needed to resume: a flat dict of name -> NumPy array (fits in .npz).

        ``group.<g>.<hyper>`` for every group's hyper-parameters, ``group.<g>.size`` for
        its number of parameters, ``state.<i>.<name>`` for the state of parameter i.
        """
        d = {"step_count": np.array(self.step_count, dtype=np.int64)}
        for gi, group in enumerate(self.param_groups):
            d[f"group.{gi}.size"] = np.array(len(group["params"]), dtype=np.int64)
            for name in self.defaults:
                d[f"group.{gi}.{name}"] = np.array(group[name], dtype=np.float64)
        for i, st in self.state.items():
            for name, arr in st.items():
                d[f"state.{i}.{name}"] = arr.copy()
        return d

    def load_state_dict(self, d: dict):
        """Restore what ``state_dict`` saved; groups and shapes are checked against the parameters."""
        n_groups = sum(1 for k in d if k.startswith("group.") and k.endswith(".size"))
        if n_groups != len(self.param_groups):
            raise ValueError(f"the state has {n_groups} parameter group(s), the optimizer "
                             f"{len(self.param_groups)}")
        for gi, group in enumerate(self.param_groups):
            size = int(np.asarray(d[f"group.{gi}.size"]))
            if size != len(group["params"]):
                raise ValueError(f"group {gi}: the state has {size} parameters, the optimizer "
                                 f"{len(group['params'])}")
        hypers = []
        for gi, group in enumerate(self.param_groups):
            values = {}
            for name, default in self.defaults.items():
                key = f"group.{gi}.{name}"
                if key in d:
                    value = np.asarray(d[key])
                    values[name] = (tuple(float(v) for v in value.ravel()) if isinstance(default, tuple)
                                    else type(default)(value.item()))
            hypers.append(values)
        state = {}
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
            state.setdefault(i, {})[name] = arr.astype(self.params[i].data.dtype, copy=True)
        for group, values in zip(self.param_groups, hypers):     # all checked: now change
            group.update(values)
        self.step_count = int(np.asarray(d["step_count"]))
        self.state = state


# %% nbgrader={"grade": true, "grade_id": "test-optimizer-base", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_optimizer_base():
    """zero_grad clears every gradient; bad parameter lists are rejected with clear errors."""
    a = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    b = Tensor(np.ones((2, 2), dtype=np.float32), requires_grad=True)
    a.grad = Tensor(np.full(3, 5.0, dtype=np.float32))
    b.grad = Tensor(np.full((2, 2), 5.0, dtype=np.float32))
    opt = Optimizer([a, b], {"lr": 0.1})
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["lr"] == 0.1 and opt.lr == 0.1
    opt.zero_grad()
    assert a.grad is None and b.grad is None, "zero_grad must set every p.grad to None"
    opt.zero_grad()  # nothing to clear: still fine
    assert a.grad is None
    # two groups: zero_grad clears both; a key a group leaves out takes the default
    c = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    opt = Optimizer([{"params": [a, b]}, {"params": [c], "lr": 0.5}], {"lr": 0.1})
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert [id(p) for p in opt.params] == [id(a), id(b), id(c)], "opt.params: every group's parameters, in order"
    for p in (a, b, c):
        p.grad = Tensor(np.ones(p.shape, dtype=np.float32))
    opt.zero_grad()
    assert a.grad is None and b.grad is None and c.grad is None, "zero_grad must clear every group"
    for bad in ([], [Tensor([1.0])], a, [{"params": []}], [{"params": [a]}, {"params": [a]}],
                [{"params": [a], "lr_typo": 0.1}], [{"params": [a]}, c]):
        try:
            Optimizer(bad, {"lr": 0.1})
        except (ValueError, TypeError):
            pass
        else:
            raise AssertionError(f"Optimizer({bad!r}) should raise")
    ### BEGIN HIDDEN TESTS
    try:
        Optimizer([a], {"lr": -1.0})
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

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False):
        super().__init__(params, dict(lr=float(lr), momentum=float(momentum),
                                      weight_decay=float(weight_decay), nesterov=bool(nesterov)))

    def _check_group(self, group, gi):
        super()._check_group(group, gi)
        if not (group["momentum"] >= 0 and group["weight_decay"] >= 0):
            raise ValueError(f"expected momentum >= 0 and weight_decay >= 0, got {group['momentum']}, "
                             f"{group['weight_decay']} (group {gi})")
        if group["nesterov"] and group["momentum"] == 0:
            raise ValueError(f"Nesterov momentum needs momentum > 0, got momentum=0 (group {gi})")

    def step(self):
        """Update every parameter that has a gradient, in place.

        HINTS:
        - loop ``for group, i, p in self._indexed()``; ``g = self._grad(p)``; skip None;
          read ``lr``, ``momentum``, ``weight_decay``, ``nesterov`` from ``group``
        - weight decay: ``g = g + weight_decay * p.data`` (a new array: never
          modify the gradient in place, it belongs to the caller)
        - momentum: ``buf = self.state.get(i, {}).get("momentum_buffer")``; on the first
          step store ``g.copy()``, later ``buf *= m; buf += g`` (use ``self._buffer``)
        - Nesterov: the direction is ``g + m * buf``; classic momentum uses ``buf``
        - finally ``p.data -= lr * direction``; after the loop ``self.step_count += 1``
        """
        with no_grad():
            ### BEGIN SOLUTION
            for group, i, p in self._indexed():
                g = self._grad(p)
                if g is None:
                    continue
                lr, m, wd = group["lr"], group["momentum"], group["weight_decay"]
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
                    g = g + m * buf if group["nesterov"] else buf
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
# `step_size = lr / (1 - b1^t)` and `denom = sqrt(v) / sqrt(1 - b2^t) + eps`. Then one
# scratch array `s` serves the whole update: `s = g * g` feeds v, `np.sqrt(v, out=s)` turns
# it into the denominator and `np.divide(m, s, out=s)` into the step, written in place:
# one temporary per parameter where `p -= step_size * (m / (np.sqrt(v) / ... + eps))` makes
# six. On milestone 5's GPT (818,176 parameters in 62 tensors, one thread) AdamW's step went
# from 1.75 to 1.68 ms: the arrays are small and already in the cache, and most of what is
# left is Python, about 15 NumPy calls per tensor.

# %% nbgrader={"grade": false, "grade_id": "adam", "locked": false, "schema_version": 3, "solution": true}
#| export
class Adam(Optimizer):
    """Adam with bias correction; ``weight_decay`` is the classic L2 term added to g.

    EXAMPLE: opt = Adam(model.parameters(), lr=1e-3)
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=float(lr), betas=tuple(float(b) for b in betas),
                                      eps=float(eps), weight_decay=float(weight_decay)))

    def _check_group(self, group, gi):
        super()._check_group(group, gi)
        betas = group["betas"]
        if not (len(betas) == 2 and all(0.0 <= b < 1.0 for b in betas)):
            raise ValueError(f"expected betas = (b1, b2) in [0, 1), got {betas} (group {gi})")
        if not (group["eps"] >= 0 and group["weight_decay"] >= 0):
            raise ValueError(f"expected eps >= 0 and weight_decay >= 0, got {group['eps']}, "
                             f"{group['weight_decay']} (group {gi})")

    def _decay(self, p, g, group):
        """Adam: weight decay as an L2 term in the gradient (AdamW overrides this)."""
        wd = group["weight_decay"]
        return g + wd * p.data if wd != 0.0 else g

    def step(self):
        """One Adam step for every parameter with a gradient, in place.

        HINTS:
        - ``self.step_count += 1`` first: the bias correction uses t = step_count
        - loop ``for group, i, p in self._indexed()``; ``lr``, ``betas``, ``eps`` come
          from ``group``
        - ``g = self._decay(p, g, group)`` handles weight decay (so AdamW can reuse this step)
        - ``m = self._buffer(i, "m")``, ``v = self._buffer(i, "v")``, update them in place
        - ``bc1 = 1 - b1 ** t``, ``bc2 = 1 - b2 ** t`` are Python floats
        - ``p.data -= (lr / bc1) * m / (np.sqrt(v) / math.sqrt(bc2) + eps)``, best with one
          scratch array reused through ``out=`` (the tip above)
        """
        with no_grad():
            ### BEGIN SOLUTION
            self.step_count += 1
            t = self.step_count
            for group, i, p in self._indexed():
                g = self._grad(p)
                if g is None:
                    continue
                (b1, b2), eps = group["betas"], group["eps"]
                step_size = group["lr"] / (1.0 - b1 ** t)
                sqrt_bc2 = math.sqrt(1.0 - b2 ** t)
                g = self._decay(p, g, group)
                m = self._buffer(i, "m")
                v = self._buffer(i, "v")
                m *= b1
                m += (1.0 - b1) * g
                v *= b2
                s = g * g                    # one scratch array for the rest of the step
                s *= 1.0 - b2
                v += s
                np.sqrt(v, out=s)            # s = sqrt(v) / sqrt(bc2) + eps, the denominator
                s /= sqrt_bc2
                s += eps
                np.divide(m, s, out=s)       # s = m / denominator
                s *= step_size
                p.data -= s
            ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-adam", "locked": true, "points": 1, "schema_version": 3, "solution": false}
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

    def _decay(self, p, g, group):
        """Shrink ``p.data`` in place by ``(1 - lr * wd)`` and return g unchanged.

        HINT: ``lr`` and ``wd`` are ``group["lr"]`` and ``group["weight_decay"]``;
        ``p.data *= ...`` (in place); Adam.step calls this before the moment update.
        """
        ### BEGIN SOLUTION
        lr, wd = group["lr"], group["weight_decay"]
        if wd != 0.0:
            p.data *= 1.0 - lr * wd
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
    assert AdamW([_param([1.0])]).param_groups[0]["weight_decay"] == 0.01, "AdamW's default weight decay is 0.01"
    ### BEGIN HIDDEN TESTS
    w = _param([2.0])
    opt = AdamW([w], lr=0.01, weight_decay=0.1)
    _set_grad(w, [3.0])
    opt.step()
    np.testing.assert_allclose(w.data, [2.0 * (1 - 0.001) - 0.01], rtol=1e-5)
    ### END HIDDEN TESTS


test_unit_adamw()

# %% [markdown]
# ## 5. Parameter groups: decay the matrices, not the biases and gains
#
# Weight decay pulls every decayed parameter towards 0 by the factor `1 - lr * wd` per
# step. For a weight matrix that is the point: smaller matrices make a smoother function
# of the input, which is the regulariser we want. For some parameters it is harmful:
#
# - a **bias** only shifts an output; it has few numbers and does not make the function
#   more wiggly, so shrinking it buys no regularisation and just biases the fit;
# - a **LayerNorm gain** `g` (module 13) sets the scale of a normalised activation, and
#   normalisation has made that scale free on purpose; decay drags it to 0 and with it the
#   whole branch's output, fighting the layer it belongs to.
#
# So GPT recipes split the parameters by shape and give each set its own hyper-parameters
# with **parameter groups**, PyTorch's list of dicts (section 1). nanoGPT's rule: every
# tensor with 2 or more dimensions (the matmul weights and the embedding tables) is
# decayed; every 1-D tensor (biases, LayerNorm gains and shifts) is not. Karpathy's
# earlier minGPT left the embeddings out of the decay as well; nanoGPT found no need to.
#
# ```
#   model.parameters()                 AdamW(groups, lr=1e-3, betas=(0.9, 0.99))
#   ------------------                 ------------------------------------------
#   tok. embedding (V, C)   2-D --+
#   attention W_q  (C, C)   2-D --+--> group 0  {"params": [...], "weight_decay": 0.1}
#   MLP W_1        (C, 4C)  2-D --+              p *= 1 - lr * 0.1 every step
#   MLP b_1        (4C,)    1-D --+
#   LayerNorm g    (C,)     1-D --+--> group 1  {"params": [...], "weight_decay": 0.0}
#   LayerNorm b    (C,)     1-D --+              no shrinking
#
#   decay  = [p for p in model.parameters() if p.ndim >= 2]
#   rest   = [p for p in model.parameters() if p.ndim < 2]
#   opt    = AdamW([{"params": decay, "weight_decay": 0.1},
#                   {"params": rest,  "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.99))
# ```
#
# How much harm? A gain the loss does not push on (gradient 0) under AdamW with
# lr = 1e-3 and wd = 0.1 is multiplied by `1 - 1e-4` per step: after milestone 5's 2,000
# steps, by `(1 - 1e-4)^2000 = 0.82`. The cell below measures it with a real optimizer and
# splits the milestone-3 MLP the nanoGPT way. Because your `step` reads every
# hyper-parameter from the parameter's group, this needs no new code; the test checks it.

# %%
from tinytorch.core.layers import Linear, Sequential  # noqa: E402  (module 03)

mlp = Sequential(Linear(784, 256, seed=0), Linear(256, 10, seed=1))
decay = [p for p in mlp.parameters() if p.ndim >= 2]
rest = [p for p in mlp.parameters() if p.ndim < 2]
print(f"decayed group: {len(decay)} tensors, {sum(p.size for p in decay):,} numbers; "
      f"not decayed: {len(rest)} tensors, {sum(p.size for p in rest):,} numbers")

gain_decayed = Tensor(np.ones(4, dtype=np.float32), requires_grad=True)
gain_free = Tensor(np.ones(4, dtype=np.float32), requires_grad=True)
opt = AdamW([{"params": [gain_decayed], "weight_decay": 0.1},
             {"params": [gain_free], "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.99))
for _ in range(2000):
    gain_decayed.grad = Tensor(np.zeros(4, dtype=np.float32))   # the loss ignores both gains
    gain_free.grad = Tensor(np.zeros(4, dtype=np.float32))
    opt.step()
print(f"a gain with zero gradient after 2,000 AdamW steps: {gain_decayed.data[0]:.4f} in the decayed "
      f"group, {gain_free.data[0]:.4f} in the other")


# %% nbgrader={"grade": true, "grade_id": "test-param-groups", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_param_groups():
    """Each parameter steps with its own group's lr and weight decay (SGD, Adam, AdamW)."""
    # SGD: the same gradient, lr 0.1 in group 0 and 1.0 in group 1
    a, b = _param([0.0]), _param([0.0])
    opt = SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    _set_grad(a, [1.0])
    _set_grad(b, [1.0])
    opt.step()
    np.testing.assert_allclose([a.data[0], b.data[0]], [-0.1, -1.0], rtol=1e-6,
                               err_msg="SGD: each group steps with its own lr")
    # SGD: momentum and weight decay per group
    a, b = _param([1.0]), _param([1.0])
    opt = SGD([{"params": [a], "weight_decay": 0.5}, {"params": [b], "momentum": 0.9}], lr=0.1)
    for _ in range(2):
        _set_grad(a, [0.0])
        _set_grad(b, [1.0])
        opt.step()
    np.testing.assert_allclose(a.data, [0.95 * 0.95], rtol=1e-6, err_msg="SGD: weight decay of group 0 only")
    np.testing.assert_allclose(b.data, [1.0 - 0.1 - 0.19], rtol=1e-5, err_msg="SGD: momentum of group 1 only")
    # Adam: the first step is lr * sign(g) with each group's lr
    a, b = _param([0.0]), _param([0.0])
    opt = Adam([{"params": [a], "lr": 0.01}, {"params": [b]}], lr=0.1)
    _set_grad(a, [3.0])
    _set_grad(b, [3.0])
    opt.step()
    np.testing.assert_allclose([a.data[0], b.data[0]], [-0.01, -0.1], rtol=1e-5,
                               err_msg="Adam: each group steps with its own lr")
    # AdamW, the nanoGPT split: decay 0.5 on group 0, none on group 1 (g = 0: only decay moves p)
    w, gain = _param([1.0]), _param([1.0])
    opt = AdamW([{"params": [w], "weight_decay": 0.5}, {"params": [gain], "weight_decay": 0.0}], lr=0.1)
    _set_grad(w, [0.0])
    _set_grad(gain, [0.0])
    opt.step()
    np.testing.assert_allclose(w.data, [0.95], rtol=1e-6, err_msg="AdamW: group 0 decays")
    np.testing.assert_allclose(gain.data, [1.0], rtol=1e-6, err_msg="AdamW: group 1 (weight_decay 0) must not decay")
    w, gain = _param([1.0]), _param([1.0])
    opt = AdamW([{"params": [w], "lr": 0.2}, {"params": [gain]}], lr=0.1, weight_decay=0.5)
    _set_grad(w, [0.0])
    _set_grad(gain, [0.0])
    opt.step()
    np.testing.assert_allclose([w.data[0], gain.data[0]], [0.9, 0.95], rtol=1e-6,
                               err_msg="AdamW: the decay uses each group's lr")
    ### BEGIN HIDDEN TESTS
    a, b = _param([1.0]), _param([1.0])
    opt = Adam([{"params": [a], "betas": (0.0, 0.0)}, {"params": [b]}], lr=0.1)
    for g in ([1.0], [4.0]):
        _set_grad(a, g)
        _set_grad(b, g)
        opt.step()
    np.testing.assert_allclose(a.data, [0.8], rtol=1e-5)
    ### END HIDDEN TESTS


test_unit_param_groups()

# %% [markdown]
# ## 6. Learning-rate schedules
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
    """Base class: ``step()`` advances ``last_epoch`` and writes ``get_lr()``, one learning
    rate per parameter group, into the optimizer's groups (PyTorch's convention)."""

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"expected an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def get_lr(self) -> list:
        """The learning rate of every group at ``self.last_epoch`` (one per ``base_lrs``)."""
        raise NotImplementedError

    def _apply(self):
        lrs = [float(lr) for lr in self.get_lr()]
        groups = self.optimizer.param_groups
        if len(lrs) != len(groups):
            raise ValueError(f"{type(self).__name__}.get_lr() returned {len(lrs)} learning rate(s) "
                             f"for {len(groups)} parameter group(s): expected one per group")
        for group, lr in zip(groups, lrs):
            group["lr"] = lr

    def step(self):
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list:
        """The learning rate of every group, as the last ``step()`` set it."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"last_epoch": np.array(self.last_epoch, dtype=np.int64),
                "base_lrs": np.array(self.base_lrs, dtype=np.float64)}

    def load_state_dict(self, d: dict):
        base_lrs = [float(v) for v in np.asarray(d["base_lrs"]).ravel()]
        if len(base_lrs) != len(self.optimizer.param_groups):
            raise ValueError(f"the scheduler state has {len(base_lrs)} group(s), the optimizer "
                             f"{len(self.optimizer.param_groups)}")
        self.last_epoch = int(np.asarray(d["last_epoch"]))
        self.base_lrs = base_lrs
        self._apply()


class LambdaLR(LRScheduler):
    """Every group's lr is its base lr times ``lr_lambda(last_epoch)``: any schedule you
    can write as a function, e.g. nanoGPT's linear warm-up then cosine (milestone 5)."""

    def __init__(self, optimizer, lr_lambda):
        if not callable(lr_lambda):
            raise TypeError(f"lr_lambda must be a function of the step, got {type(lr_lambda).__name__}")
        self.lr_lambda = lr_lambda
        super().__init__(optimizer)

    def get_lr(self) -> list:
        factor = float(self.lr_lambda(self.last_epoch))
        return [base_lr * factor for base_lr in self.base_lrs]


# %% nbgrader={"grade": false, "grade_id": "schedulers", "locked": false, "schema_version": 3, "solution": true}
#| export
class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        if step_size < 1:
            raise ValueError(f"expected step_size >= 1, got {step_size}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer)

    def get_lr(self) -> list:
        """HINT: ``base_lr * self.gamma ** (self.last_epoch // self.step_size)`` for every
        ``base_lr`` in ``self.base_lrs`` (a list: one lr per parameter group)."""
        ### BEGIN SOLUTION
        factor = self.gamma ** (self.last_epoch // self.step_size)
        return [base_lr * factor for base_lr in self.base_lrs]
        ### END SOLUTION


class CosineAnnealingLR(LRScheduler):
    """Cosine from the base lr down to ``eta_min`` over ``T_max`` steps."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0):
        if T_max < 1:
            raise ValueError(f"expected T_max >= 1, got {T_max}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer)

    def get_lr(self) -> list:
        """HINT: ``eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2`` with
        t = last_epoch, for every ``base_lr`` in ``self.base_lrs``."""
        ### BEGIN SOLUTION
        t = self.last_epoch
        cos = (1 + math.cos(math.pi * t / self.T_max)) / 2
        return [self.eta_min + (base_lr - self.eta_min) * cos for base_lr in self.base_lrs]
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

    def get_lr(self) -> list:
        """The same lr for every group (``max_lr`` is absolute, not relative to a base lr).

        HINTS: t = min(last_epoch, total_steps - 1).
        - if t <= warmup_end: cosine from initial_lr to max_lr, pct = t / warmup_end
        - else: cosine from max_lr to min_lr, pct = (t - warmup_end) / (total_steps - 1 - warmup_end)
        Use ``self._cos(start, end, pct)``; return ``[lr] * len(self.base_lrs)``.
        """
        ### BEGIN SOLUTION
        t = min(self.last_epoch, self.total_steps - 1)
        if t <= self.warmup_end and self.warmup_end > 0:
            lr = self._cos(self.initial_lr, self.max_lr, t / self.warmup_end)
        else:
            span = (self.total_steps - 1) - max(self.warmup_end, 0.0)
            pct = (t - max(self.warmup_end, 0.0)) / span
            lr = self._cos(self.max_lr, self.min_lr, pct)
        return [lr] * len(self.base_lrs)
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-schedulers", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def _lrs(scheduler, n):
    """The first group's lr before and after each of n steps."""
    out = [scheduler.get_last_lr()[0]]
    for _ in range(n):
        scheduler.step()
        out.append(scheduler.get_last_lr()[0])
    return out


def test_unit_schedulers():
    """StepLR, CosineAnnealingLR and OneCycleLR produce the tables of section 6."""
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
    # two parameter groups: each follows the schedule from its own base lr
    two = SGD([{"params": [_param([0.0])]}, {"params": [_param([0.0])], "lr": 0.1}], lr=1.0)
    sched = StepLR(two, step_size=1, gamma=0.5)
    sched.step()
    np.testing.assert_allclose(sched.get_last_lr(), [0.5, 0.05], rtol=1e-9)
    two = SGD([{"params": [_param([0.0])]}, {"params": [_param([0.0])], "lr": 0.1}], lr=1.0)
    sched = CosineAnnealingLR(two, T_max=2, eta_min=0.0)
    sched.step()
    np.testing.assert_allclose([g["lr"] for g in two.param_groups], [0.5, 0.05], rtol=1e-9)
    two = SGD([{"params": [_param([0.0])]}, {"params": [_param([0.0])], "lr": 0.1}], lr=1.0)
    np.testing.assert_allclose(OneCycleLR(two, max_lr=1.0, total_steps=10).get_last_lr(), [0.04, 0.04])
    ### BEGIN HIDDEN TESTS
    opt = SGD([_param([0.0])], lr=2.0)
    np.testing.assert_allclose(_lrs(StepLR(opt, step_size=3, gamma=0.5), 6), [2, 2, 2, 1, 1, 1, 0.5])
    ### END HIDDEN TESTS


test_unit_schedulers()

# %% [markdown]
# ## 7. Saving optimizer state
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
    # parameter groups: each group's hyper-parameters come back; a different grouping is rejected
    a, b = _param([1.0]), _param([1.0])
    opt = AdamW([{"params": [a], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0, "lr": 0.5}],
                lr=0.01, betas=(0.9, 0.99))
    a2, b2 = _param([1.0]), _param([1.0])
    opt2 = AdamW([{"params": [a2]}, {"params": [b2]}])
    opt2.load_state_dict(opt.state_dict())
    for key in ("lr", "weight_decay", "betas"):
        assert [g[key] for g in opt2.param_groups] == [g[key] for g in opt.param_groups], f"group {key} not restored"
    try:
        AdamW([a2, b2]).load_state_dict(opt.state_dict())
    except ValueError:
        pass
    else:
        raise AssertionError("a state saved with 2 groups must not load into an optimizer with 1 group")
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
# ## 8. Systems measurement: optimizer-state memory on a real model
#
# Build the MLP of milestone 3 (784-256-128-10), take one real training step with each
# optimizer, and ask each optimizer how many bytes of state it now holds.

# %%
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
# ## 9. What the state buys: a narrow valley
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
# 6. In section 9, plain SGD's best learning rate sat just below 2/100 = 0.02. Why is that the
#    stability limit on this valley, and why does it make progress *along* the valley slow
#    (how much does `w0` shrink per step)? Adam converged fastest here; construct a loss on
#    which its per-coordinate rescaling would not help (hint: a rotated valley).
# 7. Section 5 decays only tensors with 2 or more dimensions. A bias has a few hundred
#    numbers, a weight matrix tens of thousands: why is decaying the bias not worth its
#    harm, even though it costs nothing to compute? And why would decaying an embedding
#    table be more debatable than decaying an attention matrix (think of how often a rare
#    token's row receives a gradient, while decay shrinks it every step)?
