"""Graded test cells turned into probes: the sandbox observes, the trusted parent decides.

A graded cell such as ``assert t.shape == (2, 3)`` is rewritten (AST transform) into a
*probe* that evaluates only the parts of each check that need the learner's objects (the
*leaves*: ``t.shape``) and records their values; the rest of the check (the comparison, the
expected side ``(2, 3)``, ``np.testing.assert_allclose`` and its tolerances, the exception
type a ``try/except`` expects) never enters the sandbox. The parent deserializes the
observed leaves (plain values only, no pickle) and evaluates the original check with real
NumPy. So an always-true object, a patched ``numpy.testing`` or a forged report cannot pass
a check: only right values can.

Check shapes handled (they cover every lesson, the checker keeps it so):
``assert EXPR[, msg]``; ``np.testing.assert_*(...)`` / ``np.*`` calls as statements;
``try: BODY [raise AssertionError] except T [as e]: HANDLER [else: raise AssertionError]``
(a single handler: "BODY must raise T"); ``assert_tensor(out, shape, dtype)`` anywhere (the
learner's copy from module 01 never runs: see :func:`assert_tensor`). Everything else in a
test cell runs unchanged.
"""
from __future__ import annotations

import ast
import builtins
import math
from dataclasses import dataclass, field

from .lesson import scan_markers

RECORDER = "__tito__"
SAFE_MODULES = {"np", "numpy", "math"}
# Calls the parent evaluates itself (their arguments may be leaves).
PARENT_CALLS = {"isinstance"}
PARENT_METHODS = {"all", "any"}
# Check primitives the learner's package provides (module 01's tinytorch.testing): in a graded
# cell the sandbox records only their arguments; the parent runs its own trusted copy.
TENSOR_CHECKS = {"assert_tensor"}


class ProbeError(Exception):
    """A graded cell cannot be turned into a probe (the lesson checker should have said so)."""


@dataclass
class Check:
    id: int
    kind: str  # assert | call | raises
    expr: str  # the parent-side expression, leaves as _v[0], _v[1], ...
    leaves: list[str]  # source of each leaf (for feedback)
    source: str  # the original check, for feedback (visible checks only)
    line: int
    hidden: bool
    must_raise: bool = False
    handler: str = ""  # raises: parent expression of the expected exception type(s)
    exercises: list[str] = field(default_factory=list)  # the learner's functions the check calls


@dataclass
class Probe:
    grade_id: str
    code: str  # what runs in the sandbox
    checks: dict[int, Check] = field(default_factory=dict)


def _hidden_lines(source: str) -> set[int]:
    return {ln.number for ln in scan_markers(source).inside("hidden")}


def _stored_names(tree: ast.AST) -> set[str]:
    names = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            names.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(n.name)
        elif isinstance(n, ast.arg):
            names.add(n.arg)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            for a in n.names:
                names.add((a.asname or a.name).split(".")[0])
        elif isinstance(n, ast.ExceptHandler) and n.name:
            names.add(n.name)
    return names


def strip_magics(source: str) -> str:
    """IPython-only lines (``%timeit``, ``!pip``) become ``pass`` (indentation kept), so plain
    Python runs the cell and line numbers stay those of the notebook."""
    out = []
    for line in source.splitlines():
        body = line.lstrip()
        out.append(line[:len(line) - len(body)] + "pass  # " + body if body.startswith(("%", "!")) else line)
    return "\n".join(out)


_strip_magics = strip_magics


