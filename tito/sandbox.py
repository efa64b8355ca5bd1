"""A sandbox for learner code: bubblewrap where available, resource limits everywhere.

With ``bwrap`` (Debian's ``bubblewrap``) the notebook runs with no network, a read-only view
of the system, a private ``/tmp``, a writable copy of the one submission's folder as its
working directory, and nothing else of this machine: not the course checkout, not the
reference package, not other submissions. Its Python sees the standard library, NumPy and
the learner's own ``tinytorch`` only (``python -I -S`` with an explicit path). Every process
it starts lives in its own PID namespace and dies with the run. Without ``bwrap`` the same
run happens under resource limits only, with a warning saying so.

A :class:`Session` is one interpreter: the parent sends cells one at a time over a pipe and
reads each cell's outcome (and a probe's observations) from another pipe, with a wall-clock
deadline per cell. A cell that hangs kills the session; :func:`run_notebook` starts a new
one, re-runs the cells that defined things, and goes on with the next cell, so one
infinite loop costs only the tests that need the hanging function.

:func:`run_evaluation` is the Olympics worker's sandbox: one bundle evaluated by
``tito.olympics.evaluate`` in a fresh interpreter (``-I``) with a minimal environment, killed
with the worker, under the same resource limits and, with ``bwrap``, in new user, PID,
network, IPC and UTS namespaces as nobody, seeing only the system's libraries, the Python
installation, the ``tinytorch``/``tito`` packages, the bundle and the evaluation data (all
read-only) and an empty ``/tmp``: not the server's database or files.

Both use the same pieces: :func:`bwrap_works`, :func:`rlimits` and :func:`system_binds`.
"""
from __future__ import annotations

import ctypes
import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CELL_TIMEOUT = 30.0  # seconds of wall clock for one cell
DEFAULT_MEMORY_MB = 4096
HARNESS = Path(__file__).with_name("_harness.py")
# Grading only (absent from the student kit): the harness loads it from beside itself.
GRADPROBE = HARNESS.with_name("_gradprobe.py")


class SandboxWarning(UserWarning):
    pass


@dataclass
class Limits:
    cell_timeout: float = DEFAULT_CELL_TIMEOUT
    memory_mb: int = DEFAULT_MEMORY_MB
    cpu_seconds: int = 900  # the whole interpreter: a backstop behind the per-cell wall clock
    file_mb: int = 256  # largest file the code may write
    processes: int = 64  # RLIMIT_NPROC (not enforced by the kernel for root; the PID namespace is)
    max_output: int = 64_000  # bytes of learner output kept per run


def bwrap_path() -> str | None:
    if os.environ.get("TITO_NO_BWRAP"):
        return None
    return shutil.which("bwrap")


_BWRAP_OK: dict[str, bool] = {}


def bwrap_works() -> bool:
    """bwrap is installed and allowed to make namespaces here (containers may forbid it)."""
    path = bwrap_path()
    if path is None:
        return False
    if path not in _BWRAP_OK:
        try:
            r = subprocess.run([path, "--unshare-all", "--ro-bind", "/", "/", "true"], capture_output=True, timeout=20)
            _BWRAP_OK[path] = r.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _BWRAP_OK[path] = False
    return _BWRAP_OK[path]


def _numpy_dirs() -> list[Path]:
    import numpy

    pkg = Path(numpy.__file__).resolve().parent
    return [p for p in (pkg, pkg.parent / "numpy.libs") if p.is_dir()]


