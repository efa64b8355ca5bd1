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
# # Module 14: Profiling
#
# Your framework trains a CNN on CIFAR-10 and a GPT on Shakespeare. Now it must get faster, and
# the first rule of optimization is: *measure before you change anything*. Programmers are
# famously bad at guessing where time goes. In this module you build the instruments that every
# later module uses to prove its gains: a FLOP counter that counts at the level of operations (so
# functional attention is not missed), a memory profiler built on `tracemalloc`, and a `Profiler`
# that times every op and every layer, forward and backward, with repeats and statistics, and
# writes a bottleneck report. Then you use them: Amdahl's law predicts what speeding up the top
# op can buy, you make it faster for real and check the prediction; and a roofline tells you,
# layer by layer, whether the machine's arithmetic or its memory is the limit.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far                      you build now                     this unlocks
#   ------------                      -------------                     ------------
#   01 Tensor (nbytes, matmul)  -->   FLOP rules: matmul, conv,   -->   15 quantization: 4x less memory traffic
#   03 Module (the layer tree)  -->     attention (FLOPs vs MACs)       16 compression: FLOPs removed
#   05 Function (forward and    -->   count_flops at the op level  -->  17 KV cache: work skipped
#      backward of every op)          profile_memory (tracemalloc)      18 acceleration: the slow op found
#   09 Conv2d, 12/13 attention, -->   Profiler: per op and Module, -->  19 benchmarking: statistics of speed
#      GPT: the models to study         bottleneck report               20 capstone: every claim measured
#                                     Amdahl's law, roofline
# ```

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp profiling.profiler
#| export
#| namespace tinytorch.profiling Profiler profile_memory count_flops
import statistics
import time
import tracemalloc

import numpy as np

from tinytorch.core.autograd import Function, no_grad
from tinytorch.core.layers import Module
from tinytorch.core.tensor import Tensor

# %% [markdown]
# ## 1. FLOPs and MACs: two names, a factor of two
#
# A multiply-accumulate (MAC) is `acc += a * b`: one multiply and one add, so **2 FLOPs**.
# PyTorch's `torch.utils.flop_counter`, MLPerf and the roofline literature count FLOPs;
# several popular counters (fvcore, thop, ptflops) count MACs *and call them FLOPs*, which is why
# two papers can report the same ResNet at "4 GFLOPs" and "8 GFLOPs". We name both, always.
#
# ```
#   matmul  (M, K) @ (K, N)            every output element is a K-long dot product
#                                      MACs  = M * N * K          FLOPs = 2 * M * N * K
#   batched (..., M, K) @ (..., K, N)  times the product of the broadcast batch dims
#
#   Linear 784 -> 256 at batch 128:    MACs  = 128 * 256 * 784 = 25,690,112
#                                      FLOPs = 51,380,224  (the bias add is not counted,
#                                      as PyTorch does not: it is N*M adds, 1/K of the work)
#
#   Conv2d (N, C, H, W) * (O, C, KH, KW) -> (N, O, H', W')
#                                      MACs  = N * O * H' * W' * C * KH * KW
#   CIFAR block: (128, 32, 32, 32), 32 filters 3x3, padding 1
#                                      MACs  = 128 * 32 * 32 * 32 * 32 * 9 = 1,207,959,552
#
#   attention q (B, H, Tq, d), k (B, H, Tk, d), v (B, H, Tk, dv): two matmuls
#                                      FLOPs = 2*B*H*Tq*Tk*d  (q @ k^T)  + 2*B*H*Tq*Tk*dv  (P @ v)
#   GPT layer, B=12, H=4, T=64, d=32:  FLOPs = 2 * (2 * 12 * 4 * 64 * 64 * 32) = 25,165,824
# ```
#
# The causal mask does not change the count: the full T x T product is computed and half of it
# is thrown away (PyTorch counts it the same way). Write the three rules.

# %% nbgrader={"grade": false, "grade_id": "flop-rules", "locked": false, "schema_version": 3, "solution": true}
#| export
def matmul_flops(a_shape, b_shape) -> int:
    """FLOPs of ``a @ b`` with NumPy matmul semantics: 2 * batch * M * K * N.

    1-D operands: a (K,) is treated as (1, K), b (K,) as (K, 1). Batch dims broadcast.
    EXAMPLE: matmul_flops((128, 784), (784, 256)) -> 51_380_224
    HINT: np.broadcast_shapes(a2[:-2], b2[:-2]) gives the batch shape; np.prod(()) is 1.
    """
    a2 = (1,) + tuple(a_shape) if len(a_shape) == 1 else tuple(a_shape)
    b2 = tuple(b_shape) + (1,) if len(b_shape) == 1 else tuple(b_shape)
    if a2[-1] != b2[-2]:
        raise ValueError(f"Shape mismatch: {tuple(a_shape)} @ {tuple(b_shape)}: inner dimensions "
                         f"{a2[-1]} and {b2[-2]} differ")
    ### BEGIN SOLUTION
    M, K, N = a2[-2], a2[-1], b2[-1]
    batch = int(np.prod(np.broadcast_shapes(a2[:-2], b2[:-2]), dtype=np.int64))
    return 2 * batch * M * K * N
    ### END SOLUTION


def conv2d_flops(w_shape, out_shape) -> int:
    """FLOPs of a convolution with weight (O, C, KH, KW) producing out (N, O, H', W').

    EXAMPLE: conv2d_flops((32, 32, 3, 3), (128, 32, 32, 32)) -> 2_415_919_104
    """
    ### BEGIN SOLUTION
    _, C, KH, KW = w_shape
    return 2 * int(np.prod(out_shape, dtype=np.int64)) * C * KH * KW
    ### END SOLUTION


def attention_flops(q_shape, k_shape, v_shape) -> int:
    """FLOPs of softmax(q k^T) v: the two products, q (..., Tq, d), k (..., Tk, d), v (..., Tk, dv).

    EXAMPLE: attention_flops((12, 4, 64, 32), (12, 4, 64, 32), (12, 4, 64, 32)) -> 25_165_824
    """
    ### BEGIN SOLUTION
    *lead, Tq, d = q_shape
    Tk, dv = k_shape[-2], v_shape[-1]
    batch = int(np.prod(lead, dtype=np.int64))
    return 2 * batch * Tq * Tk * d + 2 * batch * Tq * Tk * dv
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-flop-rules", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_flop_rules():
    """The worked numbers of the table above, batch broadcasting and 1-D operands."""
    assert matmul_flops((128, 784), (784, 256)) == 51_380_224, matmul_flops((128, 784), (784, 256))
    assert matmul_flops((4, 3, 5), (5, 2)) == 2 * 4 * 3 * 5 * 2, "batch dims of a multiply the count"
    assert matmul_flops((2, 1, 3, 5), (4, 5, 6)) == 2 * 8 * 3 * 5 * 6, "batch dims broadcast"
    assert matmul_flops((5,), (5, 3)) == 30 and matmul_flops((3, 5), (5,)) == 30, "1-D operands"
    assert conv2d_flops((32, 32, 3, 3), (128, 32, 32, 32)) == 2 * 1_207_959_552
    assert attention_flops((12, 4, 64, 32), (12, 4, 64, 32), (12, 4, 64, 32)) == 25_165_824
    try:
        matmul_flops((3, 4), (5, 2))
    except ValueError as e:
        assert "4" in str(e) and "5" in str(e), f"the error should name both sizes: {e}"
    else:
        raise AssertionError("mismatched inner dimensions must raise ValueError")
    ### BEGIN HIDDEN TESTS
    assert attention_flops((2, 7, 3), (2, 9, 3), (2, 9, 5)) == 2 * 2 * 7 * 9 * 3 + 2 * 2 * 7 * 9 * 5
    assert conv2d_flops((8, 3, 5, 5), (2, 8, 28, 28)) == 2 * 2 * 8 * 28 * 28 * 75
    assert isinstance(matmul_flops((2, 3), (3, 4)), int)
    ### END HIDDEN TESTS


test_unit_flop_rules()

# %% [markdown]
# ## 2. Counting at the level of operations
#
# Hook-based counters (thop, ptflops) attach to *layers*: they know a `Linear` or a `Conv2d`
# and compute its FLOPs from its shapes. Anything done *between* layers, such as the
# `q @ k^T` inside an attention function, is invisible to them. We count lower down, where
# every computation of your framework passes: the `forward` of an autograd `Function`.
#
# ```
#   model(x)                         Module.__call__   --> "which layer am I in?"  (a stack)
#     Linear.forward                    |
#       x @ W  -> MatMul.apply            MatMul.forward     --> FLOPs from the array shapes,
#       + b    -> Add.apply               Add.forward            time, bytes in and out
#     scaled_dot_product_attention      ScaledDotProductAttention.forward   (no layer of its own:
#                                                                            counted anyway)
#   loss.backward()                  MatMul.backward ...  --> backward time, charged to the
#                                                             layer that ran the forward
# ```
#
# For the duration of a measurement, `instrument` replaces the `forward` and `backward` of
# every `Function` class (and `Module.__call__`) with a timed wrapper, and puts the originals
# back afterwards, even if the model raises. This is provided. Backward FLOPs follow from the
# forward: each input gradient of a product is one product of the same size, so a matmul
# whose two inputs both need gradients costs 2x its forward FLOPs in backward (PyTorch's
# counter does the same). Ops other than the products (adds, exp, ReLU...) are reported
# separately, as elements processed, not mixed into the FLOP total.

# %% nbgrader={"grade": false, "grade_id": "instrument", "locked": true, "schema_version": 3, "solution": false}
#| export
PRODUCT_OPS = ("MatMul", "Conv2dFunction", "ScaledDotProductAttention")
# pure data movement: no arithmetic at all
MOVEMENT_OPS = ("Reshape", "Transpose", "Permute", "GetItem", "EmbeddingLookup")


def op_flops(name, arrays, out) -> int:
    """Forward FLOPs of one op call, from its input arrays and output (0 for non-product ops)."""
    if name == "MatMul":
        return matmul_flops(arrays[0].shape, arrays[1].shape)
    if name == "Conv2dFunction":
        return conv2d_flops(arrays[1].shape, out.shape)
    if name == "ScaledDotProductAttention":
        return attention_flops(arrays[0].shape, arrays[1].shape, arrays[2].shape)
    return 0


def backward_flops(name, forward_flops, needs_input_grad) -> int:
    """Backward FLOPs: one product of the forward's size per input gradient of a product."""
    needs = tuple(needs_input_grad) or (True, True)
    if name == "MatMul":
        return forward_flops * sum(bool(n) for n in needs[:2])
    if name == "Conv2dFunction":
        return forward_flops * sum(bool(n) for n in needs[:2])
    if name == "ScaledDotProductAttention":
        return 2 * forward_flops if any(needs) else 0
    return 0