class _Builder(ast.NodeTransformer):
    def __init__(self, source: str, first_id: int):
        self.src = source
        self.hidden = _hidden_lines(source)
        self.tree = ast.parse(_strip_magics(source))
        local = _stored_names(self.tree)
        self.safe = (SAFE_MODULES | set(dir(builtins))) - local
        self.safe |= SAFE_MODULES & local  # `import numpy as np` in a test cell is still numpy
        self.checks: dict[int, Check] = {}
        self.next_id = first_id
        self.solution_names: set[str] = set()

    # ---- classification
    def is_const(self, node: ast.AST) -> bool:
        return all(n.id in self.safe for n in ast.walk(node) if isinstance(n, ast.Name)) and not any(
            isinstance(n, (ast.Lambda, ast.NamedExpr, ast.Await, ast.Yield)) for n in ast.walk(node))

    def _np_func(self, func: ast.AST) -> bool:
        if isinstance(func, ast.Attribute) and any(w in func.attr for w in ("load", "save", "file", "txt", "memmap", "genfrom")):
            return False  # file access stays in the sandbox: the parent never opens a path it is given
        root = func
        while isinstance(root, ast.Attribute):
            root = root.value
        return isinstance(root, ast.Name) and root.id in SAFE_MODULES and root.id in self.safe and root is not func

    def split(self, node: ast.AST, leaves: list[ast.expr]) -> ast.expr:
        """The parent-side copy of ``node``: learner-dependent parts become ``_v[i]``."""
        if self.is_const(node):
            return node
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "isinstance"
                and "isinstance" in self.safe and len(node.args) == 2 and not node.keywords):
            obj = node.args[0]
            if not self.is_const(obj):  # the sandbox reports the object's class, the parent decides
                leaves.append(ast.Call(func=ast.Name("type", ast.Load()), args=[obj], keywords=[]))
                obj = ast.Subscript(value=ast.Name("_v", ast.Load()), slice=ast.Constant(len(leaves) - 1), ctx=ast.Load())
            return ast.Call(func=node.func, args=[obj, self.split(node.args[1], leaves)], keywords=[])
        structural = (
            isinstance(node, (ast.Compare, ast.BoolOp, ast.Tuple, ast.List))
            or isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not)
            or isinstance(node, ast.Call) and (
                self._np_func(node.func)
                or isinstance(node.func, ast.Name) and node.func.id in PARENT_CALLS and node.func.id in self.safe
                or isinstance(node.func, ast.Attribute) and node.func.attr in PARENT_METHODS
                and not node.args and not node.keywords and self._structural_receiver(node.func.value))
        )
        if isinstance(node, (ast.Tuple, ast.List)) and any(isinstance(e, ast.Starred) for e in node.elts):
            structural = False
        if isinstance(node, ast.Compare) and any(isinstance(o, (ast.Is, ast.IsNot)) for o in node.ops) and not all(
                isinstance(x, ast.Constant) for x in node.comparators):
            structural = False  # identity of two objects: only the sandbox can see it (observed as a bool)
        if structural:
            new = ast.copy_location(type(node)(**{f: getattr(node, f) for f in node._fields}), node)
            for fname, value in ast.iter_fields(node):
                if isinstance(value, list):
                    setattr(new, fname, [self.split(v, leaves) if isinstance(v, ast.expr) else self._kw(v, leaves)
                                         for v in value])
                elif isinstance(value, ast.expr) and not (isinstance(node, ast.Call) and fname == "func"):
                    setattr(new, fname, self.split(value, leaves))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in PARENT_METHODS:
                new.func = ast.Attribute(value=self.split(node.func.value, leaves), attr=node.func.attr, ctx=ast.Load())
            return new
        leaves.append(node)
        return ast.Subscript(value=ast.Name("_v", ast.Load()), slice=ast.Constant(len(leaves) - 1), ctx=ast.Load())

    def _structural_receiver(self, node: ast.AST) -> bool:
        return isinstance(node, (ast.Compare, ast.BoolOp)) or isinstance(node, ast.Call) and self._np_func(node.func)

    def _kw(self, kw, leaves):
        if isinstance(kw, ast.keyword):
            return ast.keyword(arg=kw.arg, value=self.split(kw.value, leaves))
        return kw

    def _new_check(self, node, kind, parent_expr, leaves, **kw) -> Check:
        cid = self.next_id
        self.next_id += 1
        line = getattr(node, "lineno", 0)
        src = ast.get_source_segment(_strip_magics(self.src), node) or ast.unparse(node)
        check = Check(id=cid, kind=kind, expr=ast.unparse(parent_expr) if parent_expr is not None else "",
                      leaves=[ast.unparse(l) for l in leaves], source=src.strip(), line=line,
                      hidden=line in self.hidden, **kw)
        calls = [n.func for l in leaves for n in ast.walk(l) if isinstance(n, ast.Call)]
        used = {f.id for f in calls if isinstance(f, ast.Name)} | {f.attr for f in calls if isinstance(f, ast.Attribute)}
        check.exercises = sorted(used & self.solution_names)
        self.checks[cid] = check
        return check

    def _obs_call(self, method: str, cid: int, args: list[ast.expr]) -> ast.stmt:
        call = ast.Call(func=ast.Attribute(ast.Name(RECORDER, ast.Load()), method, ast.Load()),
                        args=[ast.Constant(cid), *args], keywords=[])
        return ast.Expr(call)

    def _leaf_tuple(self, leaves):
        return ast.Tuple(elts=[self.visit(l) for l in leaves], ctx=ast.Load())

    # ---- rewriting
    def visit_Assert(self, node: ast.Assert):
        leaves: list[ast.expr] = []
        parent = self.split(node.test, leaves)
        check = self._new_check(node, "assert", parent, leaves)
        return ast.copy_location(self._obs_call("obs", check.id, [self._leaf_tuple(leaves)]), node)

    def visit_Call(self, node: ast.Call):
        """``assert_tensor(out, shape, dtype, name=...)`` anywhere (a statement, ``y = ...``, inside
        another check): the sandbox records ``out`` (a Tensor is observed as its class and
        ``.data``) and the non-constant arguments, and hands ``out`` back to the code; the parent
        judges them with :func:`assert_tensor`. The learner's own assert_tensor never runs."""
        if (isinstance(node.func, ast.Name) and node.func.id == "gradcheck" and "gradcheck" not in self.solution_names
                and node.args and not isinstance(node.args[0], ast.Starred)
                and all(k.arg in ("eps", "seed") or k.arg in ("rtol", "atol") and self.is_const(k.value)
                        for k in node.keywords)):
            return self._gradcheck(node)
        if not (isinstance(node.func, ast.Name) and node.func.id in TENSOR_CHECKS and node.args
                and not any(isinstance(a, ast.Starred) for a in node.args)
                and all(k.arg for k in node.keywords)):
            return self.generic_visit(node)
        leaves: list[ast.expr] = [node.args[0]]
        first = ast.Subscript(value=ast.Name("_v", ast.Load()), slice=ast.Constant(0), ctx=ast.Load())
        rest = [self.split(a, leaves) for a in node.args[1:]]
        kws = [ast.keyword(arg=k.arg, value=self.split(k.value, leaves)) for k in node.keywords]
        parent = ast.Call(func=ast.Name(node.func.id, ast.Load()), args=[first, *rest], keywords=kws)
        check = self._new_check(node, "call", parent, leaves)
        call = ast.Call(func=ast.Attribute(ast.Name(RECORDER, ast.Load()), "tensor", ast.Load()),
                        args=[ast.Constant(check.id), self._leaf_tuple(leaves)], keywords=[])
        return ast.copy_location(call, node)

    def _gradcheck(self, node: ast.Call):
        """``gradcheck(fn, *inputs)`` of a later module (module 05's own gradcheck is the learner's
        code under test there, and runs as written): the sandbox records the learner's analytic
        gradients and the objective around every input element (tito._gradprobe.observe, run by the harness);
        the parent takes the central differences and compares (:func:`gradcheck`)."""
        tol = [ast.keyword(arg=k.arg, value=k.value) for k in node.keywords if k.arg in ("rtol", "atol")]
        parent = ast.Call(func=ast.Name("gradcheck", ast.Load()),
                          args=[ast.Subscript(value=ast.Name("_v", ast.Load()), slice=ast.Constant(0), ctx=ast.Load())],
                          keywords=tol)
        check = self._new_check(node, "call", parent, [node])
        check.leaves = ["the gradients"]
        options = ast.Dict(keys=[ast.Constant(k.arg) for k in node.keywords if k.arg in ("eps", "seed")],
                           values=[self.visit(k.value) for k in node.keywords if k.arg in ("eps", "seed")])
        inputs = ast.Tuple(elts=[self.visit(a) for a in node.args[1:]], ctx=ast.Load())
        call = ast.Call(func=ast.Attribute(ast.Name(RECORDER, ast.Load()), "gradcheck", ast.Load()),
                        args=[ast.Constant(check.id), self.visit(node.args[0]), inputs, options], keywords=[])
        return ast.copy_location(call, node)

    def visit_Expr(self, node: ast.Expr):
        func = node.value.func if isinstance(node.value, ast.Call) else None
        if (isinstance(func, ast.Attribute) and self._np_func(func) and isinstance(func.value, ast.Attribute)
                and func.value.attr == "testing" and func.attr.startswith("assert_")):
            leaves: list[ast.expr] = []
            parent = self.split(node.value, leaves)
            if leaves:
                check = self._new_check(node, "call", parent, leaves)
                return ast.copy_location(self._obs_call("obs", check.id, [self._leaf_tuple(leaves)]), node)
        return self.generic_visit(node)

    @staticmethod
    def _is_raise_assertion(stmt) -> bool:
        if not isinstance(stmt, ast.Raise) or stmt.exc is None:
            return False
        exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
        return isinstance(exc, ast.Name) and exc.id == "AssertionError"

    def visit_Try(self, node: ast.Try):
        if len(node.handlers) != 1 or node.handlers[0].type is None or node.finalbody:
            return self.generic_visit(node)
        handler = node.handlers[0]
        body = list(node.body)
        must_raise = False
        if body and self._is_raise_assertion(body[-1]):
            body.pop()
            must_raise = True
        orelse = list(node.orelse)
        if len(orelse) == 1 and self._is_raise_assertion(orelse[0]):
            orelse = []
            must_raise = True
        leaves: list[ast.expr] = []
        parent_type = self.split(handler.type, leaves)
        check = self._new_check(node, "raises", None, leaves, must_raise=must_raise,
                                handler=ast.unparse(parent_type))
        check.source = f"{ast.unparse(node.body[0]).splitlines()[0] if node.body else '...'}  must raise {ast.unparse(handler.type)}"
        exc_name = "__tito_exc"
        caught = [self._obs_call("raised", check.id, [ast.Name(exc_name, ast.Load()), self._leaf_tuple(leaves)])]
        if handler.name:
            caught.append(ast.Assign(targets=[ast.Name(handler.name, ast.Store())], value=ast.Name(exc_name, ast.Load())))
        caught += [self.visit(s) for s in handler.body]
        new = ast.Try(
            body=[self.visit(s) for s in body] or [ast.Pass()],
            handlers=[ast.ExceptHandler(type=ast.Name("BaseException", ast.Load()), name=exc_name, body=caught)],
            orelse=[self._obs_call("raised", check.id, [ast.Constant(None), self._leaf_tuple(leaves)])]
            + [self.visit(s) for s in orelse],
            finalbody=[],
        )
        return ast.copy_location(new, node)