def _python() -> tuple[Path, Path]:
    """The base interpreter (not the venv's, whose site-packages may hold tito) and its prefix."""
    exe = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    return exe, Path(sys.base_prefix).resolve()


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child (preexec): get SIGKILL when the parent dies (Linux; a no-op elsewhere)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def rlimits(memory_mb: int, cpu_seconds: int, cpu_grace: int = 0, file_mb: int | None = None,
            processes: int | None = None, open_files: int | None = None, with_parent: bool = False):
    """A ``preexec_fn``: the child gets its own session (so its whole process group can be
    killed), dies with its parent if ``with_parent``, and gets these limits: address space,
    CPU seconds (SIGXCPU, then SIGKILL ``cpu_grace`` seconds later; this one must hold), file
    size, processes, open files, and no core dumps."""
    def apply():
        os.setsid()
        if with_parent:
            die_with_parent()
        import resource

        def lim(what, value):
            try:
                resource.setrlimit(what, (value, value))
            except (ValueError, OSError):
                pass
        lim(resource.RLIMIT_AS, memory_mb * 1024 * 1024)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + cpu_grace))
        for what, value in ((resource.RLIMIT_FSIZE, None if file_mb is None else file_mb * 1024 * 1024),
                            (resource.RLIMIT_NPROC, processes), (resource.RLIMIT_NOFILE, open_files),
                            (resource.RLIMIT_CORE, 0)):
            if value is not None:
                lim(what, value)
    return apply


def _preexec(limits: Limits):
    return rlimits(limits.memory_mb, limits.cpu_seconds, cpu_grace=5, file_mb=limits.file_mb,
                   processes=limits.processes)


def system_binds(tops=("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32")) -> list[str]:
    """bwrap arguments that show the system's directories read-only (symlinks as symlinks)."""
    args: list[str] = []
    for top in tops:
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.exists(top):
            args += ["--ro-bind", top, top]
    return args


@dataclass
class CellRun:
    label: str
    status: str  # ok | error | timeout | crashed | not run
    error: str = ""
    output: str = ""
    observations: list = field(default_factory=list)
    stuck_at: str = ""  # "<label>", line N (from faulthandler) when the cell hung
    tampered: list = field(default_factory=list)


def _stuck_line(output: str) -> str:
    lines = output.splitlines()
    start = max((i for i, l in enumerate(lines) if l.startswith("Timeout (")), default=None)
    if start is None:
        return ""
    for l in lines[start:]:
        m = re.match(r'\s*File "<([^>]+)>", line (\d+) in (\S+)', l)
        if m:
            return f"{m.group(1)}:{m.group(2)}:{m.group(3)}"
    return ""


