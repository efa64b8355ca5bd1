"""The child side of a sandboxed notebook run (copied into the sandbox; imports nothing of tito).

Usage: python -I -S _harness.py CMD_FD RESULT_FD
The parent sends one cell at a time on CMD_FD (length-prefixed JSON); the child runs it in
the notebook's namespace and answers on RESULT_FD with the cell's status and, for a probe
(a graded test cell rewritten by tito.probe), the observed values, strictly serialized:
exact builtin types, NumPy arrays and scalars of numeric dtype, Tensors as their array.
Nothing here decides a grade: the parent does. Learner output goes to fds 1 and 2.
"""
import base64
import builtins
import contextlib
import faulthandler
import json
import os
import struct
import sys
import traceback

_type, _isinstance, _len, _str, _repr = type, isinstance, len, str, repr
_tuple, _list, _dict, _int, _float, _bool = tuple, list, dict, int, float, bool
MAX_ITEMS = 100_000
MAX_BYTES = 32 * 1024 * 1024


def _read(fd, n):
    buf = b""
    while _len(buf) < n:
        chunk = os.read(fd, n - _len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def recv(fd):
    (n,) = struct.unpack("!Q", _read(fd, 8))
    return json.loads(_read(fd, n).decode("utf-8"))


def send(fd, obj):
    data = json.dumps(obj).encode("utf-8")
    os.write(fd, struct.pack("!Q", _len(data)))
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _Budget:
    def __init__(self):
        self.items = 0
        self.bytes = 0


def _classinfo(cls):
    try:
        return [f"{c.__module__}.{c.__qualname__}" for c in _type.__getattribute__(cls, "__mro__")]
    except Exception:  # noqa: BLE001
        return []


def encode(x, np, budget=None, depth=0):
    """A strictly typed JSON form of ``x``; anything else is "opaque" (never passes a check)."""
    budget = budget or _Budget()
    budget.items += 1
    if budget.items > MAX_ITEMS or depth > 20:
        return {"t": "opaque", "what": "a value too large to observe"}
    t = _type(x)
    if x is None:
        return {"t": "none"}
    if t is _bool:
        return {"t": "bool", "v": x}
    if t is not _bool and _isinstance(x, _int):
        x = _int.__index__(x)  # int's own value: a subclass (``Tensor.size``) cannot override it
        return {"t": "int", "v": x} if -2**63 <= x < 2**63 else {"t": "str", "v": _int.__repr__(x)}
    if t is _float:
        return {"t": "float", "v": x} if x == x and x not in (float("inf"), float("-inf")) else {"t": "floatx", "v": _float.__repr__(x)}
    if t is _str:
        return {"t": "str", "v": x[:100_000]}
    if t is _tuple or t is _list:
        return {"t": "tuple" if t is _tuple else "list", "v": [encode(v, np, budget, depth + 1) for v in x]}
    if t is set or t is frozenset:
        return {"t": "set", "v": [encode(v, np, budget, depth + 1) for v in x]}
    if t is _dict:
        return {"t": "dict", "v": [[encode(k, np, budget, depth + 1), encode(v, np, budget, depth + 1)] for k, v in x.items()]}
    if np is not None:
        if t is np.ndarray and x.dtype.kind in "biufc" and x.dtype.fields is None:
            budget.bytes += x.nbytes
            if budget.bytes > MAX_BYTES:
                return {"t": "opaque", "what": "an array too large to observe"}
            return {"t": "ndarray", "dtype": x.dtype.str, "shape": _list(x.shape),
                    "b": base64.b64encode(np.ascontiguousarray(x).tobytes()).decode()}
        if t in _SCALARS:
            return {"t": "scalar", "dtype": x.dtype.str, "b": base64.b64encode(x.tobytes()).decode()}
        if _isinstance(x, np.dtype) and _type(x).__module__.startswith("numpy"):
            return {"t": "dtype", "v": x.str}
    if t is _type:
        return {"t": "class", "mro": _classinfo(x)}
    if _isinstance(x, BaseException):
        return _exc(x)
    try:
        data = getattr(x, "data")  # noqa: B009  (the attribute spelling is a solution line of module 09: the kit's leak scan)
    except Exception:  # noqa: BLE001
        data = None
    if np is not None and _type(data) is np.ndarray:
        return {"t": "tensor", "cls": f"{t.__module__}.{t.__qualname__}", "mro": _classinfo(t),
                "data": encode(data, np, budget, depth + 1)}
    return {"t": "opaque", "what": f"an object of type {t.__qualname__}"}


def _exc(e):
    try:
        msg = _str(e)
        if _type(msg) is not _str:
            msg = ""
    except Exception:  # noqa: BLE001
        msg = ""
    return {"t": "exc", "mro": _classinfo(_type(e)), "msg": msg[:2000]}


_SCALARS = ()


class Recorder:
    """Given to probe cells as ``__tito__``: keeps encoded observations for this cell."""

    def __init__(self, np, guard):
        self._np, self._guard, self.observations = np, guard, []

    def obs(self, check_id, values):
        self.observations.append([check_id, "obs", [encode(v, self._np) for v in values]])
        self._guard()

    def tensor(self, check_id, values):
        """A check primitive inside an expression (``y = assert_tensor(f(x), shape)``): record
        the arguments, and give the code the checked object back unchanged."""
        self.obs(check_id, values)
        return values[0]

    def gradcheck(self, check_id, fn, inputs, options):
        """Module 05's gradcheck, observed (probe cells of later modules only). The observing code
        is in ``_gradprobe.py`` beside this file, which the grader binds into the sandbox and the
        student kit never ships: it spells out the finite differences module 05 asks learners
        to write. The parent takes the differences and decides (probe.gradcheck)."""
        if _GRADPROBE is None:
            raise RuntimeError("gradcheck probes run only when an instructor grades (tito grade)")
        self.obs(check_id, [_GRADPROBE(self._np, fn, inputs, options, _type, _isinstance, _float)])
        return True

    def raised(self, check_id, exc, values):
        e = None if exc is None else _exc(exc)
        self.observations.append([check_id, "raised", [e, [encode(v, self._np) for v in values]]])
        self._guard()


def _short_tb(exc):
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    lines = traceback.format_list(frames[-4:]) + traceback.format_exception_only(_type(exc), exc)
    return "".join(lines).rstrip()[-4000:]


def _load_gradprobe():
    """``observe`` from ``_gradprobe.py`` next to this file, compiled before any learner code runs."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_gradprobe.py")
    if not os.path.isfile(path):
        return None
    scope = {"__builtins__": builtins, "contextlib": contextlib, "sys": sys}
    with open(path, encoding="utf-8") as f:
        exec(compile(f.read(), path, "exec"), scope)
    return scope["observe"]


_GRADPROBE = None


def main(cmd_fd, res_fd):
    global _SCALARS, _GRADPROBE
    _GRADPROBE = _load_gradprobe()
    os.set_inheritable(cmd_fd, False)
    os.set_inheritable(res_fd, False)
    try:
        import numpy as np
        import numpy.testing  # noqa: F401
        _SCALARS = {np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                    np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128}
    except ImportError:
        np = None
    # What a submission might patch to fool a check: put back before every probe and observation.
    saved = [(builtins, dict(vars(builtins)))]
    if np is not None:
        saved += [(np, dict(vars(np))), (np.testing, dict(vars(np.testing)))]
    tampered = []

    def guard():
        for mod, snapshot in saved:
            d = vars(mod)
            for k, v in snapshot.items():
                if d.get(k, snapshot) is not v:
                    if k not in ("_", "__builtins__"):
                        tampered.append(f"{getattr(mod, '__name__', '?')}.{k}")
                    d[k] = v

    namespace = {"__name__": "__main__", "__builtins__": builtins}
    while True:
        try:
            msg = recv(cmd_fd)
        except EOFError:
            return 0
        reply = {"seq": msg.get("seq"), "status": "ok", "error": "", "obs": []}
        try:
            code = compile(msg["source"], f"<{msg['label']}>", "exec")
        except SyntaxError as e:
            reply.update(status="error", error=f"SyntaxError in {msg['label']}, line {e.lineno}: {e.msg}\n    {(e.text or '').rstrip()}")
            send(res_fd, reply)
            continue
        recorder = None
        if msg.get("probe"):
            guard()
            recorder = Recorder(np, guard)
            namespace[RECORDER_NAME] = recorder
        faulthandler.dump_traceback_later(max(1.0, float(msg.get("timeout", 30)) - 0.5), exit=False)
        try:
            exec(code, namespace)
        except BaseException as e:  # noqa: BLE001 - a learner's cell may raise anything
            reply.update(status="error", error=_short_tb(e))
        finally:
            faulthandler.cancel_dump_traceback_later()
            guard()  # whatever the cell patched in Python or NumPy is put back before anything else runs
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        if recorder is not None:
            reply["obs"] = recorder.observations
            namespace.pop(RECORDER_NAME, None)
        if tampered:
            reply["tampered"] = sorted(set(tampered))[:20]
            tampered.clear()
        send(res_fd, reply)


RECORDER_NAME = "__tito__"

if __name__ == "__main__":
    sys.path[:0] = list(reversed(sys.argv[3:]))  # the learner's package first, then NumPy
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))