def solution_names(sources: list[str]) -> set[str]:
    """Names the learner writes: functions and classes of solution cells, their methods, and
    attributes they assign (``Tensor.sum = _sum`` gives ``sum``)."""
    names = set()
    for src in sources:
        try:
            tree = ast.parse(_strip_magics(src))
        except SyntaxError:
            continue
        for n in ast.walk(tree):
            if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and not n.name.startswith("_"):
                names.add(n.name)
            elif isinstance(n, ast.Assign):
                names |= {t.attr for t in n.targets if isinstance(t, ast.Attribute) and not t.attr.startswith("__")}
    return names


def build_probe(grade_id: str, source: str, first_id: int = 0, learner_names: set[str] | None = None) -> Probe:
    """The probe of one graded test cell (its hidden tests included). ``learner_names``
    (see :func:`solution_names`) lets feedback say which function a failed hidden check calls."""
    try:
        b = _Builder(source, first_id)
        b.solution_names = learner_names or set()
    except SyntaxError as e:
        raise ProbeError(f"{grade_id}: the test cell does not parse: {e}") from None
    tree = ast.fix_missing_locations(b.visit(b.tree))
    if not b.checks:
        raise ProbeError(f"{grade_id}: the test cell checks nothing the grader can observe")
    return Probe(grade_id=grade_id, code=ast.unparse(tree), checks=b.checks)