class Session:
    """One sandboxed interpreter running a notebook's cells in order."""

    def __init__(self, workdir: Path, package_dir: Path | None, limits: Limits, sandbox: bool = True,
                 trusted: bool = False):
        """``trusted``: the course's own code (its reference lessons, see tito.runner.run_cells):
        this environment's interpreter with its packages (plots, progress bars), limits only."""
        self.limits = limits
        sandbox = sandbox and not trusted
        self.isolated = sandbox and bwrap_works()
        if sandbox and not self.isolated:
            warnings.warn("bubblewrap (bwrap) is not available: learner code runs under resource limits only, "
                          "and can read this machine's files. Install it (apt-get install bubblewrap).",
                          SandboxWarning, stacklevel=3)
        self._tmp = tempfile.mkdtemp(prefix="tito-sbx-")
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()
        exe, prefix = _python()
        lib = Path(self._tmp, "lib")
        lib.mkdir()
        if self.isolated:
            inner_lib, inner_pkg, inner_work = "/opt/tito/lib", "/opt/tito/pkg", "/submission"
            harness = "/opt/tito/harness.py"
            cmd = [bwrap_path(), "--unshare-all", "--die-with-parent", "--new-session",
                   "--uid", "1000", "--gid", "1000", "--hostname", "sandbox"]
            cmd += system_binds()
            if not str(prefix).startswith("/usr/"):
                cmd += ["--ro-bind", str(prefix), str(prefix)]
            for sp in prefix.glob("lib/python3*/site-packages"):
                cmd += ["--tmpfs", str(sp)]
            for sp in prefix.glob("lib/python3*/dist-packages"):
                cmd += ["--tmpfs", str(sp)]
            cmd += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", "/opt"]
            for d in _numpy_dirs():
                cmd += ["--ro-bind", str(d), f"{inner_lib}/{d.name}"]
            cmd += ["--ro-bind", str(HARNESS), harness]
            if GRADPROBE.is_file():
                cmd += ["--ro-bind", str(GRADPROBE), harness.rsplit("/", 1)[0] + "/" + GRADPROBE.name]
            if package_dir is not None:
                cmd += ["--ro-bind", str(package_dir), inner_pkg]
            cmd += ["--bind", str(workdir), inner_work, "--chdir", inner_work,
                    "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp", "--unsetenv", "PYTHONPATH",
                    str(exe), "-I", "-S", "-X", "faulthandler", harness, str(cmd_r), str(res_w), inner_lib]
            if package_dir is not None:
                cmd.append(inner_pkg)
            cwd = None
        else:
            harness = Path(self._tmp, "harness.py")
            shutil.copyfile(HARNESS, harness)
            if GRADPROBE.is_file():
                shutil.copyfile(GRADPROBE, harness.with_name(GRADPROBE.name))
            if trusted:
                cmd = [sys.executable, "-X", "faulthandler", str(harness), str(cmd_r), str(res_w)]
            else:
                for d in _numpy_dirs():
                    os.symlink(d, lib / d.name)
                cmd = [str(exe), "-I", "-S", "-X", "faulthandler", str(harness), str(cmd_r), str(res_w), str(lib)]
            if package_dir is not None:
                cmd.append(str(package_dir))
            cwd = str(workdir)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
               "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1"),
               "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "HOME": str(workdir), "MPLBACKEND": "Agg"}
        if trusted:
            from .runner import child_env

            env = {**child_env(package_dir), "MPLBACKEND": "Agg"}
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, pass_fds=(cmd_r, res_w), preexec_fn=_preexec(limits))
        os.close(cmd_r)
        os.close(res_w)
        os.set_blocking(self._cmd_w, False)
        self._out_fd = self.proc.stdout.fileno()
        os.set_blocking(self._out_fd, False)
        self._out = bytearray()  # the tail of the learner's output (a hang's traceback comes last)
        self._out_total = 0
        self._out_open = True
        self._seq = 0
        self.dead = False

    def _drain(self) -> bool:
        """Read what the learner's code printed so far (no thread: a process that escaped the
        sandbox and keeps the pipe open must not block us). False at end of file."""
        while True:
            try:
                chunk = os.read(self._out_fd, 1 << 20)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not chunk:
                return False
            self._out_total += len(chunk)
            self._out += chunk
            if len(self._out) > self.limits.max_output:
                del self._out[:len(self._out) - self.limits.max_output]

    def _output_since(self, mark: int) -> str:
        self._drain()
        skipped = max(0, self._out_total - len(self._out))
        return bytes(self._out[max(0, mark - skipped):]).decode("utf-8", "replace")

    def _read_reply(self, deadline: float):
        buf = b""
        need = 8
        header = True
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            r, _, _ = select.select([self._res_r, self._out_fd] if self._out_open else [self._res_r], [], [], min(left, 1.0))
            if self._out_fd in r:
                self._out_open = self._drain()
            if self._res_r not in r:
                continue
            chunk = os.read(self._res_r, 1 << 20)
            if not chunk:
                return "eof"
            buf += chunk
            while len(buf) >= need:
                if header:
                    (n,) = struct.unpack("!Q", buf[:8])
                    if n > 256 * 1024 * 1024:
                        return "eof"
                    buf, need, header = buf[8:], n, False
                else:
                    try:
                        return json.loads(buf[:need].decode("utf-8"))
                    except (ValueError, RecursionError):  # a forged or damaged frame
                        return "eof"

    def run_cell(self, label: str, source: str, probe: bool, timeout: float | None = None) -> CellRun:
        timeout = timeout or self.limits.cell_timeout
        if self.dead:
            return CellRun(label, "not run")
        self._seq += 1
        mark = self._out_total
        from .probe import strip_magics

        msg = json.dumps({"seq": self._seq, "label": label, "source": strip_magics(source), "probe": probe,
                          "timeout": timeout}).encode()
        try:
            self._write_all(struct.pack("!Q", len(msg)) + msg, time.monotonic() + timeout)
        except (OSError, TimeoutError):
            self.dead = True
            return CellRun(label, "crashed", error=self._exit_reason())
        reply = self._read_reply(time.monotonic() + timeout)
        if reply == "timeout":
            time.sleep(0.7)  # faulthandler fires half a second before the deadline
            self.kill()
            out = self._output_since(mark)
            return CellRun(label, "timeout", error=f"stopped after {timeout:g} s (the per-cell time limit)",
                           output=out[-4000:], stuck_at=_stuck_line(out))
        if reply == "eof" or not isinstance(reply, dict) or reply.get("seq") != self._seq:
            self.kill()
            return CellRun(label, "crashed", error=self._exit_reason(), output=self._output_since(mark)[-4000:])
        status = reply.get("status") if reply.get("status") in ("ok", "error") else "error"
        obs = reply.get("obs") if isinstance(reply.get("obs"), list) else []
        return CellRun(label, status, error=str(reply.get("error", ""))[:6000], output=self._output_since(mark)[-4000:],
                       observations=obs, tampered=[str(t) for t in reply.get("tampered", [])][:20])

    def _write_all(self, data: bytes, deadline: float):
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            _, w, _ = select.select([], [self._cmd_w], [], min(left, 1.0))
            if w:
                view = view[os.write(self._cmd_w, view[:65536]):]

    def _exit_reason(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        if code is None:
            return "the notebook process stopped answering"
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            if -code == signal.SIGXCPU:
                return "stopped by the CPU-time limit"
            return f"the notebook process was killed by {name}" + (" (a crash, or out of memory)" if -code == signal.SIGSEGV else "")
        return f"the notebook process exited with code {code}"

    def kill(self):
        self.dead = True
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def close(self):
        self.kill()
        for fd in (self._cmd_w, self._res_r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.proc.stdout.close()
        except OSError:
            pass
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class NotebookCell:
    label: str
    source: str
    probe: bool = False  # a graded test cell's probe (observations expected)


def run_notebook(cells: list[NotebookCell], workdir: Path, package_dir: Path | None, limits: Limits,
                 sandbox: bool = True, max_restarts: int = 12, trusted: bool = False) -> list[CellRun]:
    """Run ``cells`` in order in a sandboxed interpreter. A cell that hangs or crashes the
    interpreter is recorded; a fresh interpreter re-runs the definitions before it (the cells
    that are not probes and succeeded) and the run goes on with the next cell (at most
    ``max_restarts`` times: with 0, the cells after a crash are not run)."""
    results: list[CellRun] = []
    session = Session(workdir, package_dir, limits, sandbox, trusted)
    restarts = 0
    try:
        for i, cell in enumerate(cells):
            if session.dead:
                if restarts >= max_restarts:
                    results.append(CellRun(cell.label, "not run", error="too many crashes or hangs earlier"))
                    continue
                session.close()
                restarts += 1
                session = Session(workdir, package_dir, limits, sandbox, trusted)
                for prev, res in zip(cells[:i], results):
                    if not prev.probe and res.status == "ok":
                        session.run_cell(prev.label, prev.source, False)
                        if session.dead:
                            break
                if session.dead:
                    results.append(CellRun(cell.label, "not run", error="an earlier cell crashed again when re-run"))
                    continue
            results.append(session.run_cell(cell.label, cell.source, cell.probe))
    finally:
        session.close()
    return results


# ----------------------------------------------------------------------------- the Olympics evaluator

def _package_roots() -> list[str]:
    import tinytorch
    import tito

    roots = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    for mod in (tinytorch, tito):
        roots.add(os.path.dirname(os.path.realpath(mod.__file__)))
    import numpy
    roots.add(os.path.dirname(os.path.dirname(os.path.realpath(numpy.__file__))))
    return sorted(r for r in roots if r)


def _bwrap_prefix(binds: list[tuple[str, str]]) -> list[str]:
    cmd = [bwrap_path(), "--unshare-all", "--die-with-parent", "--new-session",
           "--cap-drop", "ALL", "--uid", "65534", "--gid", "65534", "--hostname", "sandbox", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    cmd += system_binds(("/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc/alternatives", "/etc/ld.so.cache"))
    for root in _package_roots():
        if not root.startswith("/usr/"):
            cmd += ["--ro-bind", root, root]
    for src, dest in binds:
        cmd += ["--ro-bind", src, dest]
    return cmd + ["--chdir", "/tmp"]


@dataclass
class Outcome:
    result: dict | None        # the child's JSON result, when it finished
    error: str                 # why there is no result ("" when there is)
    sandbox: str               # what confined it: "bwrap+rlimits" or "rlimits"


def kill_stale(pgid: int) -> int:
    """Kill what is left of a sandbox whose worker died (its process group ``pgid``): bubblewrap
    can lose a process in its own set-up when its parent is killed at that moment. Only
    processes of that group that are bwrap or the evaluator are touched. Returns how many."""
    killed = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            pgrp = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2])
            cmd = (proc / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if pgrp == pgid and (b"bwrap" in cmd or b"tito.olympics.evaluate" in cmd):
            try:
                os.kill(int(proc.name), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def run_evaluation(bundle_path: Path, eval_dir: Path, timeout: float = 120.0,
                   memory_mb: int = 2048, use_bwrap: bool | None = None,
                   pidfile: Path | None = None) -> Outcome:
    """Evaluate ``bundle_path`` on ``eval_dir`` in a confined child; never raises for the
    child's failures (they come back as ``Outcome.error``). ``pidfile`` receives the child's
    process group, for ``kill_stale`` should this process die during the evaluation."""
    use_bwrap = bwrap_works() if use_bwrap is None else use_bwrap
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp", "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0",
           "PYTHONDONTWRITEBYTECODE": "1"}
    # -I drops PYTHONPATH, so the packages are found through the installation (pip install -e
    # records them in site-packages), exactly as the server finds them.
    args = [sys.executable, "-I", "-m", "tito.olympics.evaluate"]
    if use_bwrap:
        cmd = _bwrap_prefix([(str(Path(bundle_path).resolve().parent), "/tmp/in"),
                             (str(Path(eval_dir).resolve()), "/tmp/data")])
        cmd += args + [f"/tmp/in/{Path(bundle_path).name}", "/tmp/data"]
        how = "bwrap+rlimits"
    else:
        cmd, how = args + [str(bundle_path), str(eval_dir)], "rlimits"
    proc = subprocess.Popen(cmd, env=env, cwd=str(Path(bundle_path).parent), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=rlimits(memory_mb, int(timeout) + 1, file_mb=16, open_files=256,
                                               with_parent=True))
    if pidfile is not None:
        Path(pidfile).write_text(str(proc.pid))          # setsid: its pid is its process group
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        return Outcome(None, f"stopped after {timeout:g} s (the evaluation time limit)", how)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    try:
        doc = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and "error" in doc:
        return Outcome(None, str(doc["error"])[:2000], how)
    if proc.returncode == 0 and isinstance(doc, dict):
        return Outcome(doc, "", how)
    tail = (err or "").strip().splitlines()[-3:]
    if proc.returncode in (-signal.SIGKILL, -signal.SIGXCPU) or "MemoryError" in (err or ""):
        why = f"stopped by its limits ({memory_mb} MB of memory, {timeout:.0f} s of CPU)"
    else:
        why = f"the evaluation failed (exit code {proc.returncode})"
    return Outcome(None, why + (": " + " | ".join(tail) if tail else ""), how)