def function_classes() -> list:
    """Every subclass of Function defined so far (recursively), each once."""
    seen, stack = [], list(Function.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls not in seen:
            seen.append(cls)
            stack.extend(cls.__subclasses__())
    return seen


def _nbytes(a) -> int:
    return a.nbytes if isinstance(a, np.ndarray) else 0


class OpEvent:
    """One call of one op: name, phase ("forward"/"backward"), the layer it ran in, and costs:
    wall and CPU seconds, FLOPs (products only), elements processed (the largest of inputs
    and output), bytes in and out, and the peak bytes allocated inside (memory rounds)."""
    __slots__ = ("op", "phase", "module", "wall", "cpu", "flops", "elements", "in_bytes",
                 "out_bytes", "peak")

    def __init__(self, op, phase, module, wall, cpu, flops, elements, in_bytes, out_bytes, peak):
        self.op, self.phase, self.module = op, phase, module
        self.wall, self.cpu, self.flops, self.elements = wall, cpu, flops, elements
        self.in_bytes, self.out_bytes, self.peak = in_bytes, out_bytes, peak


def module_names(model) -> dict:
    """id(module) -> name for every Module below ``model``: the model itself is named by its
    class ("GPT"), the others by their dotted path ("blocks.0.attn.q_proj")."""
    names = {}

    def visit(mod, path):
        if id(mod) in names:
            return
        names[id(mod)] = path or type(mod).__name__
        for child_name, child in mod.named_children():
            visit(child, f"{path}.{child_name}" if path else child_name)

    if isinstance(model, Module):
        visit(model, "")
    return names


class instrument:
    """While active: every Function's forward/backward and every Module call report to callbacks.

    on_op(OpEvent) for each op call; on_module(module, name, wall, cpu, output) for each layer
    call (inclusive of what runs inside). memory=True also measures each op's peak allocation
    with tracemalloc (which must then be tracing).
    """

    def __init__(self, on_op, on_module=None, names=None, memory=False):
        self.on_op, self.on_module = on_op, on_module
        self.names = names or {}
        self.memory = memory
        self.stack = []
        self._saved = []

    def _wrap(self, cls, meth):
        orig = cls.__dict__[meth]
        inst = self
        memory = self.memory

        if meth == "forward":
            def wrapped(fn, *arrays, **kwargs):
                module = inst.stack[-1] if inst.stack else ""
                if memory:
                    before = tracemalloc.get_traced_memory()[0]
                    tracemalloc.reset_peak()
                c0, t0 = time.process_time(), time.perf_counter()
                out = orig(fn, *arrays, **kwargs)
                t1, c1 = time.perf_counter(), time.process_time()
                peak = tracemalloc.get_traced_memory()[1] - before if memory else 0
                name = type(fn).__name__
                flops = op_flops(name, arrays, out)
                fn._prof = (module, flops)          # read back by the backward wrapper
                elements = max([int(np.size(out))] + [a.size for a in arrays if isinstance(a, np.ndarray)])
                inst.on_op(OpEvent(name, "forward", module, t1 - t0, c1 - c0, flops, elements,
                                   sum(_nbytes(a) for a in arrays), _nbytes(out), peak))
                return out
        else:
            def wrapped(fn, grad_out):
                if memory:
                    before = tracemalloc.get_traced_memory()[0]
                    tracemalloc.reset_peak()
                c0, t0 = time.process_time(), time.perf_counter()
                grads = orig(fn, grad_out)
                t1, c1 = time.perf_counter(), time.process_time()
                peak = tracemalloc.get_traced_memory()[1] - before if memory else 0
                name = type(fn).__name__
                module, fwd = getattr(fn, "_prof", ("", 0))
                gs = grads if isinstance(grads, (tuple, list)) else (grads,)
                inst.on_op(OpEvent(name, "backward", module, t1 - t0, c1 - c0,
                                   backward_flops(name, fwd, getattr(fn, "needs_input_grad", ())),
                                   int(np.size(grad_out)), _nbytes(grad_out),
                                   sum(_nbytes(g) for g in gs), peak))
                return grads

        wrapped.__wrapped__ = orig
        setattr(cls, meth, wrapped)
        self._saved.append((cls, meth, orig))

    def __enter__(self):
        try:
            for cls in function_classes():
                for meth in ("forward", "backward"):
                    if meth in cls.__dict__:
                        self._wrap(cls, meth)
            orig_call = Module.__dict__["__call__"]
            inst = self

            def call(mod, *args, **kwargs):
                name = inst.names.get(id(mod), type(mod).__name__)
                inst.stack.append(name)
                c0, t0 = time.process_time(), time.perf_counter()
                try:
                    out = orig_call(mod, *args, **kwargs)
                finally:
                    inst.stack.pop()
                t1, c1 = time.perf_counter(), time.process_time()
                if inst.on_module is not None:
                    inst.on_module(mod, name, t1 - t0, c1 - c0, out)
                return out

            Module.__call__ = call
            self._saved.append((Module, "__call__", orig_call))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        for cls, meth, orig in reversed(self._saved):
            setattr(cls, meth, orig)
        self._saved.clear()
        self.stack.clear()
        return False


# %% [markdown]
# Now write `count_flops(model, *inputs)`: run the model once, without building a graph,
# inside `instrument`, and add up the events. The result names FLOPs and MACs separately and
# keeps the per-op breakdown and the "other ops" (element counts) apart.

# %% nbgrader={"grade": false, "grade_id": "count-flops", "locked": false, "schema_version": 3, "solution": true}
#| export
class FlopCount:
    """Result of count_flops: .flops (products only, as PyTorch counts), .macs = flops // 2,
    .by_op {op: flops}, .other {op: output elements} for every non-product op."""

    def __init__(self, flops, by_op, other):
        self.flops, self.macs = int(flops), int(flops) // 2
        self.by_op, self.other = dict(by_op), dict(other)

    def __repr__(self):
        return f"FlopCount(flops={self.flops:,}, macs={self.macs:,}, by_op={self.by_op})"


def count_flops(model, *inputs) -> FlopCount:
    """Forward FLOPs of ``model(*inputs)`` counted at the op level (no graph is built).

    model: a Module or any callable. Returns a FlopCount.
    HINT: collect events with `with no_grad(), instrument(events.append):` around model(*inputs);
          product ops (e.name in PRODUCT_OPS) go into by_op, the rest into other (e.elements).
    """
    if not callable(model):
        raise TypeError(f"count_flops needs a Module or a callable, got {type(model).__name__}")
    events = []
    ### BEGIN SOLUTION
    with no_grad(), instrument(events.append):
        model(*inputs)
    by_op, other = {}, {}
    for e in events:
        if e.op in PRODUCT_OPS:
            by_op[e.op] = by_op.get(e.op, 0) + e.flops
        else:
            other[e.op] = other.get(e.op, 0) + e.elements
    return FlopCount(sum(by_op.values()), by_op, other)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-count-flops", "locked": true, "points": 2, "schema_version": 3, "solution": false}
from tinytorch.core.activations import ReLU
from tinytorch.core.attention import MultiHeadAttention, causal_mask, scaled_dot_product_attention
from tinytorch.core.layers import Linear, Sequential


def test_unit_count_flops():
    """An MLP by hand; functional attention counted; instrumentation removed afterwards."""
    mlp = Sequential(Linear(784, 256, seed=0), ReLU(), Linear(256, 10, seed=1))
    x = Tensor(np.zeros((128, 784), np.float32))
    fc = count_flops(mlp, x)
    want = 2 * 128 * (784 * 256 + 256 * 10)
    assert fc.flops == want, f"expected {want:,} FLOPs, got {fc.flops:,}"
    assert fc.macs == want // 2, f"MACs are half the FLOPs: expected {want // 2:,}, got {fc.macs:,}"
    assert fc.by_op == {"MatMul": want}, fc.by_op
    assert fc.other.get("Add") == 128 * 266, f"the bias adds are 'other' ops: {fc.other}"
    # attention used as a plain function, inside no layer: still counted
    q = Tensor(np.zeros((2, 4, 16, 8), np.float32))
    fa = count_flops(lambda t: scaled_dot_product_attention(t, t, t, mask=causal_mask(16)), q)
    assert fa.flops == attention_flops(q.shape, q.shape, q.shape), fa
    assert MultiHeadAttention.__call__ is Module.__call__, "Module.__call__ was not restored"
    from tinytorch.core.autograd import MatMul
    assert not hasattr(MatMul.forward, "__wrapped__"), "MatMul.forward was not restored"
    ### BEGIN HIDDEN TESTS
    mha = MultiHeadAttention(16, 4, seed=0)
    xm = Tensor(np.zeros((3, 10, 16), np.float32))
    fm = count_flops(lambda t: mha(t, mask=causal_mask(10)), xm)
    assert fm.flops == 4 * 2 * 30 * 16 * 16 + attention_flops((3, 4, 10, 4), (3, 4, 10, 4), (3, 4, 10, 4))
    try:
        count_flops(lambda t: 1 / 0, x)
    except ZeroDivisionError:
        pass
    assert not hasattr(MatMul.forward, "__wrapped__"), "an exception must not leave wrappers behind"
    ### END HIDDEN TESTS


test_unit_count_flops()

# %% [markdown]
# (PyTorch's own `FlopCounterMode`, in version 2.13 on a CPU, reports **0** FLOPs for
# `F.scaled_dot_product_attention`: the fused CPU kernel has no FLOP formula registered. The
# course's tests compare our counts with PyTorch on an MLP, the CIFAR CNN and a GPT whose PyTorch
# twin writes attention as two explicit matmuls, and agree exactly.)
#
# ## 3. Memory: what `tracemalloc` sees
#
# NumPy reports every array buffer it allocates to Python's `tracemalloc`, so the standard
# library measures the memory of your framework exactly: the *peak* (the largest amount alive at
# any moment: what decides whether a batch fits) and what is *retained* afterwards (the output
# and, when gradients are on, the autograd graph with its saved activations).
#
# ```
#   bytes alive
#     ^          peak  ..........  +---+
#     |                      +-----+   |   temporaries of the forward
#     |               +------+         +------+ retained: output + saved activations
#     |  start  -----+                        |
#     +------------------------------------------------> time
# ```

# %% nbgrader={"grade": false, "grade_id": "profile-memory", "locked": false, "schema_version": 3, "solution": true}
#| export
def profile_memory(model_or_fn, *inputs) -> dict:
    """Run ``model_or_fn(*inputs)`` under tracemalloc; report bytes.

    Returns {"peak_bytes": largest allocation above the start during the call,
             "retained_bytes": allocated at the end minus at the start (output and graph),
             "param_bytes": bytes of the parameters (0 for a plain function),
             "output_bytes": bytes of the output's data}.
    If tracemalloc is already tracing, it is left running; otherwise it is stopped after.
    HINT: tracemalloc.start() / get_traced_memory() -> (current, peak) / reset_peak() / stop()
    """
    if not callable(model_or_fn):
        raise TypeError(f"profile_memory needs a Module or a callable, got {type(model_or_fn).__name__}")
    was_tracing = tracemalloc.is_tracing()
    param_bytes = sum(p.data.nbytes for p in model_or_fn.parameters()) if isinstance(model_or_fn, Module) else 0
    ### BEGIN SOLUTION
    if not was_tracing:
        tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = model_or_fn(*inputs)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    data = out.data if isinstance(out, Tensor) else out
    return {"peak_bytes": peak - start, "retained_bytes": current - start,
            "param_bytes": param_bytes, "output_bytes": _nbytes(data)}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-profile-memory", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_profile_memory():
    """A known allocation is seen; a graph retains more than no_grad; tracing is left as found."""
    m = profile_memory(lambda n: np.ones(n, np.float32), 1_000_000)
    assert 4_000_000 <= m["peak_bytes"] < 4_200_000, m
    assert m["output_bytes"] == 4_000_000 and m["param_bytes"] == 0, m
    assert not tracemalloc.is_tracing(), "tracemalloc must be stopped when it was not running"
    lin = Linear(256, 256, seed=0)
    x = Tensor(np.ones((64, 256), np.float32))
    m = profile_memory(lin, x)
    assert m["param_bytes"] == (256 * 256 + 256) * 4, m
    assert m["retained_bytes"] >= 64 * 256 * 4, f"the output alone is 65,536 bytes: {m}"

    def temporary(n):                                   # 4 MB while it runs, a scalar left after
        return float(np.ones(n, np.float32).sum())
    m = profile_memory(temporary, 1_000_000)
    assert m["peak_bytes"] >= 4_000_000 and m["retained_bytes"] < 100_000, f"peak is not what stays: {m}"
    tracemalloc.start()
    held = np.ones(1_000_000, np.float32)               # 4 MB allocated before the call
    m = profile_memory(lambda: np.zeros(10))
    tracemalloc.stop()
    assert m["peak_bytes"] < 1_000_000, f"only what the call allocates counts, not the 4 MB before it: {m}"
    del held
    ### BEGIN HIDDEN TESTS
    tracemalloc.start()
    profile_memory(lambda: np.zeros(10))
    assert tracemalloc.is_tracing(), "tracing that was on must stay on"
    tracemalloc.stop()
    try:
        profile_memory(42)
    except TypeError:
        pass
    else:
        raise AssertionError("a non-callable must raise TypeError")
    ### END HIDDEN TESTS


test_unit_profile_memory()

# %% [markdown]
# ## 4. The Profiler: repeats, statistics, a bottleneck report
#
# One timing is one sample of a noisy process: the first call pays for memory first touched
# and caches filled (warm-up), and other programs on the machine steal the CPU at random.
# So the profiler runs the step `warmup` times unrecorded, then `repeats` times recorded, and
# reports for every op the **median** over the repeats with its **spread** (min to max),
# two clocks (wall time: what you wait for; CPU time: what your process computed; CPU > wall
# means BLAS used several threads, wall > CPU means you waited for the machine), and the share
# of the step's time. (`tito module test` runs your notebook under a CPU-time limit; Linux then
# updates a process's CPU time only at scheduler ticks, so the CPU column is coarse there. Wall
# time is not affected.) Write the statistics helper first.
#
# ```
#   repeats  [4.1, 3.9, 4.0, 9.7, 4.2] ms     (9.7: the machine was busy)
#   mean     5.18 ms   <- dragged by one outlier
#   median   4.10 ms   spread 3.9 .. 9.7
# ```

# %% nbgrader={"grade": false, "grade_id": "summarize", "locked": false, "schema_version": 3, "solution": true}
#| export
def summarize(values) -> dict:
    """{"median", "min", "max", "n"} of a non-empty sequence of numbers."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("summarize needs at least one value, got none")
    ### BEGIN SOLUTION
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-summarize", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_summarize():
    s = summarize([4.1, 3.9, 4.0, 9.7, 4.2])
    assert s["median"] == 4.1 and s["min"] == 3.9 and s["max"] == 9.7 and s["n"] == 5, s
    assert summarize([1, 2, 3, 4])["median"] == 2.5, "even count: the mean of the middle two"
    try:
        summarize([])
    except ValueError:
        pass
    else:
        raise AssertionError("an empty list must raise ValueError")
    ### BEGIN HIDDEN TESTS
    assert summarize([7])["median"] == 7.0
    ### END HIDDEN TESTS


test_unit_summarize()

# %% [markdown]
# The `Profiler` (provided) puts everything together. As a context manager it records one run;
# `Profiler(model).run(fn, warmup=1, repeats=5)` records several and also times `fn` *without*
# instrumentation in between, so that it can state its own overhead. Every number of the
# report is aggregated per round first (all calls of an op in one step added up), then the
# median is taken over rounds.
#
# ```
#   op                     phase     calls  wall ms  spread   CPU ms  share   GFLOP   MACs ...
#   Conv2dFunction         backward      3     4.10  3.9-4.4    4.09  41.2%   0.113   ...
#   Conv2dFunction         forward       3     1.70  ...
# ```

# %% nbgrader={"grade": false, "grade_id": "profiler", "locked": true, "schema_version": 3, "solution": false}
#| export
def _fmt_bytes(n) -> str:
    n = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


class Profiler:
    """Per-op and per-Module profile of a step, forward and backward separately.

    with Profiler(model) as prof:          one recorded run
        loss = step()
    prof = Profiler(model).run(step, warmup=1, repeats=5)      several runs + overhead
    print(prof.report())
    """

    def __init__(self, model=None, memory=True):
        self.model = model
        self.memory = bool(memory)
        self.names = module_names(model)
        self.rounds = []          # one dict per recorded run
        self.plain_times = []     # wall times of runs without instrumentation
        self.plain_cpu = []       # their CPU times
        self.peak_bytes = 0
        self._inst = None

    # ---- recording ---------------------------------------------------------------------
    def _new_round(self):
        r = {"ops": {}, "modules": {}, "wall": 0.0, "cpu": 0.0, "events": 0}
        self.rounds.append(r)
        return r

    def _on_op(self, e):
        r = self.rounds[-1]
        r["events"] += 1
        site = (e.module, e.op, e.phase)
        seen = r.setdefault("seen", {})
        seen[site] = seen.get(site, -1) + 1          # the n-th call of this op in this layer
        key = site + (seen[site],)
        s = r["ops"].get(key)
        if s is None:
            s = r["ops"][key] = {"calls": 0, "wall": 0.0, "cpu": 0.0, "flops": 0, "elements": 0,
                                 "in_bytes": 0, "out_bytes": 0, "peak": 0}
        s["calls"] += 1
        s["wall"] += e.wall
        s["cpu"] += e.cpu
        s["flops"] += e.flops
        s["elements"] += e.elements
        s["in_bytes"] += e.in_bytes
        s["out_bytes"] += e.out_bytes
        s["peak"] = max(s["peak"], e.peak)

    def _on_module(self, mod, name, wall, cpu, out):
        r = self.rounds[-1]
        r["events"] += 1
        s = r["modules"].get(name)
        if s is None:
            params = sum(p.data.nbytes for p in mod.parameters())
            s = r["modules"][name] = {"type": type(mod).__name__, "calls": 0, "wall": 0.0,
                                      "cpu": 0.0, "param_bytes": params, "act_bytes": 0}
        s["calls"] += 1
        s["wall"] += wall
        s["cpu"] += cpu
        s["act_bytes"] += _nbytes(out.data if isinstance(out, Tensor) else out)

    def __enter__(self):
        self._record_start(self.memory)
        return self

    def _record_start(self, memory):
        self._round = self._new_round()
        self._tracing_before = tracemalloc.is_tracing()
        if memory and not self._tracing_before:
            tracemalloc.start()
        if memory:
            self._mem0 = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
        self._inst = instrument(self._on_op, self._on_module, self.names, memory=memory)
        self._inst.__enter__()
        self._memory_round = memory
        self._t0, self._c0 = time.perf_counter(), time.process_time()

    def __exit__(self, *exc):
        self._round["wall"] = time.perf_counter() - self._t0
        self._round["cpu"] = time.process_time() - self._c0
        self._inst.__exit__(*exc)
        if self._memory_round:
            self.peak_bytes = max(self.peak_bytes, tracemalloc.get_traced_memory()[1] - self._mem0)
            self._round["memory"] = True
            if not self._tracing_before:
                tracemalloc.stop()
        return False

    def run(self, fn, *args, warmup=1, repeats=5):
        """warm up, then `repeats` timed rounds (plain and instrumented alternate), then one
        memory round (tracemalloc slows allocation, so it never touches the timed rounds)."""
        if repeats < 1 or warmup < 0:
            raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
        for _ in range(warmup):
            fn(*args)
        for _ in range(repeats):
            c0, t0 = time.process_time(), time.perf_counter()
            fn(*args)
            self.plain_times.append(time.perf_counter() - t0)
            self.plain_cpu.append(time.process_time() - c0)
            self._record_start(False)
            try:
                fn(*args)
            finally:
                self.__exit__(None, None, None)
        if self.memory:
            self._record_start(True)
            try:
                fn(*args)
            finally:
                self.__exit__(None, None, None)
        return self

    # ---- aggregation -------------------------------------------------------------------
    def _timed_rounds(self):
        timed = [r for r in self.rounds if not r.get("memory")]
        return timed or self.rounds

    def step_time(self, clock="wall") -> dict:
        return summarize([r[clock] for r in self._timed_rounds()])

    def overhead(self, clock="wall"):
        """(instrumented median / plain median - 1, seconds per recorded event), or None.
        clock="cpu" compares CPU times: steadier when other programs share the machine."""
        if not self.plain_times:
            return None
        rounds = self._timed_rounds()
        plain = statistics.median(self.plain_times if clock == "wall" else self.plain_cpu)
        inst = self.step_time(clock)["median"]
        events = statistics.median([r["events"] for r in rounds])
        return inst / plain - 1.0, (inst - plain) / max(events, 1)

    def _stats(self, table, key_of):
        """Per key: each round's values added up (peak: the max), then the median over rounds;
        wall and cpu become summaries (median, min, max)."""
        rounds = self._timed_rounds()
        per = {}
        for i, r in enumerate(rounds):
            for key, s in r[table].items():
                rows = per.setdefault(key_of(key), [None] * len(rounds))
                if rows[i] is None:
                    rows[i] = dict(s)
                    continue
                for f, v in s.items():
                    if isinstance(v, (int, float)):
                        rows[i][f] = max(rows[i][f], v) if f == "peak" else rows[i][f] + v
        out = {}
        for k, rows in per.items():
            present = [row for row in rows if row is not None]
            merged = dict(present[0])
            for f, v in present[0].items():
                if f in ("wall", "cpu"):
                    merged[f] = summarize([row[f] if row else 0.0 for row in rows])
                elif isinstance(v, (int, float)):
                    merged[f] = statistics.median(row[f] for row in present)
            out[k] = merged
        for r in self.rounds:                       # peak memory comes from the memory round
            if r.get("memory"):
                for key, s in r[table].items():
                    k = key_of(key)
                    if k in out and "peak" in s:
                        out[k]["peak"] = max(out[k].get("peak", 0), s["peak"])
        return out

    def op_table(self) -> list:
        """Rows per (op, phase), sorted by median wall time, with their share of the step."""
        stats = self._stats("ops", lambda key: (key[1], key[2]))
        total = self.step_time()["median"]
        rows = []
        for (op, phase), s in stats.items():
            rows.append({"op": op, "phase": phase, "calls": int(s["calls"]), "wall": s["wall"],
                         "cpu": s["cpu"], "share": s["wall"]["median"] / total if total else 0.0,
                         "flops": int(s["flops"]), "macs": int(s["flops"]) // 2,
                         "elements": int(s["elements"]),
                         "act_bytes": int(s["out_bytes"]) if phase == "forward" else 0,
                         "bytes": int(s["in_bytes"] + s["out_bytes"]), "peak": int(s.get("peak", 0))})
        return sorted(rows, key=lambda r: -r["wall"]["median"])

    def site_table(self) -> list:
        """Rows per (layer, op, phase): where in the model each op ran (for the roofline)."""
        stats = self._stats("ops", lambda key: key)
        shared = {}
        for module, op, phase, _ in stats:
            shared[(module, op, phase)] = shared.get((module, op, phase), 0) + 1
        rows = []
        for (module, op, phase, n), s in stats.items():
            name = module or "(top level)"
            if shared[(module, op, phase)] > 1:
                name += f" [{n}]"                    # several calls in one layer: one site each
            rows.append({"module": name, "op": op, "phase": phase,
                         "calls": int(s["calls"]), "wall": s["wall"]["median"],
                         "flops": int(s["flops"]), "elements": int(s["elements"]),
                         "bytes": int(s["in_bytes"] + s["out_bytes"])})
        return sorted(rows, key=lambda r: -r["wall"])

    def module_table(self) -> list:
        """Rows per Module: forward time (inclusive), backward time of the ops it ran, FLOPs."""
        mods = self._stats("modules", lambda key: key)
        ops = self._stats("ops", lambda key: key)
        root = self.names.get(id(self.model))
        total = self.step_time()["median"]
        rows = []
        for name, s in mods.items():
            inside = [(k, v) for k, v in ops.items()
                      if name == root or k[0] == name or k[0].startswith(name + ".")]
            bwd = sum(v["wall"]["median"] for k, v in inside if k[2] == "backward")
            bwd_cpu = sum(v["cpu"]["median"] for k, v in inside if k[2] == "backward")
            ff = sum(v["flops"] for k, v in inside if k[2] == "forward")
            fb = sum(v["flops"] for k, v in inside if k[2] == "backward")
            rows.append({"module": name, "type": s["type"], "calls": int(s["calls"]),
                         "forward": s["wall"]["median"], "backward": bwd,
                         "forward_cpu": s["cpu"]["median"], "backward_cpu": bwd_cpu,
                         "share": (s["wall"]["median"] + bwd) / total if total else 0.0,
                         "flops_fwd": int(ff), "flops_bwd": int(fb), "macs_fwd": int(ff) // 2,
                         "param_bytes": int(s["param_bytes"]), "act_bytes": int(s["act_bytes"])})
        return sorted(rows, key=lambda r: -(r["forward"] + r["backward"]))

    def report(self, top=10) -> str:
        """The bottleneck report: step time, overhead, peak memory, top ops, top layers."""
        st = self.step_time()
        lines = [f"step: median {st['median'] * 1e3:.2f} ms over {st['n']} run(s) "
                 f"(spread {st['min'] * 1e3:.2f}-{st['max'] * 1e3:.2f} ms, instrumented)"]
        ov = self.overhead()
        if ov is not None:
            lines.append(f"profiler overhead: {ov[0] * 100:+.1f}% of the step, "
                         f"{ov[1] * 1e6:.1f} us per recorded call")
        if self.peak_bytes:
            lines.append(f"peak memory during the step: {_fmt_bytes(self.peak_bytes)} (tracemalloc)")
        lines += ["", f"{'op':<26} {'phase':<8} {'calls':>5} {'wall ms':>8} {'spread ms':>13} "
                      f"{'CPU ms':>7} {'share':>6} {'GFLOP':>8} {'GMAC':>7} {'act':>9} {'peak':>9}"]
        for r in self.op_table()[:top]:
            w = r["wall"]
            lines.append(f"{r['op']:<26} {r['phase']:<8} {r['calls']:>5} {w['median'] * 1e3:>8.2f} "
                         f"{w['min'] * 1e3:>6.2f}-{w['max'] * 1e3:<6.2f} {r['cpu']['median'] * 1e3:>7.2f} "
                         f"{r['share'] * 100:>5.1f}% {r['flops'] / 1e9:>8.4f} {r['macs'] / 1e9:>7.4f} "
                         f"{_fmt_bytes(r['act_bytes']):>9} {_fmt_bytes(r['peak']):>9}")
        mods = self.module_table()
        if mods:
            lines += ["", f"{'layer':<24} {'type':<20} {'calls':>5} {'fwd ms':>7} {'bwd ms':>7} {'CPU f+b':>7} "
                          f"{'share':>6} {'GFLOP fwd':>9} {'params':>9} {'act':>9}"]
            for r in mods[:top]:
                lines.append(f"{r['module'][:24]:<24} {r['type'][:20]:<20} {r['calls']:>5} {r['forward'] * 1e3:>7.2f} "
                             f"{r['backward'] * 1e3:>7.2f} {(r['forward_cpu'] + r['backward_cpu']) * 1e3:>7.2f} "
                             f"{r['share'] * 100:>5.1f}% "
                             f"{r['flops_fwd'] / 1e9:>9.4f} {_fmt_bytes(r['param_bytes']):>9} "
                             f"{_fmt_bytes(r['act_bytes']):>9}")
        return "\n".join(lines)


# %% [markdown]
# Profile two small models built from *your* layers, the same architectures as milestone 4
# (conv 3x3, BatchNorm, ReLU, max-pool; here fewer channels and 16x16 images) and milestone 5
# (a GPT; here 2 layers of 32 dims), one training step each.

# %% nbgrader={"grade": true, "grade_id": "test-profiler", "locked": true, "points": 2, "schema_version": 3, "solution": false}
from tinytorch.core.losses import CrossEntropyLoss
from tinytorch.core.optimizers import SGD
from tinytorch.core.spatial import BatchNorm2d, Conv2d, Flatten, MaxPool2d
from tinytorch.models.transformer import GPT


def small_cnn(seed=0, size=16):
    """Milestone 4's architecture, smaller: for (B, 3, size, size) images (size divisible by 8)."""
    def block(cin, cout, s):
        return [Conv2d(cin, cout, 3, padding=1, bias=False, seed=s), BatchNorm2d(cout), ReLU()]
    return Sequential(*block(3, 16, seed), MaxPool2d(2),                         # (B, 16, size/2, size/2)
                      *block(16, 32, seed + 1), MaxPool2d(2),                    # (B, 32, size/4, size/4)
                      *block(32, 32, seed + 2), MaxPool2d(2),                    # (B, 32, size/8, size/8)
                      Flatten(), Linear(32 * (size // 8) ** 2, 10, seed=seed + 3))  # (B, 10)


def train_step_fn(model, x, y, lr=0.01):
    """A function running one SGD step of ``model`` on (x, y): forward, loss, backward, update."""
    opt, loss_fn = SGD(model.parameters(), lr=lr), CrossEntropyLoss()

    def step():
        logits = model(x)
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss
    return step


_rng = np.random.default_rng(0)
cnn = small_cnn()
cnn_x = Tensor(_rng.standard_normal((16, 3, 16, 16)).astype(np.float32))    # (B, 3, 16, 16)
cnn_y = Tensor(_rng.integers(0, 10, 16))
cnn_step = train_step_fn(cnn, cnn_x, cnn_y)
gpt = GPT(vocab_size=32, block_size=32, n_layer=2, n_head=2, n_embd=32, seed=0)
gpt_x = _rng.integers(0, 32, (4, 32))                                        # (B, T) token ids
gpt_y = Tensor(_rng.integers(0, 32, (4, 32)).reshape(-1))
gpt_step = train_step_fn(gpt, gpt_x, gpt_y)


def test_unit_profiler():
    """Op and layer tables of a real step agree with count_flops and with each other."""
    prof = Profiler(cnn).run(cnn_step, warmup=1, repeats=2)
    ops = {(r["op"], r["phase"]): r for r in prof.op_table()}
    fwd = count_flops(cnn, cnn_x)
    got = sum(r["flops"] for (op, ph), r in ops.items() if ph == "forward")
    assert got == fwd.flops, f"forward FLOPs in the profile {got:,} != count_flops {fwd.flops:,}"
    assert ops[("Conv2dFunction", "forward")]["calls"] == 3, ops[("Conv2dFunction", "forward")]
    assert ("Conv2dFunction", "backward") in ops, "backward ops must be recorded separately"
    # the first conv's input needs no gradient: its backward is one product, the others two
    conv_b = ops[("Conv2dFunction", "backward")]["flops"]
    conv_f = ops[("Conv2dFunction", "forward")]["flops"]
    assert conv_f < conv_b < 2 * conv_f, (conv_f, conv_b)
    shares = sum(r["share"] for r in prof.op_table())
    assert 0.05 < shares <= 1.05, f"op times must be a part of the step, got total share {shares:.2f}"
    layers = {r["module"]: r for r in prof.module_table()}
    assert layers["layers.0"]["type"] == "Conv2d" and layers["layers.0"]["param_bytes"] == 16 * 3 * 9 * 4
    assert layers["layers.0"]["act_bytes"] == 16 * 16 * 16 * 16 * 4, layers["layers.0"]
    assert layers["layers.0"]["backward"] > 0, "a layer's backward time comes from its ops"
    assert prof.peak_bytes > 0 and prof.overhead() is not None
    assert "share" in prof.report()
    ### BEGIN HIDDEN TESTS
    with Profiler(gpt, memory=False) as p2:
        gpt_step()
    ops2 = {(r["op"], r["phase"]) for r in p2.op_table()}
    assert ("ScaledDotProductAttention", "backward") in ops2, ops2
    mods = {r["module"] for r in p2.module_table()}
    assert "blocks.0.attn.q_proj" in mods, sorted(mods)
    ### END HIDDEN TESTS


test_unit_profiler()

# %% [markdown]
# ### Bottleneck reports of your two models
#
# Read the tables: which op dominates, how its forward compares with its backward, and how much
# of the time goes to ops that do no arithmetic at all.

# %%
cnn_prof = Profiler(cnn).run(cnn_step, warmup=1, repeats=5)
print("small CNN, one SGD step at batch 16 (3x16x16 images)\n")
print(cnn_prof.report(top=8))

# %%
gpt_prof = Profiler(gpt).run(gpt_step, warmup=1, repeats=5)
print("small GPT (2 layers, 32 dims, T=32), one SGD step at batch 4\n")
print(gpt_prof.report(top=8))

# %% [markdown]
# The full-size milestone models (the 160k-parameter CIFAR CNN at batch 128 and the
# Shakespeare GPT) are profiled by `python benchmarks/profile_models.py`, which writes these
# tables to `benchmarks/results/profile_models.md` and draws the bar charts below (in the
# repository; a learner's workspace has only the notebooks):
#
# ![CNN bottlenecks](../../benchmarks/results/bottlenecks_cnn.png)
# ![GPT bottlenecks](../../benchmarks/results/bottlenecks_gpt.png)
#
# ## 5. Amdahl's law: what the top op can buy
#
# If a fraction p of the time goes to one op and you make that op s times faster, the rest
# (1 - p) does not move:
#
# ```
#   before   |<------------- p ------------->|<--- 1 - p --->|      = 1
#   after    |<- p/s ->|                      |<--- 1 - p --->|      = (1 - p) + p / s
#
#   overall speed-up = 1 / ((1 - p) + p / s)
#   p = 0.70, s = 2:   1 / (0.30 + 0.35) = 1.54x      (not 2x)
#   p = 0.70, s = oo:  1 / 0.30          = 3.33x      (the ceiling, however good the op gets)
# ```

# %% nbgrader={"grade": false, "grade_id": "amdahl", "locked": false, "schema_version": 3, "solution": true}
#| export
def amdahl_speedup(p: float, s: float) -> float:
    """Overall speed-up when a fraction ``p`` (0..1) of the time gets ``s`` times faster.

    EXAMPLE: amdahl_speedup(0.7, 2) -> 1.538...;  s = float("inf") gives the ceiling 1 / (1 - p).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p is a fraction of the time, 0 <= p <= 1, got {p}")
    if not s > 0:
        raise ValueError(f"s is a speed-up factor, s > 0, got {s}")
    ### BEGIN SOLUTION
    return 1.0 / ((1.0 - p) + p / s)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-amdahl", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_amdahl():
    assert abs(amdahl_speedup(0.7, 2) - 1 / 0.65) < 1e-12, amdahl_speedup(0.7, 2)
    assert abs(amdahl_speedup(0.7, float("inf")) - 1 / 0.3) < 1e-9, "s = inf gives 1 / (1 - p)"
    assert amdahl_speedup(0.0, 100) == 1.0 and amdahl_speedup(1.0, 4) == 4.0
    for bad in ((1.5, 2), (0.5, 0)):
        try:
            amdahl_speedup(*bad)
        except ValueError:
            continue
        raise AssertionError(f"amdahl_speedup{bad} must raise ValueError")
    ### BEGIN HIDDEN TESTS
    assert amdahl_speedup(0.5, 0.5) < 1.0, "a slower op slows everything down"
    ### END HIDDEN TESTS


test_unit_amdahl()

# %% [markdown]
# ### Predict, then measure
#
# The top op of the CNN step is the convolution's backward pass. Its input gradient goes
# through `col2im`, which adds K*K shifted slices one by one. For stride 1 there is a faster
# formulation: the input gradient of a convolution *is* a convolution, of the output gradient
# (padded by K - 1 - P) with the kernel flipped and its channel axes swapped, so it can reuse
# `im2col` and one matrix product:
#
# ```
#   dx = conv(pad(dy, K-1-P), flip(W).swap(O, C))        stride 1 only
# ```
#
# It replaces K*K strided additions by one more `im2col` and one matrix product. Whether that
# is faster depends on the shapes (on the full-size CIFAR CNN it is; on small images it may
# not be), which is exactly why we measure instead of assuming.
#
# For the GPT, the top op is `MatMul.backward`: every `Linear` runs on a `(B, T, C)` sequence
# with one shared `(C, N)` weight. The textbook rule (`matmul_backward_batched` below) does a
# batched product, B small matrix products and a `(B, C, N)` temporary, then sums it over the
# batch; module 05's `MatMul.backward` folds the batch into the rows and does one product
# `(C, B*T) @ (B*T, N)` instead. So here the experiment runs the other way round: the step
# with the textbook backward is "before", module 05's folded backward is the faster op.
#
# We check that both give the same gradients, measure the op's own speed-up s in a profile, predict the overall speed-up with
# Amdahl's law from the share p it had, then swap it in and measure the whole step. If s < 1,
# Amdahl's law predicts a slow-down, and that prediction can be checked just the same.

# %% nbgrader={"grade": false, "grade_id": "faster-conv", "locked": true, "schema_version": 3, "solution": false}
#| export
class swap_method:
    """Context manager: replace ``cls.name`` with ``fn`` and restore the original afterwards."""

    def __init__(self, cls, name, fn):
        self.cls, self.name, self.fn = cls, name, fn

    def __enter__(self):
        self.had = self.name in self.cls.__dict__
        self.orig = self.cls.__dict__.get(self.name)
        setattr(self.cls, self.name, self.fn)
        return self

    def __exit__(self, *exc):
        if self.had:
            setattr(self.cls, self.name, self.orig)
        else:
            delattr(self.cls, self.name)
        return False


def measured_amdahl(step, model, op, phase, cls, name, fast, repeats=7):
    """Profile ``step`` as it is and with ``cls.name = fast``, the two alternating round by
    round (in flipped order every other round, so that a busy moment of the machine hits both):
    the op's share p of a plain step, its own speed-up s, Amdahl's prediction, and the measured
    speed-up of the plain step (median of the paired rounds)."""
    before, after = Profiler(model, memory=False), Profiler(model, memory=False)

    def record(prof, swapped):
        if swapped:
            with swap_method(cls, name, fast):
                prof.run(step, warmup=0, repeats=1)
        else:
            prof.run(step, warmup=0, repeats=1)

    step()                                          # warm-up, both versions
    with swap_method(cls, name, fast):
        step()
    for r in range(repeats):
        for prof, swapped in ((before, False), (after, True))[::1 if r % 2 == 0 else -1]:
            record(prof, swapped)
    row = lambda prof: next(x for x in prof.op_table() if x["op"] == op and x["phase"] == phase)
    p = min(row(before)["wall"]["median"] / statistics.median(before.plain_times), 1.0)
    s = row(before)["wall"]["median"] / row(after)["wall"]["median"]
    ratios = [b / a for b, a in zip(before.plain_times, after.plain_times)]
    return {"op": f"{op}.{phase}", "p": p, "s": s, "predicted": amdahl_speedup(p, s),
            "measured": statistics.median(ratios), "rounds": len(ratios)}


# %% nbgrader={"grade": false, "grade_id": "conv-backward-fast", "locked": true, "schema_version": 3, "solution": false}
#| export
def conv_backward_fast(self, grad_out):
    """Conv2dFunction.backward with the stride-1 input gradient computed as a convolution."""
    from tinytorch.core.spatial import col2im, im2col

    cols, weight = self.saved
    O, C, KH, KW = weight.shape
    N = grad_out.shape[0]
    needs = getattr(self, "needs_input_grad", ()) or (True, True)
    g = grad_out.reshape(N, O, -1)                                               # (N, O, L)
    dw = np.matmul(g, cols.transpose(0, 2, 1)).sum(axis=0)                       # (O, C*KH*KW)
    dw = dw.reshape(weight.shape).astype(weight.dtype, copy=False)
    dx = None
    if needs[0]:
        if self.stride == 1 and self.padding <= min(KH, KW) - 1:
            wf = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3).reshape(C, O * KH * KW)  # (C, O*KH*KW)
            gcols, _ = im2col(grad_out, (KH, KW), 1, KH - 1 - self.padding)              # (N, O*KH*KW, H*W)
            dx = np.matmul(wf, gcols).reshape(self.x_shape)                              # (N, C, H, W)
        else:
            dx = col2im(np.matmul(weight.reshape(O, -1).T, g), self.x_shape, (KH, KW),
                        self.stride, self.padding)
    if self.has_bias:
        return dx, dw, g.sum(axis=(0, 2)).astype(weight.dtype, copy=False)
    return dx, dw


def matmul_backward_batched(self, grad_out):
    """MatMul.backward by the textbook broadcast rule: a batched product per input, then
    ``unbroadcast`` sums a shared operand's gradient over the batch (module 05 folds a shared
    2-D weight into one product instead). The baseline of the GPT's Amdahl experiment."""
    from tinytorch.core.autograd import unbroadcast

    a, b = self.saved
    a2 = a[None, :] if a.ndim == 1 else a                                        # (..., M, K)
    b2 = b[:, None] if b.ndim == 1 else b                                        # (..., K, N)
    g = grad_out
    if a.ndim == 1:
        g = np.expand_dims(g, -2)
    if b.ndim == 1:
        g = np.expand_dims(g, -1)                                                # (..., M, N)
    needs = getattr(self, "needs_input_grad", ()) or (True, True)
    ga = unbroadcast(np.matmul(g, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape) if needs[0] else None
    gb = unbroadcast(np.matmul(np.swapaxes(a2, -1, -2), g), b2.shape).reshape(b.shape) if needs[1] else None
    return ga, gb


# %%
from tinytorch.core.autograd import MatMul
from tinytorch.core.spatial import Conv2dFunction

# same gradients as your backward, before we trust any timing
_f = Conv2dFunction()
_x = _rng.standard_normal((4, 8, 10, 10)).astype(np.float32)
_w = _rng.standard_normal((6, 8, 3, 3)).astype(np.float32)
_g = _rng.standard_normal(_f.forward(_x, _w, padding=1).shape).astype(np.float32)
for _a, _b in zip(Conv2dFunction.backward(_f, _g), conv_backward_fast(_f, _g)):
    np.testing.assert_allclose(_a, _b, rtol=1e-4, atol=1e-4)
_f = MatMul()
_f.needs_input_grad = (True, True)                                               # as apply() sets it
_out = _f.forward(_rng.standard_normal((4, 16, 32)).astype(np.float32),          # (B, T, C) @ (C, N)
                  _rng.standard_normal((32, 24)).astype(np.float32))
_g = _rng.standard_normal(_out.shape).astype(np.float32)                          # (B, T, N)
for _a, _b in zip(MatMul.backward(_f, _g), matmul_backward_batched(_f, _g)):
    np.testing.assert_allclose(_a, _b, rtol=1e-4, atol=1e-4)

# a bigger input than above (32x32 images, batch 16), so that the convolutions dominate more
amd_cnn = small_cnn(seed=1, size=32)
amd_step = train_step_fn(amd_cnn, Tensor(_rng.standard_normal((16, 3, 32, 32)).astype(np.float32)),
                         Tensor(_rng.integers(0, 10, 16)))
amd = measured_amdahl(amd_step, amd_cnn, "Conv2dFunction", "backward", Conv2dFunction, "backward",
                      conv_backward_fast)

# the GPT: "before" has the textbook MatMul.backward, the faster op is module 05's folded one
amd_gpt = GPT(vocab_size=32, block_size=32, n_layer=1, n_head=4, n_embd=128, seed=1)
amd_gpt_step = train_step_fn(amd_gpt, _rng.integers(0, 32, (8, 32)), Tensor(_rng.integers(0, 32, 8 * 32)))
folded = MatMul.backward
with swap_method(MatMul, "backward", matmul_backward_batched):
    amd2 = measured_amdahl(amd_gpt_step, amd_gpt, "MatMul", "backward", MatMul, "backward", folded)

print(f"{'model and op made faster':<44} {'p':>6} {'s':>6} {'predicted':>9} {'measured':>9} {'ceiling':>8}")
for label, a in (("CNN 32x32 b16: Conv2dFunction.backward", amd), ("GPT 128 dims b8: MatMul.backward", amd2)):
    print(f"{label:<44} {a['p'] * 100:>5.1f}% {a['s']:>5.2f}x {a['predicted']:>8.3f}x {a['measured']:>8.3f}x "
          f"{amdahl_speedup(a['p'], float('inf')):>7.2f}x")
print(f"(p: the op's share of a plain step; s: its own speed-up in the profiles; measured: median of "
      f"{amd['rounds']} paired rounds of plain steps, old and new alternating)")

# %% [markdown]
# Read the two rows together: p caps what any s can buy (the ceiling column), and the same
# s is worth more on a bigger p. The folded matmul is only a little faster as an op, but the
# op holds a large share of the GPT's step, so the step moves; a much faster op holding a few
# percent would hardly move it. On a machine shared with other programs these numbers also move from run to
# run (module 19 shows how to tell a real difference from noise; its `compare` is what
# `benchmarks/profile_models.py` uses to measure the same two experiments on the full-size
# milestone CNN and GPT, with prediction and measurement side by side in
# `benchmarks/results/profile_models.md`).
#
# ## 6. The roofline: compute-bound or memory-bound?
#
# An op can be slow for two reasons: it does many FLOPs, or it moves many bytes. The roofline
# model (Williams, Waterman and Patterson, 2009) puts both on one chart. Measure two numbers of
# the machine: the peak FLOP rate (a large matmul, where BLAS runs at its best) and the memory
# bandwidth (a large copy: every byte read once and written once). An op with **arithmetic
# intensity** I = FLOPs / bytes moved can at best reach
#
# ```
#   attainable FLOP/s = min(peak, bandwidth * I)
#
#   FLOP/s (log)
#      ^                 ___________________  peak (matmul)
#      |                /        compute-bound: more FLOPs per byte will not help
#      |               /
#      |   memory-    /  slope = bandwidth
#      |   bound     /
#      +------------+--------------------------> I = FLOPs / byte (log)
#                 ridge = peak / bandwidth
#
#   ReLU on float32: 1 FLOP per element, 8 bytes (read 4, write 4): I = 0.125 -> memory-bound
#   matmul n x n:    2n^3 FLOPs, 12 n^2 bytes:  I = n / 6 = 85 at n = 512 -> compute-bound
# ```
#
# For our ops the bytes are the minimal traffic: inputs read once, output written once. Products
# count their FLOPs; other ops are placed at an *estimated* 1 FLOP per element processed. The
# roofline code goes to its own file of the package, `tinytorch.profiling.roofline`.

# %% nbgrader={"grade": false, "grade_id": "machine", "locked": true, "schema_version": 3, "solution": false}
#| export profiling.roofline
import time

import numpy as np

from tinytorch.profiling.profiler import MOVEMENT_OPS, PRODUCT_OPS


def measure_peak_flops(n=1024, repeats=3) -> float:
    """float32 FLOP/s of the best of ``repeats`` n x n matmuls (2 n^3 FLOPs each)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    out = np.empty((n, n), np.float32)
    np.matmul(a, b, out=out)                     # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best


def measure_bandwidth(nbytes=64 * 2**20, repeats=3) -> dict:
    """Memory bandwidth in bytes/s: copy (read + write, 2 x bytes) and triad a = b + s * c
    (counted as STREAM does, 3 x bytes; NumPy makes two passes, so this is a lower bound)."""
    n = int(nbytes) // 4
    b = np.ones(n, np.float32)
    c = np.ones(n, np.float32)
    a = np.empty(n, np.float32)
    np.copyto(a, b)                              # warm-up: first touch of every page
    best_copy = best_triad = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(a, b)
        best_copy = min(best_copy, time.perf_counter() - t0)
        t0 = time.perf_counter()
        np.multiply(c, np.float32(3.0), out=a)
        np.add(a, b, out=a)
        best_triad = min(best_triad, time.perf_counter() - t0)
    return {"copy": 2.0 * a.nbytes / best_copy, "triad": 3.0 * a.nbytes / best_triad}


# %% [markdown]
# Write the roofline placement: given an op's FLOPs, bytes and time, its intensity, the
# attainable rate, what it achieved, and which roof limits it.

# %% nbgrader={"grade": false, "grade_id": "roofline", "locked": false, "schema_version": 3, "solution": true}
#| export profiling.roofline
def roofline_point(flops, nbytes, seconds, peak, bandwidth) -> dict:
    """{"intensity": FLOPs/byte, "achieved": FLOP/s, "attainable": min(peak, bandwidth * I),
        "bound": "memory" if I < peak / bandwidth else "compute", "efficiency": achieved / attainable}
    """
    if nbytes <= 0 or seconds <= 0:
        raise ValueError(f"need bytes > 0 and seconds > 0, got bytes={nbytes}, seconds={seconds}")
    ### BEGIN SOLUTION
    intensity = flops / nbytes
    achieved = flops / seconds
    attainable = min(peak, bandwidth * intensity)
    bound = "memory" if intensity < peak / bandwidth else "compute"
    return {"intensity": intensity, "achieved": achieved, "attainable": attainable, "bound": bound,
            "efficiency": achieved / attainable if attainable > 0 else 0.0}
    ### END SOLUTION


def roofline_table(prof, peak, bandwidth) -> list:
    """One roofline point per (layer, op) of the forward pass of a profile (provided)."""
    rows = []
    for r in prof.site_table():
        if r["phase"] != "forward" or r["op"] in MOVEMENT_OPS or r["bytes"] == 0 or r["wall"] <= 0:
            continue
        flops = r["flops"] if r["op"] in PRODUCT_OPS else r["elements"]     # estimate: 1 per element
        if flops <= 0:
            continue
        pt = roofline_point(flops, r["bytes"], r["wall"], peak, bandwidth)
        pt.update({"layer": f"{r['module']} {r['op']}", "op": r["op"], "flops": flops,
                   "bytes": r["bytes"], "seconds": r["wall"], "estimated": r["op"] not in PRODUCT_OPS})
        rows.append(pt)
    return rows


def plot_roofline(tables, peak, bandwidth, path, title="roofline"):
    """Roofline chart of {model name: roofline_table rows} to a PNG (needs matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("plot_roofline needs matplotlib (pip install 'tinytorch[plot]'); "
                          "the text tables work without it") from e
    fig, ax = plt.subplots(figsize=(8, 5.5))
    pts = [p for rows in tables.values() for p in rows]
    lo = min([p["intensity"] for p in pts] + [0.01]) / 2
    hi = max([p["intensity"] for p in pts] + [peak / bandwidth * 4]) * 2
    xs = np.logspace(np.log10(lo), np.log10(hi), 200)
    ax.plot(xs, np.minimum(peak, bandwidth * xs), "k-", lw=2, label="roof: min(peak, bandwidth x I)")
    ax.axvline(peak / bandwidth, color="grey", ls=":", lw=1)
    markers = "osd^v"
    for i, (name, rows) in enumerate(tables.items()):
        for est in (False, True):
            sel = [p for p in rows if p["estimated"] == est]
            if sel:
                ax.scatter([p["intensity"] for p in sel], [p["achieved"] for p in sel],
                           marker=markers[i % len(markers)], edgecolors=f"C{i}",
                           facecolors="none" if est else f"C{i}",
                           label=f"{name}: {'other ops (1 FLOP/element, estimated)' if est else 'products'}",
                           alpha=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOPs per byte moved)")
    ax.set_ylabel("achieved FLOP/s")
    ax.set_title(f"{title}: peak {peak / 1e9:.1f} GFLOP/s, bandwidth {bandwidth / 1e9:.1f} GB/s, "
                 f"ridge {peak / bandwidth:.1f} FLOP/B", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_bottlenecks(prof, path, title="bottlenecks", top=12):
    """Horizontal bar chart of the top ops' share of the step to a PNG (needs matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("plot_bottlenecks needs matplotlib (pip install 'tinytorch[plot]')") from e
    rows = prof.op_table()[:top][::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.2))
    ax.barh([f"{r['op']} ({r['phase']})" for r in rows], [r["share"] * 100 for r in rows],
            xerr=[[100 * (r["wall"]["median"] - r["wall"]["min"]) / prof.step_time()["median"] for r in rows],
                  [100 * (r["wall"]["max"] - r["wall"]["median"]) / prof.step_time()["median"] for r in rows]],
            color="tab:blue")
    ax.set_xlabel("share of the step's wall time (%), bars: min..max over repeats")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# %% nbgrader={"grade": true, "grade_id": "test-roofline", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_roofline():
    peak, bw = 100e9, 10e9                                   # ridge at 10 FLOP/byte
    relu = roofline_point(1e6, 8e6, 1e-3, peak, bw)           # I = 0.125
    assert relu["bound"] == "memory", relu
    assert abs(relu["intensity"] - 0.125) < 1e-12 and abs(relu["attainable"] - 1.25e9) < 1
    assert abs(relu["achieved"] - 1e9) < 1 and abs(relu["efficiency"] - 0.8) < 1e-9
    mm = roofline_point(2 * 512 ** 3, 12 * 512 ** 2, 0.01, peak, bw)
    assert mm["bound"] == "compute" and mm["attainable"] == peak, mm
    try:
        roofline_point(1, 0, 1, peak, bw)
    except ValueError:
        pass
    else:
        raise AssertionError("zero bytes must raise ValueError")
    ### BEGIN HIDDEN TESTS
    assert roofline_point(10, 1, 1, peak, bw)["bound"] == "compute", "at the ridge: compute-bound"
    ### END HIDDEN TESTS


test_unit_roofline()

# %% [markdown]
# ### This machine's roofline, and where your layers sit
#
# Small sizes here so that the lesson stays quick. `benchmarks/roofline.py` measures with larger
# ones, places every layer of the full-size milestone models and writes
# `benchmarks/results/roofline.md` and this chart:
#
# ![roofline of the milestone CNN and GPT](../../benchmarks/results/roofline.png)

# %%
peak = measure_peak_flops(n=512, repeats=10)
bw = measure_bandwidth(nbytes=64 * 2**20, repeats=5)
ridge = peak / bw["copy"]
print(f"peak float32 matmul: {peak / 1e9:.1f} GFLOP/s;  bandwidth: copy {bw['copy'] / 1e9:.1f} GB/s, "
      f"triad {bw['triad'] / 1e9:.1f} GB/s;  ridge point {ridge:.1f} FLOP/byte")
for name, prof in (("CNN", cnn_prof), ("GPT", gpt_prof)):
    rows = sorted(roofline_table(prof, peak, bw["copy"]), key=lambda p: -p["seconds"])
    mem = sum(p["bound"] == "memory" for p in rows)
    print(f"\n{name}: {len(rows)} forward (layer, op) sites, {mem} memory-bound, {len(rows) - mem} compute-bound")
    print(f"  {'layer and op':<40} {'FLOP/B':>8} {'GFLOP/s':>8} {'of roof':>8}  bound")
    for p in rows[:8]:
        print(f"  {p['layer'][:40]:<40} {p['intensity']:>8.2f} {p['achieved'] / 1e9:>8.2f} "
              f"{p['efficiency'] * 100:>7.1f}%  {p['bound']}{' (est.)' if p['estimated'] else ''}")

# %% [markdown]
# Small layers sit far *below* the roof, even the compute-bound ones: at these sizes the fixed
# cost of each call (Python, NumPy dispatch, allocating the output) is larger than the work.
# The roof is an upper bound, not a prediction; the distance to it is what an optimization
# can still win. (A small op can also land *above* the bandwidth roof: its few kilobytes stay
# in the CPU's caches, which are faster than the main memory the copy measured; and on a busy
# machine the copy itself may have been slowed, lowering the roof. Both are worth a look when
# "of roof" exceeds 100%.)
#
# ## 7. The profiler's own cost
#
# Every op call now runs two clocks and a few dictionary updates. `run` timed the step with
# and without instrumentation, alternating, so the overhead is measured, not assumed:

# %%
for name, prof in (("CNN", cnn_prof), ("GPT", gpt_prof)):
    rel, per_event = prof.overhead()
    events = statistics.median(r["events"] for r in prof._timed_rounds())
    print(f"{name}: {events:.0f} recorded calls per step; instrumented step "
          f"{prof.step_time()['median'] * 1e3:.2f} ms vs plain {statistics.median(prof.plain_times) * 1e3:.2f} ms "
          f"-> overhead {rel * 100:+.1f}% ({per_event * 1e6:.1f} us per call)")
m_plain = profile_memory(cnn, cnn_x)
print(f"\nprofile_memory of one CNN forward with a graph: peak {m_plain['peak_bytes'] / 2**20:.2f} MiB, "
      f"retained {m_plain['retained_bytes'] / 2**20:.2f} MiB, parameters {m_plain['param_bytes'] / 1024:.1f} KiB")

# %% [markdown]
# A fixed few microseconds per call matters for models made of many tiny ops (the small GPT)
# and vanishes for big ones: a profile always changes what it measures a little, so compare
# profiles with profiles and plain timings with plain timings.

# %% [markdown]
# ## 8. The trained reference models
#
# Profiling, quantizing, pruning and caching are only worth measuring on models that have
# learned something: a randomly initialized CNN has nothing to lose when you quantize it. The
# course ships the four milestone models, trained, so that this tier starts from them instead of
# an hour of training:
#
# ```
#   name              milestone   what                                  card's number
#   mnist_mlp         03          784-256-128-10 MLP, MNIST             test accuracy (10,000 images)
#   cifar10_cnn       04          5-conv CNN with BatchNorm, CIFAR-10   test accuracy (10,000 images)
#   shakespeare_gpt   05          4-layer GPT, tinyshakespeare          validation loss per character
#   tinytalks_gpt     05          4-layer GPT, TinyTalks Q&A            exact match on 293 test questions
# ```
#
# A checkpoint is *data, never code*: `NAME.npz` holds the `state_dict` (read with
# `allow_pickle=False`, so opening it cannot run anything) and `NAME.json` describes the rest: the
# architecture (a `Sequential` of known layers, or a `GPT`), how raw input becomes model input
# (`preprocess`: uint8 images or text), and the **card**: dataset, split, the measured number,
# the exact command that trained it and the date. The milestones' `--save` writes exactly this
# pair, so your own trained model loads the same way: `load_pretrained("my_cnn.npz")`.
#
# ```
#   model = load_pretrained("cifar10_cnn")     # eval mode, weights loaded
#   x = model.preprocess(images_uint8)         # (N, 3, 32, 32) uint8 -> normalized float32 Tensor
#   logits = model(x)                          # (N, 10)
#   model.card["value"], model.card["command"]
# ```

# %% nbgrader={"grade": false, "grade_id": "pretrained", "locked": true, "schema_version": 3, "solution": false}
#| export models.pretrained
import datetime
import json
import os
from pathlib import Path

import numpy as np

from tinytorch.core.layers import Module
from tinytorch.core.tensor import Tensor

PRETRAINED = ("mnist_mlp", "cifar10_cnn", "shakespeare_gpt", "tinytalks_gpt")
CARD_FIELDS = ("dataset", "split", "metric", "value", "command", "date")
FORMAT = 1
_MAX_JSON = 1 << 20
_MAX_STATE = 1 << 31      # bytes a checkpoint's arrays may expand to
_GPT_ARGS = ("vocab_size", "block_size", "n_layer", "n_head", "n_embd")


class PretrainedError(ValueError):
    """A checkpoint that cannot be loaded; the message says why."""


def _layer_kinds():
    """type name -> (class, hyperparameters) of the layers a checkpoint may contain."""
    from tinytorch.core import activations, layers
    kinds = {"Linear": (layers.Linear, ("in_features", "out_features", "bias")),
             "Dropout": (layers.Dropout, ("p",))}
    for name in ("ReLU", "Sigmoid", "Tanh", "GELU"):
        kinds[name] = (getattr(activations, name), ())
    kinds["Softmax"] = (activations.Softmax, ("dim",))
    try:                                           # module 09: only needed for the CNN
        from tinytorch.core import spatial
    except ImportError:
        return kinds
    kinds.update({"Conv2d": (spatial.Conv2d, ("in_channels", "out_channels", "kernel_size", "stride",
                                              "padding", "bias")),
                  "MaxPool2d": (spatial.MaxPool2d, ("kernel_size", "stride")),
                  "AvgPool2d": (spatial.AvgPool2d, ("kernel_size", "stride")),
                  "BatchNorm2d": (spatial.BatchNorm2d, ("num_features", "eps", "momentum")),
                  "Flatten": (spatial.Flatten, ())})
    try:                                           # module 15: quantized checkpoints
        from tinytorch.optimization import quantization as quant
    except ImportError:
        return kinds
    kinds.update({"QuantizedLinear": (quant.QuantizedLinear, ("in_features", "out_features", "bias", "bits",
                                                              "per_channel", "weight_only")),
                  "QuantizedConv2d": (quant.QuantizedConv2d, ("in_channels", "out_channels", "kernel_size",
                                                              "stride", "padding", "bias", "bits",
                                                              "per_channel", "weight_only"))})
    return kinds


def _quantization():
    """Module 15's quantization module, or None when this package does not have it yet."""
    try:
        from tinytorch.optimization import quantization
    except ImportError:
        return None
    return quantization


def describe_model(model) -> dict:
    """The architecture of ``model`` as JSON-able data: a Sequential of known layers, or a GPT."""
    kind = type(model).__name__
    if kind == "GPT":
        spec = {"type": "GPT", **{k: int(getattr(model, k)) for k in _GPT_ARGS}}
        quant = _quantization()
        config = quant.quantization_config(model) if quant is not None else None
        if config is not None:                     # module 15: a GPT whose Linears hold int8 weights
            spec["quantized"] = config
        return spec
    if kind != "Sequential":
        raise PretrainedError(f"a checkpoint holds a Sequential of known layers or a GPT, not a {kind}")
    kinds, spec = _layer_kinds(), []
    for i, layer in enumerate(model.layers):
        name = type(layer).__name__
        if name not in kinds:
            raise PretrainedError(f"layer {i}: {name} cannot be described; known: {sorted(kinds)}")
        entry = {"type": name}
        for p in kinds[name][1]:
            v = getattr(layer, p)
            entry[p] = (v is not None) if p == "bias" else (list(v) if isinstance(v, tuple) else v)
        spec.append(entry)
    return {"type": "Sequential", "layers": spec}


def build_model(spec: dict) -> Module:
    """A fresh model from ``describe_model``'s data (only known layer types are built)."""
    if not isinstance(spec, dict) or spec.get("type") not in ("Sequential", "GPT"):
        raise PretrainedError(f"architecture must be a Sequential or a GPT, got {str(spec)[:80]}")
    if spec["type"] == "GPT":
        from tinytorch.models.transformer import GPT
        args = [spec.get(k) for k in _GPT_ARGS]
        if any(isinstance(a, bool) or not isinstance(a, int) or not 1 <= a <= 65536 for a in args):
            raise PretrainedError(f"GPT needs integers {_GPT_ARGS} in 1..65536, got {args}")
        extra = sorted(set(spec) - set(_GPT_ARGS) - {"type", "quantized"})
        if extra:
            raise PretrainedError(f"GPT: unknown fields {extra}")
        model = GPT(*args, seed=0)
        if "quantized" not in spec:
            return model
        config, quant = spec["quantized"], _quantization()
        if quant is None:
            raise PretrainedError("this checkpoint holds a quantized GPT: it needs module 15 (quantization)")
        if not isinstance(config, dict) or set(config) != {"bits", "per_channel", "weight_only"}:
            raise PretrainedError(f"GPT: 'quantized' must hold bits, per_channel and weight_only, got {config!r}")
        try:
            return quant.quantized_shell(model, **config)
        except (TypeError, ValueError) as e:
            raise PretrainedError(f"GPT: {e}") from None
    from tinytorch.core.layers import Sequential
    kinds, made = _layer_kinds(), []
    for i, entry in enumerate(spec.get("layers") or []):
        name = entry.get("type") if isinstance(entry, dict) else None
        if name not in kinds:
            raise PretrainedError(f"layer {i}: unknown type {name!r}; known: {sorted(kinds)}")
        cls, params = kinds[name]
        extra = sorted(set(entry) - set(params) - {"type"})
        if extra:
            raise PretrainedError(f"layer {i} ({name}): unknown hyperparameters {extra}")
        args = {p: tuple(entry[p]) if isinstance(entry.get(p), list) else entry[p] for p in params if p in entry}
        try:
            made.append(cls(**args))
        except (TypeError, ValueError) as e:
            raise PretrainedError(f"layer {i} ({name}): {e}") from None
    if not made:
        raise PretrainedError("a Sequential checkpoint needs at least one layer")
    return Sequential(*made)


def make_preprocess(spec: dict):
    """The callable that turns raw input into model input, from the checkpoint's description.

    ``{"type": "image", "mean": [...], "std": [...], "flatten": bool}``: uint8 images (N, H, W) or
    (N, C, H, W) -> float32 Tensor, scaled to [0, 1] and standardized per channel (flattened to
    (N, -1) for an MLP). ``{"type": "text", "tokenizer": {...}}``: a string (or a list of strings
    of equal length) -> int64 token ids (1, T) (or (B, T)); its ``.tokenizer`` decodes.
    """
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind == "image":
        mean = np.asarray(spec["mean"], dtype=np.float32)          # (C,)
        std = np.asarray(spec["std"], dtype=np.float32)            # (C,)
        flatten = bool(spec.get("flatten", False))

        def preprocess(images):
            x = np.asarray(images)
            if x.dtype != np.uint8:
                raise TypeError(f"preprocess expects raw uint8 images, got dtype {x.dtype}")
            if x.ndim == 3:
                x = x[:, None]                                       # (N, 1, H, W)
            if x.ndim != 4 or x.shape[1] != mean.size:
                raise ValueError(f"preprocess expects (N, {mean.size}, H, W) images, got {np.shape(images)}")
            x = x.astype(np.float32) / np.float32(255.0)            # (N, C, H, W) in [0, 1]
            x = (x - mean[:, None, None]) / std[:, None, None]      # standardized
            return Tensor(x.reshape(len(x), -1) if flatten else x)
        preprocess.spec = dict(spec)
        return preprocess
    if kind == "text":
        from tinytorch.text.tokenization import CharTokenizer
        tok = spec.get("tokenizer") or {}
        if tok.get("type") != "CharTokenizer":
            raise PretrainedError(f"unknown tokenizer {tok.get('type')!r}")
        tokenizer = CharTokenizer.from_dict(tok)

        def preprocess(text):
            texts = [text] if isinstance(text, str) else list(text)
            ids = [tokenizer.encode(t) for t in texts]
            if len({len(i) for i in ids}) != 1:
                raise ValueError("preprocess: texts of a batch must have the same length in tokens")
            return np.array(ids, dtype=np.int64)                     # (B, T)
        preprocess.tokenizer = tokenizer
        preprocess.spec = dict(spec)
        return preprocess
    raise PretrainedError(f"unknown preprocess type {kind!r}: expected 'image' or 'text'")


def save_pretrained(model: Module, path, card: dict, preprocess: dict, compress: bool = False) -> str:
    """Write ``path`` (.npz, the state_dict, no pickle) and the same name with .json
    (architecture, preprocess, card). Returns the .npz path. The card needs ``CARD_FIELDS``.
    ``compress=True`` deflates the .npz's members (np.load reads both)."""
    from tinytorch.core.training import save_state_dict
    missing = [k for k in CARD_FIELDS if k not in card]
    if missing:
        raise PretrainedError(f"the card lacks {missing}; it needs {list(CARD_FIELDS)}")
    make_preprocess(preprocess)                                      # refuse what cannot be loaded
    path = Path(os.fspath(path))
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    doc = {"format": FORMAT, "architecture": describe_model(model), "preprocess": preprocess,
           "parameters": int(sum(p.size for p in model.parameters())), "card": dict(card)}
    text = json.dumps(doc, indent=1, ensure_ascii=True, allow_nan=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_state_dict(model.state_dict(), path)
    if compress:
        _deflate(path)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path.with_suffix(".json"))
    return str(path)


def _deflate(path: Path) -> None:
    """Rewrite the .npz at ``path`` with every member deflated (atomically)."""
    import zipfile
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    os.replace(tmp, path)


def _check_archive(path: Path) -> None:
    """Refuse an .npz whose members would expand beyond _MAX_STATE bytes (a deflate bomb)."""
    import zipfile
    try:
        with zipfile.ZipFile(path) as z:
            total = sum(info.file_size for info in z.infolist())
    except zipfile.BadZipFile as e:
        raise PretrainedError(f"{path}: not an .npz archive ({e})") from None
    if total > _MAX_STATE:
        raise PretrainedError(f"{path} expands to {total:,} bytes, more than {_MAX_STATE:,}: not a checkpoint")


def checkpoint_path(name) -> Path:
    """The .npz of a shipped checkpoint (one of ``PRETRAINED``) or of a path to one."""
    if isinstance(name, str) and name in PRETRAINED:
        import tinytorch
        # __path__ rather than __file__: it also works when tinytorch is a namespace package
        candidates = [Path(p) / "models" / "files" / f"{name}.npz" for p in tinytorch.__path__]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            raise PretrainedError(f"the checkpoint {name}.npz is missing: it ships with tinytorch in "
                                  "tinytorch/models/files/; reinstall the package or restore that folder")
        return path
    path = Path(os.fspath(name))
    if path.suffix != ".npz" or not path.is_file():
        raise PretrainedError(f"unknown checkpoint {name!r}: give one of {list(PRETRAINED)} or the path "
                              "of an existing .npz written by save_pretrained (a milestone's --save)")
    return path


def load_pretrained(name) -> Module:
    """A trained model in eval mode: ``name`` is one of ``PRETRAINED`` or a path to a .npz written
    by ``save_pretrained``. The model gets ``.card`` (dict) and ``.preprocess`` (callable)."""
    from tinytorch.core.training import load_state_dict
    path = checkpoint_path(name)
    meta = path.with_suffix(".json")
    if not meta.is_file():
        raise PretrainedError(f"{meta} is missing: a checkpoint is the .npz and its .json")
    if meta.stat().st_size > _MAX_JSON:
        raise PretrainedError(f"{meta} is larger than {_MAX_JSON} bytes: not a checkpoint description")
    try:
        doc = json.loads(meta.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PretrainedError(f"{meta}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise PretrainedError(f"{meta}: expected a checkpoint description of format {FORMAT}")
    model = build_model(doc.get("architecture"))
    _check_archive(path)
    try:
        state = load_state_dict(path)
    except ValueError as e:            # np.load refuses object arrays (pickle) and bad files
        raise PretrainedError(f"{path}: {e}") from None
    for key, value in model.state_dict().items():   # integer (quantized) state is never cast
        if value.dtype.kind in "iu" and key in state and state[key].dtype != value.dtype:
            raise PretrainedError(f"{path}: {key!r} must be {value.dtype}, the file holds {state[key].dtype}")
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError) as e:
        raise PretrainedError(f"{path} does not fit its architecture: {e}") from None
    model.eval()
    model.card = dict(doc.get("card") or {})
    model.preprocess = make_preprocess(doc.get("preprocess"))
    return model


def today() -> str:
    """The date for a card (UTC, ISO)."""
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def image_accuracy(model, images, labels, batch_size: int = 500) -> float:
    """Share of ``labels`` the model's argmax gets right on raw uint8 ``images`` (eval mode)."""
    from tinytorch.core.autograd import no_grad
    labels = np.asarray(labels)
    model.eval()
    correct = 0
    with no_grad():
        for i in range(0, len(labels), batch_size):
            logits = model(model.preprocess(images[i:i + batch_size])).data        # (b, classes)
            correct += int((logits.argmax(axis=1) == labels[i:i + batch_size]).sum())
    return correct / max(1, len(labels))


def window_loss(model, ids, n_windows=None, batch_size: int = 32) -> float:
    """Mean next-token cross-entropy (nats per token) over the non-overlapping windows of
    ``model.block_size`` tokens of ``ids``: window w reads ids[wT:(w+1)T] and predicts
    ids[wT+1:(w+1)T+1]. ``n_windows`` takes the first ones (None: all that fit)."""
    from tinytorch.core.autograd import no_grad
    ids = np.asarray(ids, dtype=np.int64)
    T = model.block_size
    n = (len(ids) - 1) // T if n_windows is None else min(int(n_windows), (len(ids) - 1) // T)
    if n < 1:
        raise ValueError(f"window_loss needs more than {T} tokens, got {len(ids)}")
    starts = np.arange(n) * T
    total = 0.0
    model.eval()
    with no_grad():
        for i in range(0, n, batch_size):
            ix = starts[i:i + batch_size, None] + np.arange(T)                    # (b, T)
            logits = model(ids[ix]).data.astype(np.float64)                       # (b, T, V)
            logits -= logits.max(axis=-1, keepdims=True)
            logp = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))   # (b, T, V)
            total -= np.take_along_axis(logp, ids[ix + 1][..., None], axis=-1).sum()
    return float(total / (n * T))

# %% [markdown]
# What does a checkpoint cost? Its parameters, 4 bytes each, and little else: `profile_memory`
# measures what loading one allocates, next to the size of its file.

# %%
for name in PRETRAINED:
    mem = profile_memory(load_pretrained, name)
    model = load_pretrained(name)
    n = sum(p.size for p in model.parameters())
    print(f"{name:<16} {n:>8,} parameters x 4 B = {4 * n / 1e6:5.2f} MB; file "
          f"{checkpoint_path(name).stat().st_size / 1e6:5.2f} MB; loading allocated "
          f"{mem['retained_bytes'] / 1e6:5.2f} MB (peak {mem['peak_bytes'] / 1e6:5.2f} MB); card: "
          f"{model.card['metric']} {model.card['value']:.4f} on {model.card['dataset']}")

# %% [markdown]
# ## Reflect
#
# 1. Your CNN's conv backward took a share p of the step. If a library made every convolution
#    (forward and backward) infinitely fast, what is the best overall speed-up Amdahl's law
#    allows, from your table? What would you optimize next, and what would *that* buy?
# 2. The measured Amdahl speed-up and the predicted one differ a little. Name two reasons (think
#    of what the profile's overhead does to p, and of what else the faster backward changes:
#    memory allocated, caches).
# 3. A counter that counts MACs reports ResNet-50 at 4.1 "GFLOPs"; PyTorch reports 8.2 GFLOPs.
#    Who is right? Which number do you divide by a machine's peak FLOP/s to get a lower bound on
#    the time of one image?
# 4. ReLU has intensity 0.125 FLOP/byte. On your machine's roofline, what is the fastest it can
#    run on a (128, 64, 32, 32) float32 tensor? Fusing ReLU into the preceding convolution saves
#    its read and write: how many bytes per step is that for the CIFAR CNN's first block?
# 5. Attention's FLOPs grow as T^2 * d but its bytes (the T x T weights) as T^2: what is its
#    intensity, and why does that make attention memory-bound for small head sizes d?