# --------------------------------------------------------------------------- parent side

class Opaque:
    """Something the sandbox could not serialize: no comparison with it succeeds."""

    def __init__(self, what: str):
        self.what = what

    def __repr__(self):
        return f"<{self.what}: not a plain value>"

    def _refuse(self, *a, **k):
        raise TypeError(f"the code returned {self.what}, which the grader cannot compare (expected a plain value)")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __len__ = __array__ = __iter__ = _refuse
    __hash__ = object.__hash__


class TensorValue:
    """A learner's Tensor as the grader sees it: its class name (and MRO) and its ``.data`` array."""

    def __init__(self, cls: str, data, mro: list[str] | None = None):
        self.cls, self.data, self.mro = cls, data, list(mro or [cls])

    def __array__(self, dtype=None, copy=None):
        import numpy as np
        return np.asarray(self.data, dtype=dtype)

    def __repr__(self):
        return f"{self.cls}({self.data!r})"

    def __eq__(self, other):
        raise TypeError("a Tensor is compared through .data or .item() in the tests")

    __hash__ = object.__hash__


class ClassValue:
    def __init__(self, mro: list[str]):
        self.mro = mro

    def __repr__(self):
        return self.mro[0] if self.mro else "<class>"


class ExceptionValue:
    def __init__(self, mro: list[str], message: str):
        self.mro, self.message = mro, message

    def __repr__(self):
        return f"{self.mro[0] if self.mro else 'exception'}: {self.message}"

    def __str__(self):
        return self.message


