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
# # Module 03: Layers
#
# A network is more than a function: it owns state. Training needs to find every weight
# (to update it), checkpointing needs to name every weight (to save and restore it), and
# layers such as Dropout need to know whether the network is training or being evaluated.
# PyTorch solves all three with one base class, `nn.Module`, that discovers the parameters
# of a model by looking at its attributes. In this module you build that base class, then
# `Linear` (the layer that holds almost every parameter of an MLP or a transformer) with the
# same initialization PyTorch uses, `Dropout`, and `Sequential`. Then you measure the first
# big systems fact of training: for realistic batch sizes, the activations a forward pass
# creates can take far more memory than the parameters of the model itself.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far                you build now                   this unlocks
#   ------------                -------------                   ------------
#   01 Tensor        ----->     03 Layers             ----->    04 Losses (score the output)
#   (matmul, +, memory)         Module: parameters,             05 Autograd (gradients flow
#   02 Activations   ----->       named_parameters,               through x @ W + b)
#   (ReLU, Softmax, ...)          state_dict, train/eval        06 Optimizers (update
#                               Linear(in, out)                   module.parameters())
#                               Dropout(p)                      07 Training (checkpoints =
#                               Sequential(*layers)               state_dict)
#                                                               milestone 1 (Perceptron)
# ```

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp core.layers
#| export
#| namespace tinytorch.nn Module Linear Dropout Sequential
import numpy as np

from tinytorch.core.tensor import Tensor, default_rng

# %% [markdown]
# ## 1. Module: finding the parameters by looking at attributes
#
# When you write
#
# ```python
# class MLP(Module):
#     def __init__(self):
#         super().__init__()
#         self.fc1 = Linear(784, 128)     # a child Module
#         self.fc2 = Linear(128, 10)      # another child
#         self.scale = Tensor([2.0])      # a plain constant: NOT a parameter
# ```
#
# nobody registers anything by hand. `Module` walks `vars(self)`, the instance's
# attribute dictionary, which Python keeps **in definition order**:
#
# ```
#   MLP
#    |-- fc1 : Linear          child Module  -> recurse with prefix "fc1."
#    |    |-- weight (784,128)   Tensor, requires_grad=True  -> "fc1.weight"
#    |    '-- bias   (128,)      Tensor, requires_grad=True  -> "fc1.bias"
#    |-- fc2 : Linear          child Module  -> recurse with prefix "fc2."
#    |    |-- weight (128,10)                                -> "fc2.weight"
#    |    '-- bias   (10,)                                   -> "fc2.bias"
#    '-- scale : Tensor        requires_grad=False -> ignored (a constant)
#
#   named_parameters() = [("fc1.weight", W1), ("fc1.bias", b1), ("fc2.weight", W2), ("fc2.bias", b2)]
# ```
#
# The rules (docs/framework.md):
#
# - an attribute that is a `Tensor` with `requires_grad=True` is a **parameter**;
# - an attribute that is a `Module` is a **child**; so is every Module inside an attribute
#   that is a list or tuple (named `layers.0`, `layers.1`, ...);
# - a Tensor registered with `register_buffer(name, t)` is a **buffer**: saved in the
#   `state_dict` but never trained (running statistics of a normalization layer, a causal
#   mask);
# - each Tensor is reported **once**, even if two layers share it (weight tying in GPT
#   models shares the embedding matrix with the output layer).
#
# `state_dict()` maps every parameter and buffer name to a *copy* of its NumPy array
# (a checkpoint must not change when training continues), and `load_state_dict(d)` copies
# arrays back in, refusing missing names, unexpected names and wrong shapes with a message
# that names them. Finally, `train()` and `eval()` set a `training` flag on the module and
# all its descendants: Dropout reads it.
#
# The parts you write: `named_children` (the discovery rule), `named_parameters` (the
# recursion, with de-duplication) and `load_state_dict` (the checks). The rest is given.

