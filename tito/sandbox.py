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
"""
from __future__ import annotations

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


def _preexec(limits: Limits):
    def apply():
        os.setsid()
        import resource

        def lim(what, value):
            try:
                resource.setrlimit(what, (value, value))
            except (ValueError, OSError):
                pass
        mem = limits.memory_mb * 1024 * 1024
        lim(resource.RLIMIT_AS, mem)
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
        lim(resource.RLIMIT_FSIZE, limits.file_mb * 1024 * 1024)
        lim(resource.RLIMIT_NPROC, limits.processes)
        lim(resource.RLIMIT_CORE, 0)
    return apply


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

    def __init__(self, workdir: Path, package_dir: Path | None, limits: Limits, sandbox: bool = True):
        self.limits = limits
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
            for top in ("usr", "bin", "sbin", "lib", "lib64", "lib32"):
                p = Path("/", top)
                if p.is_symlink():
                    cmd += ["--symlink", os.readlink(p), str(p)]
                elif p.is_dir():
                    cmd += ["--ro-bind", str(p), str(p)]
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
            for d in _numpy_dirs():
                os.symlink(d, lib / d.name)
            harness = Path(self._tmp, "harness.py")
            shutil.copyfile(HARNESS, harness)
            if GRADPROBE.is_file():
                shutil.copyfile(GRADPROBE, harness.with_name(GRADPROBE.name))
            cmd = [str(exe), "-I", "-S", "-X", "faulthandler", str(harness), str(cmd_r), str(res_w), str(lib)]
            if package_dir is not None:
                cmd.append(str(package_dir))
            cwd = str(workdir)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
               "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1"),
               "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "HOME": str(workdir), "MPLBACKEND": "Agg"}
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
                 sandbox: bool = True, max_restarts: int = 12) -> list[CellRun]:
    """Run ``cells`` in order in a sandboxed interpreter. A cell that hangs or crashes the
    interpreter is recorded; a fresh interpreter re-runs the definitions before it (the cells
    that are not probes and succeeded) and the run goes on with the next cell."""
    results: list[CellRun] = []
    session = Session(workdir, package_dir, limits, sandbox)
    restarts = 0
    try:
        for i, cell in enumerate(cells):
            if session.dead:
                if restarts >= max_restarts:
                    results.append(CellRun(cell.label, "not run", error="too many crashes or hangs earlier"))
                    continue
                session.close()
                restarts += 1
                session = Session(workdir, package_dir, limits, sandbox)
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