def decode(obj):
    """Observed values back from the sandbox's JSON (strictly typed, see _harness.encode)."""
    import base64

    import numpy as np

    if not isinstance(obj, dict):
        raise ValueError("malformed observation")
    t = obj.get("t")
    if t == "none":
        return None
    if t in ("bool", "int", "float", "str"):
        v = obj["v"]
        want = {"bool": bool, "int": int, "float": (int, float), "str": str}[t]
        if not isinstance(v, want):
            raise ValueError("malformed observation")
        return float(v) if t == "float" else v
    if t == "floatx":
        return float(obj["v"])  # nan / inf
    if t in ("tuple", "list"):
        items = [decode(x) for x in obj["v"]]
        return tuple(items) if t == "tuple" else items
    if t == "set":
        return {decode(x) for x in obj["v"]}
    if t == "dict":
        return {decode(k): decode(v) for k, v in obj["v"]}
    if t == "ndarray":
        dtype = np.dtype(obj["dtype"])
        if dtype.kind not in "biufc":
            raise ValueError("malformed observation")
        raw = base64.b64decode(obj["b"])
        return np.frombuffer(raw, dtype=dtype).reshape(obj["shape"]).copy()
    if t == "scalar":
        dtype = np.dtype(obj["dtype"])
        if dtype.kind not in "biufc":
            raise ValueError("malformed observation")
        return np.frombuffer(base64.b64decode(obj["b"]), dtype=dtype)[0]
    if t == "dtype":
        return np.dtype(obj["v"])
    if t == "tensor":
        mro = obj.get("mro") or []
        if not isinstance(mro, list):
            raise ValueError("malformed observation")
        return TensorValue(str(obj["cls"]), decode(obj["data"]), [str(x) for x in mro])
    if t == "class":
        return ClassValue([str(x) for x in obj["mro"]])
    if t == "exc":
        return ExceptionValue([str(x) for x in obj["mro"]], str(obj["msg"]))
    if t == "opaque":
        return Opaque(str(obj.get("what", "an object")))
    raise ValueError("malformed observation")