# %% nbgrader={"grade": false, "grade_id": "module", "locked": false, "schema_version": 3, "solution": true}
#| export
class Module:
    """Base class of every layer and model: finds parameters, children and buffers by
    looking at attributes; saves and loads them; switches train/eval mode."""

    training = True  # class default: a subclass that forgets super().__init__() still works

    def __init__(self):
        self.training = True

    # ---- what a layer implements -------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- discovery ---------------------------------------------------------------------
    def _buffer_names(self) -> list:
        return self.__dict__.setdefault("_buffers", [])

    def register_buffer(self, name: str, tensor: Tensor) -> None:
        """Attach ``tensor`` as attribute ``name``: saved in state_dict, never a parameter."""
        if not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer({name!r}, ...): expected a Tensor, got {type(tensor).__name__}")
        setattr(self, name, tensor)
        if name not in self._buffer_names():
            self._buffer_names().append(name)

    def named_children(self) -> list:
        """Direct child Modules as ``(name, module)`` pairs, in definition order.

        An attribute that is a Module is a child named like the attribute; a Module at
        position i of a list or tuple attribute ``layers`` is named ``"layers.i"``.
        HINT: iterate over vars(self).items(); isinstance(value, (list, tuple)).
        """
        ### BEGIN SOLUTION
        children = []
        for name, value in vars(self).items():
            if isinstance(value, Module):
                children.append((name, value))
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        children.append((f"{name}.{i}", item))
        return children
        ### END SOLUTION

    def children(self) -> list:
        return [m for _, m in self.named_children()]

    def named_parameters(self, prefix: str = "", _seen: set | None = None) -> list:
        """All parameters of this module and its descendants as ``(name, tensor)`` pairs.

        Order: this module's own parameters in attribute order, with each child's
        parameters (prefixed ``"child_name."``) at the position of the child attribute.
        A Tensor reachable twice (shared weights) is listed once, under its first name.
        A registered buffer is never a parameter, even if it requires grad.

        HINT: walk vars(self).items() once; for a Tensor check requires_grad, the buffer
        names and id(tensor) in _seen. Children come from self.named_children(); group
        them by attribute (the part of the child name before the first "."), so that when
        the walk reaches that attribute you recurse with prefix + child_name + ".".
        """
        if _seen is None:
            _seen = set()
        ### BEGIN SOLUTION
        result = []
        buffers = set(self._buffer_names())
        children_of_attr = {}
        for child_name, child in self.named_children():
            children_of_attr.setdefault(child_name.split(".")[0], []).append((child_name, child))
        for name, value in vars(self).items():
            if isinstance(value, Tensor):
                if value.requires_grad and name not in buffers and id(value) not in _seen:
                    _seen.add(id(value))
                    result.append((prefix + name, value))
            for child_name, child in children_of_attr.get(name, []):
                result.extend(child.named_parameters(prefix + child_name + ".", _seen))
        return result
        ### END SOLUTION

    def parameters(self) -> list:
        """Every parameter Tensor once, in definition order (what an optimizer receives)."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> list:
        result = [(prefix + n, getattr(self, n)) for n in self._buffer_names()]
        for child_name, child in self.named_children():
            result.extend(child.named_buffers(prefix + child_name + "."))
        return result

    # ---- saving and loading ------------------------------------------------------------
    def state_dict(self) -> dict:
        """Name -> copy of the NumPy array, for every parameter and buffer."""
        state = {name: p.data.copy() for name, p in self.named_parameters()}
        state.update({name: b.data.copy() for name, b in self.named_buffers()})
        return state

    def load_state_dict(self, state: dict) -> None:
        """Copy arrays from ``state`` into this module's parameters and buffers, in place.

        Raises KeyError naming every missing and every unexpected key, and ValueError
        naming the key, the expected shape and the shape found. The values keep the
        dtype of the module's tensors (a float64 array loads as float32).
        HINT: compare set(state) with the names of self.state_dict(); then for each
        tensor: tensor.data[...] = np.asarray(value) (copies, keeps dtype and identity).
        """
        ### BEGIN SOLUTION
        targets = dict(self.named_parameters())
        targets.update(dict(self.named_buffers()))
        missing = sorted(set(targets) - set(state))
        unexpected = sorted(set(state) - set(targets))
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for name, tensor in targets.items():
            value = np.asarray(state[name].data if isinstance(state[name], Tensor) else state[name])
            if value.shape != tensor.shape:
                raise ValueError(f"load_state_dict: {name!r} expected shape {tensor.shape}, got {value.shape}")
            tensor.data[...] = value
        ### END SOLUTION

    # ---- modes and gradients -----------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Set training mode on this module and every descendant; returns self."""
        self.training = bool(mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget the gradients of every parameter (grad = None)."""
        for p in self.parameters():
            p.grad = None

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters()))

    # ---- printing ----------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = self.named_children()
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            lines.append("  (" + name + "): " + repr(child).replace("\n", "\n  "))
        return "\n".join(lines) + "\n)"

# %% nbgrader={"grade": true, "grade_id": "test-module", "locked": true, "points": 3, "schema_version": 3, "solution": false}
from tinytorch.testing import assert_tensor


def test_unit_module():
    """Module discovers parameters (once, in order), children in lists, buffers; state_dict round trip;
    loading keeps each tensor's dtype and refuses shapes that would only broadcast."""
    class Tiny(Module):
        def __init__(self, w_value):
            super().__init__()
            self.w = Tensor(np.full((2, 3), w_value, dtype=np.float32), requires_grad=True)
            self.const = Tensor([1.0])                    # requires_grad=False: not a parameter
            self.register_buffer("count", Tensor(np.zeros(1, dtype=np.float32)))

    class Outer(Module):
        def __init__(self):
            super().__init__()
            self.first = Tiny(1.0)
            self.blocks = [Tiny(2.0), Tiny(3.0)]
            self.shared = self.first.w                    # same Tensor again: listed once
            self.b = Tensor(np.zeros(3, dtype=np.float32), requires_grad=True)

    m = Outer()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["first.w", "blocks.0.w", "blocks.1.w", "b"], f"got {names}"
    assert len(m.parameters()) == 4, f"expected 4 parameters, got {len(m.parameters())}"
    assert [n for n, _ in m.named_children()] == ["first", "blocks.0", "blocks.1"]
    sd = m.state_dict()
    assert set(sd) == {"first.w", "blocks.0.w", "blocks.1.w", "b",
                       "first.count", "blocks.0.count", "blocks.1.count"}, f"got {sorted(sd)}"
    assert isinstance(sd["first.w"], np.ndarray)
    sd["first.w"][...] = 99.0                              # a copy: the model must not change
    assert m.first.w.data[0, 0] == 1.0, "state_dict must return copies"
    m2 = Outer()
    m2.blocks[1].w.data[...] = -5.0
    m2.load_state_dict(m.state_dict())
    np.testing.assert_array_equal(m2.blocks[1].w.data, np.full((2, 3), 3.0))
    m2.load_state_dict({k: v.astype(np.float64) for k, v in m.state_dict().items()})
    assert m2.b.dtype == np.float32, f"a float64 state must load as the tensor's float32, got {m2.b.dtype}"
    bad = m.state_dict()
    bad["b"] = np.zeros(1, dtype=np.float32)                # would broadcast into (3,): must not
    try:
        m2.load_state_dict(bad)
    except ValueError as e:
        assert "(3,)" in str(e) and "(1,)" in str(e), f"name both shapes: {e}"
    else:
        raise AssertionError("a (1,) array for a (3,) tensor must raise ValueError, not broadcast")
    bad["b"] = np.zeros(4, dtype=np.float32)
    try:
        m2.load_state_dict(bad)
    except ValueError as e:
        assert "(3,)" in str(e) and "(4,)" in str(e), f"name both shapes: {e}"
    else:
        raise AssertionError("a wrong shape must raise ValueError")
    del bad["b"]
    bad["extra"] = np.zeros(1)
    try:
        m2.load_state_dict(bad)
    except KeyError as e:
        assert "'b'" in str(e) and "extra" in str(e), f"name missing and unexpected keys: {e}"
    else:
        raise AssertionError("missing/unexpected keys must raise KeyError")
    assert m.training and m.blocks[0].training
    m.eval()
    assert not m.training and not m.blocks[1].training, "eval() must reach children inside lists"
    assert m.train() is m and m.first.training
    ### BEGIN HIDDEN TESTS
    m.first.w.grad = Tensor(np.ones((2, 3), dtype=np.float32))
    m.zero_grad()
    assert m.first.w.grad is None
    ### END HIDDEN TESTS
    print("test_unit_module passed")


test_unit_module()

# %% [markdown]
# ## 2. Linear: `y = x @ W + b`
#
# ```
#   x (B, in)  @  W (in, out)  +  b (out,)   ->   y (B, out)
#
#   B=2, in=3, out=2:
#   [[1, 2, 3],     [[ 0.1, -0.2],      [0.5, 0.5]     [[1*0.1+2*0.3+3*0.5 + 0.5, ...],
#    [4, 5, 6]]  @   [ 0.3,  0.1],  +                =   ...]
#                    [ 0.5,  0.0]]
# ```
#
# We store `W` as `(in, out)` so the forward pass is one matmul with no transpose
# (PyTorch stores `(out, in)` and computes `x @ W.T`; same numbers, different layout).
# `b` broadcasts over the batch dimension. Any leading dimensions work: `(B, T, in)`
# becomes `(B, T, out)`, which is how transformers apply Linear to every token.
#
# **Initialization.** If the weights are too large, activations grow layer after layer
# and explode; too small, and they shrink to zero. Each output is a sum of `in` products,
# so its variance grows with `in`: scale the weights by `1/sqrt(in)` to keep it steady.
# PyTorch's default draws both W and b from `U(-1/sqrt(in), 1/sqrt(in))`, and so do we:
#
# ```
#   in = 784  ->  bound = 1/sqrt(784) = 0.0357     W ~ U(-0.0357, 0.0357)
#   in = 4    ->  bound = 0.5
# ```
#
# The random generator takes a `seed`: the same seed gives the same layer, always.
# Without one, the layer draws from module 01's `default_rng()`, the generator that
# `tinytorch.manual_seed(s)` resets (PyTorch's `torch.manual_seed` does the same for its
# layers), so a script that calls `manual_seed` once is repeatable too.
#
# **Integer inputs are refused.** `int64 @ float32` is float64 in NumPy: a batch of raw
# integer features would silently make every activation and gradient after it float64
# (twice the memory, half the speed). PyTorch refuses mixed dtypes in a matmul; `Linear`
# raises a `TypeError` that says to convert with `x.float()` (see the cell after the tests).
#
# **Autograd later.** Write the forward with Tensor operations (`@`, `+`), not with
# `.data`: in module 05 these operations start recording a graph, and gradients reach
# `self.weight` and `self.bias` without one line changing here. A forward that returns a
# NumPy array, or computes on `.data`, would silently cut the graph.

# %% nbgrader={"grade": false, "grade_id": "linear", "locked": false, "schema_version": 3, "solution": true}
#| export
class Linear(Module):
    """Fully connected layer ``y = x @ W + b`` with W of shape (in_features, out_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, seed: int | None = None):
        """Create W (in, out) and b (out,) from U(-1/sqrt(in), 1/sqrt(in)), float32, requires_grad=True.

        HINT: one generator from default_rng(seed) (module 01: np.random.default_rng(seed), or the
        manual_seed generator when seed is None), then its .uniform(low, high, size),
        cast with .astype(np.float32). With bias=False the attribute bias must still exist, as None.
        """
        super().__init__()
        for label, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Linear: {label} must be a positive int, got {value!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        ### BEGIN SOLUTION
        gen = default_rng(seed)
        bound = 1.0 / np.sqrt(self.in_features)
        w = gen.uniform(-bound, bound, size=(self.in_features, self.out_features)).astype(np.float32)
        self.weight = Tensor(w, requires_grad=True)                      # (in, out)
        if bias:
            b = gen.uniform(-bound, bound, size=(self.out_features,)).astype(np.float32)
            self.bias = Tensor(b, requires_grad=True)                    # (out,)
        else:
            self.bias = None
        ### END SOLUTION

    def forward(self, x: Tensor) -> Tensor:
        """Return ``x @ W + b`` computed with Tensor operations; x has shape (..., in_features)."""
        if not isinstance(x, Tensor):
            x = Tensor(x)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"Shape mismatch: {self!r} expects input of shape (..., {self.in_features}), "
                             f"got {x.shape}")
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"{self!r} expects a float input, got dtype {x.dtype}: integer @ float32 would "
                            "silently compute in float64. Convert the input with x.float().")
        ### BEGIN SOLUTION
        out = x @ self.weight               # (..., in) @ (in, out) -> (..., out)
        if self.bias is not None:
            out = out + self.bias           # (..., out) + (out,) broadcasts
        return out
        ### END SOLUTION

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={getattr(self, 'bias', None) is not None}")

# %% nbgrader={"grade": true, "grade_id": "test-linear", "locked": true, "points": 3, "schema_version": 3, "solution": false}
def test_unit_linear():
    """Linear: shapes, init range, seeding, the formula, leading dims, bias=False, clear errors."""
    layer = Linear(784, 128, seed=0)
    assert layer.weight.shape == (784, 128), f"weight must be (in, out) = (784, 128), got {layer.weight.shape}"
    assert layer.bias.shape == (128,), f"bias must be (out,) = (128,), got {layer.bias.shape}"
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    assert layer.weight.requires_grad and layer.bias.requires_grad, "W and b must require grad"
    bound = 1 / np.sqrt(784)
    assert np.abs(layer.weight.data).max() <= bound, "weights must lie in U(-1/sqrt(in), 1/sqrt(in))"
    assert layer.weight.data.std() > bound / 3, "weights look too small for U(-b, b) (std should be b/sqrt(3))"
    np.testing.assert_array_equal(Linear(784, 128, seed=0).weight.data, layer.weight.data)
    assert not np.array_equal(Linear(784, 128, seed=1).weight.data, layer.weight.data), "seed must matter"
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]

    small = Linear(3, 2, seed=0)
    small.weight.data[...] = [[0.1, -0.2], [0.3, 0.1], [0.5, 0.0]]
    small.bias.data[...] = [0.5, 0.5]
    y = assert_tensor(small(Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])), (2, 2), np.float32, name="Linear(3, 2)(x)")
    np.testing.assert_allclose(y.data, [[2.7, 0.5], [5.4, 0.2]], rtol=1e-6)
    assert_tensor(small(Tensor(np.ones((4, 5, 3), dtype=np.float32))), (4, 5, 2), name="Linear on (4, 5, 3)")
    nb = Linear(3, 2, bias=False, seed=0)
    assert nb.bias is None and len(nb.parameters()) == 1
    y_nb = assert_tensor(nb(Tensor([[1.0, 2.0, 3.0]])), (1, 2), np.float32, name="Linear(bias=False)(x)")
    np.testing.assert_allclose(y_nb.data, [[1.0, 2.0, 3.0]] @ nb.weight.data, rtol=1e-6)
    try:
        small(Tensor(np.ones((2, 4), dtype=np.float32)))
    except ValueError as e:
        assert "(2, 4)" in str(e) and "3" in str(e), f"the error must name expected and got: {e}"
    else:
        raise AssertionError("wrong input width must raise ValueError")
    ### BEGIN HIDDEN TESTS
    assert Linear(4, 3, seed=5).num_parameters() == 15
    ### END HIDDEN TESTS
    print("test_unit_linear passed")


test_unit_linear()

# %% [markdown]
# An integer batch (raw pixel values, counts) is refused with a message saying what to do:

# %%
try:
    Linear(3, 2, seed=0)(Tensor(np.array([[1, 2, 3]])))  # int64 input
except TypeError as e:
    print(f"TypeError: {e}")
print("after x.float():", Linear(3, 2, seed=0)(Tensor(np.array([[1, 2, 3]])).float()).dtype)

# %% [markdown]
# ## 3. Dropout: noise that only exists during training
#
# During training, Dropout sets each element to zero with probability `p`, so the network
# cannot rely on any single unit. "Inverted" dropout (what PyTorch does) also scales the
# survivors by `1/(1-p)` so that the **expected value is unchanged**; at evaluation time
# Dropout is then simply the identity, with no rescaling to remember:
#
# ```
#   p = 0.5, train:  x    = [1.0, 2.0, 3.0, 4.0]
#                    keep = [  1,   0,   1,   0]      (random, seeded)
#                    out  = [2.0, 0.0, 6.0, 0.0]      = x * keep / (1 - p)
#                    E[out_i] = (1-p) * x_i / (1-p) = x_i
#
#   eval():          out  = x                          (identity, same object)
# ```
#
# Multiply with a Tensor operation (`x * mask`, the mask a float32 NumPy array), so that in
# module 05 gradients flow through exactly the units that were kept. Take the random mask
# from a generator created once from `seed`, so that two Dropout layers with the same seed
# drop the same units, and successive calls drop different ones.

# %% nbgrader={"grade": false, "grade_id": "dropout", "locked": false, "schema_version": 3, "solution": true}
#| export
class Dropout(Module):
    """Inverted dropout: zero each element with probability p in training, identity in eval."""

    def __init__(self, p: float = 0.5, seed: int | None = None):
        super().__init__()
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)
        self._rng = default_rng(seed)

    def forward(self, x: Tensor) -> Tensor:
        """Training: ``x * mask`` with mask = keep / (1 - p), keep ~ Bernoulli(1 - p), float32.
        Eval (or p == 0): return x unchanged.  p == 1: every element becomes 0.

        HINT: keep = self._rng.random(x.shape) >= self.p
        """
        if not isinstance(x, Tensor):
            x = Tensor(x)
        ### BEGIN SOLUTION
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x * np.zeros(x.shape, dtype=np.float32)
        keep = self._rng.random(x.shape) >= self.p                       # (...) bool
        mask = keep.astype(np.float32) / np.float32(1.0 - self.p)        # (...) float32
        return x * mask
        ### END SOLUTION

    def extra_repr(self) -> str:
        return f"p={self.p}"

# %% nbgrader={"grade": true, "grade_id": "test-dropout", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_dropout():
    """Dropout: fraction dropped, scaling, expected value, eval identity, seeding, float32."""
    x = Tensor(np.ones((100, 1000), dtype=np.float32))
    d = Dropout(0.3, seed=0)
    y = assert_tensor(d(x), (100, 1000), np.float32, name="Dropout(0.3)(x)")
    dropped = float((y.data == 0).mean())
    assert abs(dropped - 0.3) < 0.01, f"expected about 30% zeros, got {dropped:.1%}"
    survivors = y.data[y.data != 0]
    np.testing.assert_allclose(survivors, 1 / 0.7, rtol=1e-6)
    assert abs(float(y.data.mean()) - 1.0) < 0.01, "inverted dropout keeps the mean"
    assert not np.array_equal(d(x).data, y.data), "successive calls must draw new masks"
    np.testing.assert_array_equal(Dropout(0.3, seed=0)(x).data, y.data)
    d.eval()
    assert d(x) is x, "in eval mode Dropout returns its input unchanged"
    np.testing.assert_array_equal(Dropout(1.0, seed=0)(x).data, np.zeros((100, 1000)))
    assert Dropout(0.0)(x) is x
    try:
        Dropout(1.5)
    except ValueError:
        pass
    else:
        raise AssertionError("p=1.5 must raise ValueError")
    ### BEGIN HIDDEN TESTS
    assert Dropout(0.5).parameters() == []
    ### END HIDDEN TESTS
    print("test_unit_dropout passed")


test_unit_dropout()

# %% [markdown]
# ## 4. Sequential: a pipeline of layers
#
# ```
#   Sequential(Linear(4, 8), ReLU(), Dropout(0.1), Linear(8, 3))
#
#   x (B,4) -> Linear -> (B,8) -> ReLU -> (B,8) -> Dropout -> (B,8) -> Linear -> (B,3)
# ```
#
# `Sequential` keeps its layers in a list attribute `self.layers`, so `Module`'s discovery
# already finds the children (`layers.0`, `layers.3`) and their parameters, and `eval()`
# reaches the Dropout. Activation objects from module 02 are not Modules, but they are
# callable, have no parameters, and sit in the list just the same. The forward pass
# feeds each output into the next layer.

# %% nbgrader={"grade": false, "grade_id": "sequential", "locked": false, "schema_version": 3, "solution": true}
#| export
class Sequential(Module):
    """Apply layers (Modules or activation objects) one after another."""

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not callable(layer):
                raise TypeError(f"Sequential: layer {i} must be a Module or an activation, "
                                f"got {type(layer).__name__}")
        self.layers = list(layers)

    def forward(self, x: Tensor) -> Tensor:
        """Feed x through every layer in order and return the last output."""
        ### BEGIN SOLUTION
        for layer in self.layers:
            x = layer(x)
        return x
        ### END SOLUTION

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __repr__(self) -> str:
        lines = ["Sequential("]
        for i, layer in enumerate(self.layers):
            lines.append(f"  ({i}): " + repr(layer).replace("\n", "\n  "))
        return "\n".join(lines) + "\n)"

# %% [markdown]
# The activations you wrote in module 02 come from the package (not exported from here):

# %%
from tinytorch.core.activations import ReLU, Sigmoid


# %% nbgrader={"grade": true, "grade_id": "test-sequential", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_sequential():
    """Sequential chains Modules and activations; parameters and eval reach every layer."""
    net = Sequential(Linear(4, 8, seed=0), ReLU(), Dropout(0.5, seed=0), Linear(8, 3, seed=1))
    names = [n for n, _ in net.named_parameters()]
    assert names == ["layers.0.weight", "layers.0.bias", "layers.3.weight", "layers.3.bias"], f"got {names}"
    x = Tensor(np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32))
    net.eval()
    y = assert_tensor(net(x), (5, 3), np.float32, name="Sequential(...)(x)")
    h = np.maximum(x.data @ net[0].weight.data + net[0].bias.data, 0)
    np.testing.assert_allclose(y.data, h @ net[3].weight.data + net[3].bias.data, rtol=1e-5, atol=1e-6)
    assert not net[2].training, "eval() must reach the Dropout inside Sequential"
    assert len(net) == 4
    ### BEGIN HIDDEN TESTS
    assert Sequential(Sigmoid())(Tensor([0.0])).data[0] == 0.5
    ### END HIDDEN TESTS
    print("test_unit_sequential passed")


test_unit_sequential()

# %% [markdown]
# ## 5. Systems measurement: parameter memory vs activation memory
#
# Parameters are paid once; activations are paid **per example in the batch**. For the
# MLP below (784 -> 256 -> 128 -> 10, the milestone-3 shape), the parameters take a fixed
# amount of memory. Every layer's output, though, is a `(B, features)` array that module
# 05's backward pass must keep until the gradients are computed, so it grows linearly with
# the batch size `B`. The function below runs the model layer by layer and adds up the
# `memory_footprint()` of every intermediate output: measured, not computed by formula.

# %%
def parameter_bytes(model: Module) -> int:
    return int(sum(p.memory_footprint() for p in model.parameters()))


def activation_bytes(model: Sequential, x: Tensor) -> int:
    """Bytes of every intermediate output of ``model`` on input ``x`` (input excluded)."""
    total = 0
    for layer in model.layers:
        x = layer(x)
        total += x.memory_footprint()
    return int(total)


mlp = Sequential(Linear(784, 256, seed=0), ReLU(), Linear(256, 128, seed=1), ReLU(), Linear(128, 10, seed=2))
p_bytes = parameter_bytes(mlp)
print(mlp)
print(f"\nparameters: {mlp.num_parameters():,} floats = {p_bytes / 1e6:.3f} MB (independent of batch size)\n")
print(f"{'batch':>7} | {'input MB':>9} | {'activations MB':>15} | {'activations / params':>20}")
rng = np.random.default_rng(0)
crossover = None
for batch in (1, 32, 128, 256, 1024, 4096):
    xb = Tensor(rng.random((batch, 784), dtype=np.float32))      # (B, 784)
    a_bytes = activation_bytes(mlp, xb)
    if crossover is None and a_bytes >= p_bytes:
        crossover = batch
    print(f"{batch:>7} | {xb.memory_footprint() / 1e6:>9.3f} | {a_bytes / 1e6:>15.3f} | {a_bytes / p_bytes:>20.2f}")
per_example = activation_bytes(mlp, Tensor(np.zeros((1, 784), dtype=np.float32)))
print(f"\nactivations per example: {per_example} bytes (measured at batch 1); they outweigh the "
      f"parameters from batch {-(-p_bytes // per_example)} on (first measured row: batch {crossover})")
print("module 05's backward pass must keep these activations alive until the gradients are computed")

# %% nbgrader={"grade": true, "grade_id": "test-module-layers", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_module():
    """Layers together: an MLP built from Module subclasses, state_dict round trip, memory accounting."""
    class MLP(Module):
        def __init__(self, seed):
            super().__init__()
            self.body = Sequential(Linear(6, 16, seed=seed), ReLU(), Dropout(0.2, seed=seed))
            self.head = Linear(16, 2, seed=seed + 1)

        def forward(self, x):
            return self.head(self.body(x))        # (B, 6) -> (B, 16) -> (B, 2)

    a, b = MLP(seed=0), MLP(seed=10)
    x = Tensor(np.random.default_rng(3).normal(size=(7, 6)).astype(np.float32))
    a.eval(); b.eval()
    assert not np.allclose(a(x).data, b(x).data)
    b.load_state_dict(a.state_dict())
    np.testing.assert_allclose(a(x).data, b(x).data, rtol=1e-6)
    assert a.num_parameters() == 6 * 16 + 16 + 16 * 2 + 2
    assert parameter_bytes(a) == 4 * a.num_parameters(), "float32 parameters take 4 bytes each"
    print("test_module passed: layers compose into models")


test_module()

# %% [markdown]
# ## The function form of Dropout
#
# `F.dropout(x, p, training)` is `Dropout` without a module around it: the caller says
# whether it is training (PyTorch's default is `training=True`).

# %% nbgrader={"grade": false, "grade_id": "functional", "locked": true, "schema_version": 3, "solution": false}
#| export
#| namespace tinytorch.nn.functional dropout
def dropout(x, p: float = 0.5, training: bool = True, seed=None) -> Tensor:
    layer = Dropout(p, seed=seed)
    layer.training = bool(training)
    return layer(x)

# %% [markdown]
# ## Reflect
#
# 1. **Memory.** Your measurement showed activations outgrowing parameters as the batch
#    grows. A GPT-2 small layer has about 7M parameters and, at batch 8 and 1024 tokens,
#    activations of shape `(8, 1024, 3072)` after its first MLP Linear. How many MB is that
#    one activation in float32, compared with the layer's parameters? What does this
#    suggest about where the memory of training goes?
# 2. **Initialization.** With `U(-1/sqrt(in), 1/sqrt(in))` the weight variance is
#    `1/(3 in)`. Push a unit-variance input through 10 `Linear(512, 512)` layers without
#    activations: what happens to the output variance? What if the bound were `1` instead?
# 3. **Layout.** We store `W` as `(in, out)`; PyTorch stores `(out, in)`. What must change
#    to load a PyTorch `state_dict` into your Linear? Which layout makes the forward
#    matmul read memory contiguously?
# 4. **Discovery by attributes.** `Module` finds children in attributes and in lists. What
#    happens to the parameters of a layer kept in a `dict` attribute? Why does PyTorch
#    provide `ModuleList` and `ModuleDict` instead of inspecting every container?
# 5. **Dropout.** Inverted dropout scales at training time so evaluation is free. What would
#    a deployment bug look like if a model trained with "classic" dropout (no scaling in
#    training) were served without the `(1 - p)` scaling?