def _isinstance(value, cls) -> bool:
    """isinstance on observed values: by the qualified names of the class's MRO."""
    classes = cls if isinstance(cls, tuple) else (cls,)
    names = {_qualname(c) for c in classes}
    if isinstance(value, ClassValue):
        return bool(names & set(value.mro))
    if isinstance(value, TensorValue):
        return bool(names & {value.cls, "tinytorch.Tensor"}) or any(n.endswith("." + value.cls.rsplit(".", 1)[-1]) for n in names)
    if isinstance(value, (Opaque, ClassValue, ExceptionValue)):
        return False
    return isinstance(value, tuple(c for c in classes if isinstance(c, type)))


def _qualname(c) -> str:
    if isinstance(c, ClassValue):
        return c.mro[0] if c.mro else ""
    return f"{c.__module__}.{c.__qualname__}" if isinstance(c, type) else str(c)


def _dtype(d):
    import numpy as np

    if isinstance(d, ClassValue):  # np.int64 observed as a class: only NumPy's own scalar types
        name = d.mro[0] if d.mro else ""
        if not name.startswith("numpy.") or not hasattr(np, name.split(".")[-1]):
            raise AssertionError(f"dtype {name!r} is not a NumPy dtype")
        return np.dtype(getattr(np, name.split(".")[-1]))
    return np.dtype(d)


def assert_tensor(out, shape, dtype="float32", name: str = "the result"):
    """The grader's own copy of module 01's ``tinytorch.testing.assert_tensor`` (same rules and
    messages), applied to what the sandbox observed: ``out`` must be a Tensor (a class named
    Tensor in its MRO, holding an ndarray ``.data``) of ``shape`` and ``dtype`` (None: any).
    Shape and dtype are those of the observed ``.data``, whatever ``.shape`` the learner's
    class reports. tests/grading/test_probe.py keeps it in step with the reference."""
    import numpy as np

    if not (isinstance(out, TensorValue) and any(c.rsplit(".", 1)[-1] == "Tensor" for c in out.mro)
            and isinstance(out.data, np.ndarray)):
        got = (out.cls if isinstance(out, TensorValue) else out.what if isinstance(out, Opaque)
               else f"{type(out).__module__}.{type(out).__name__}")
        raise AssertionError(f"{name} must be a Tensor, got {got}: wrap NumPy results as Tensor(...) (or _wrap(...)) "
                             "so that later modules, and gradients, can use them")
    if tuple(out.data.shape) != tuple(shape):
        raise AssertionError(f"{name}: expected shape {tuple(shape)}, got {tuple(out.data.shape)}")
    if dtype is not None and out.data.dtype != _dtype(dtype):
        raise AssertionError(f"{name}: expected dtype {_dtype(dtype)}, got {out.data.dtype}"
                             + (" (a float64 leak: NumPy's default)" if out.data.dtype == np.float64 else ""))
    return out


def gradcheck(observed, rtol: float = 1e-3, atol: float = 1e-5) -> bool:
    """Module 05's gradcheck decided in the parent from what the sandbox observed: for every
    float input, the analytic gradient against (f(x + eps) - f(x - eps)) / (2 eps), with
    module 05's tolerances and message. At least one input must have been checked."""
    import numpy as np

    try:
        checked, analytic, plus, minus, eps = observed
        eps = float(eps)
        pairs = [(int(pos), np.asarray(a, np.float64), np.asarray(p, np.float64), np.asarray(m, np.float64))
                 for pos, a, p, m in zip(checked, analytic, plus, minus, strict=True)]
    except (TypeError, ValueError) as e:
        raise AssertionError(f"gradcheck: the gradients could not be observed ({e})") from None
    if not pairs or not eps > 0:
        raise AssertionError("gradcheck: no float Tensor input was checked")
    for pos, a, p, m in pairs:
        numerical = (p - m) / (2 * eps)
        if a.shape != numerical.shape:
            raise AssertionError(f"gradcheck failed for argument {pos}: gradient of shape {a.shape}, "
                                 f"the input has shape {numerical.shape}")
        close = np.isclose(a, numerical, rtol=rtol, atol=atol)
        if not close.all():
            bad = tuple(int(i) for i in np.unravel_index(int(np.argmin(close.reshape(-1))), a.shape))
            raise AssertionError(f"gradcheck failed for argument {pos} (shape {a.shape}) at index {bad}: "
                                 f"expected (numerical) {numerical[bad]:.6g}, got (analytic) {a[bad]:.6g}")
    return True


def _numpy_import(name, globals=None, locals=None, fromlist=(), level=0):
    """The imports NumPy itself makes lazily while a check is evaluated; nothing else."""
    import sys

    if level == 0 and (name.split(".")[0] == "numpy" or name in sys.modules):
        return builtins.__import__(name, globals, locals, fromlist, level)
    raise ImportError(f"a check may not import {name!r}")


def _env(values):
    import numpy as np

    safe_builtins = {k: getattr(builtins, k) for k in dir(builtins) if not k.startswith("_")}
    for k in ("open", "exec", "eval", "compile", "input", "breakpoint", "__import__", "exit", "quit"):
        safe_builtins.pop(k, None)
    safe_builtins["isinstance"] = _isinstance
    safe_builtins["__import__"] = _numpy_import  # NumPy imports some of its parts on first use (np.tril)
    return {"__builtins__": safe_builtins, "np": np, "numpy": np, "math": math, "_v": values,
            "assert_tensor": assert_tensor, "gradcheck": gradcheck}


@dataclass
class Verdict:
    passed: bool
    message: str = ""  # for the learner; never holds hidden expected values


def _show(v) -> str:
    text = repr(v)
    return text if len(text) <= 300 else text[:300] + "..."


def evaluate(check: Check, payload) -> Verdict:
    """Decide one check from its observation (the decoded leaf values)."""
    import numpy as np

    kind, values = payload
    try:
        if check.kind == "raises":
            exc, values = values
            if exc is None:
                return Verdict(not check.must_raise, "no exception was raised")
            if not isinstance(exc, ExceptionValue):
                return Verdict(False, "the raised object is not an exception")
            expected = eval(check.handler, _env(values))  # noqa: S307 - the instructor's own expression
            classes = expected if isinstance(expected, tuple) else (expected,)
            names = {_qualname(c) for c in classes}
            ok = bool(names & set(exc.mro))
            return Verdict(ok, "" if ok else f"raised {exc.mro[0] if exc.mro else '?'}: {exc.message[:200]}")
        env = _env(values)
        with np.errstate(all="ignore"):
            result = eval(check.expr, env)  # noqa: S307
        if check.kind == "call":
            return Verdict(True)
        if type(result) not in (bool, np.bool_):
            result = bool(result)
        got = ", ".join(f"{src} = {_show(v)}" for src, v in zip(check.leaves, values))
        return Verdict(bool(result), "" if result else f"got {got}")
    except AssertionError as e:
        got = ", ".join(f"{src} = {_show(v)}" for src, v in zip(check.leaves, values))
        return Verdict(False, f"got {got}\n{str(e).strip()[:600]}")
    except Exception as e:  # noqa: BLE001 - any failure to evaluate is a failed check
        return Verdict(False, f"{type(e).__name__}: {str(e)[:300]}")
