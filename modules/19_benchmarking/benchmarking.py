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
# # Module 19: Benchmarking
#
# "My version is 10% faster" is a claim about a noisy process. Run the same function twice on a
# shared laptop and the two timings differ by a few percent; run it while another program
# compiles and they differ by half. The profiler of module 14 tells you *where* time goes; this
# module tells you whether a change *really* made it go faster. You build a benchmark harness
# (warm-up, loop calibration, at least 9 repetitions, the median with a confidence interval,
# outliers counted, the machine recorded), an A/B comparison that runs two variants interleaved
# and decides with a rank test whether they differ, and MLPerf's three inference scenarios:
# SingleStream latency percentiles, Offline throughput, and a Server with random arrivals and a
# latency bound. And you measure measurement itself: the clock's resolution, run-to-run noise,
# and what BLAS threads do on a loaded two-core machine.

# %% [markdown]
# ## Connection map
#
# ```
#   built so far                      you build now                     this unlocks
#   ------------                      -------------                     ------------
#   14 Profiler: where time goes -->  benchmark(fn): median + CI   -->  20 capstone: MLPerf-style
#   14 Amdahl: predicted gains   -->  compare(a, b): interleaved,  -->     submission with its machine
#   01-13 models to serve        -->    ratio, CI, Mann-Whitney          and its error bars
#                                     SingleStream / Offline /          every speed-up you claim from
#                                       Server scenarios, reports         now on: a compare() result
# ```

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp benchmarking.benchmark
#| export
import json
import math
import os
import platform
import time

import numpy as np

# %% [markdown]
# ## 1. The machine is part of the result
#
# A number without its machine is not a result. The same step takes 80 ms on an idle core and
# 200 ms while two other programs run; it depends on the CPU, on how many threads BLAS may use,
# and on NumPy's BLAS build. `environment()` (provided) records all of it, including the load
# average: the number of processes wanting a CPU, averaged over the last minute. On a 2-core
# machine a load of 2 means the cores are full; above that, your benchmark waits its turn.

# %% nbgrader={"grade": false, "grade_id": "environment", "locked": true, "schema_version": 3, "solution": false}
#| export
BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _blas_info() -> str:
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{deps.get('name', '?')} {deps.get('version', '')}".strip()
    except Exception:            # older NumPy: no dict mode
        return "unknown"


def environment() -> dict:
    """The machine a measurement ran on: CPU, cores, BLAS threads and build, versions, load."""
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        load = None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "usable_cores": usable,
            "blas_threads": {v: os.environ[v] for v in BLAS_ENV if v in os.environ} or "default",
            "blas": _blas_info(), "numpy": np.__version__, "python": platform.python_version(),
            "platform": platform.platform(terse=True), "load_average": load}


def describe_environment(env=None) -> str:
    """environment() as one line, for the header of a report."""
    env = env or environment()
    threads = env["blas_threads"]
    threads = threads if isinstance(threads, str) else ", ".join(f"{k}={v}" for k, v in threads.items())
    load = "n/a" if env["load_average"] is None else " ".join(f"{v:.2f}" for v in env["load_average"])
    return (f"{env['cpu']}, {env['cores']} cores ({env['usable_cores']} usable), BLAS {env['blas']} "
            f"threads {threads}, numpy {env['numpy']}, python {env['python']}, load average (1/5/15 min) {load}")


# %%
print(describe_environment())

# %% [markdown]
# ## 2. The clock
#
# `time.perf_counter()` is the clock for durations: monotonic (never jumps back when the system
# clock is corrected) and fine-grained. Its *resolution* is the smallest step it can show;
# reading it also costs time. Both bound what one timing can resolve, so we never time one call
# of a fast function: we time a *loop* of calls long enough that the clock's error is tiny.
#
# ```
#   clock tick ~ 50 ns, one call of f = 2 us:   error of one timing up to 2.5%
#   loop of 500 calls = 1 ms:                    error 0.005%
# ```
#
# Three clocks, three questions:
#
# ```
#   "wall"    perf_counter   how long did I wait?           includes time other programs took
#   "cpu"     process_time   how much CPU did my process    all threads (BLAS workers too); some
#                            use?                           kernels update it only at scheduler
#                                                           ticks when a CPU-time limit is set
#   "thread"  thread_time    how much CPU did this thread   exact, but misses BLAS worker threads:
#                            use?                           right for single-threaded Python code
# ```
#
# On a shared machine, wall time of a single-threaded function includes every moment another
# program held the core; its thread time does not. (`tito module test` runs your notebook
# under a CPU-time limit, which on Linux makes `process_time` tick-coarse: the tests below use
# `thread` for single-threaded work.)

# %% nbgrader={"grade": false, "grade_id": "timer-resolution", "locked": true, "schema_version": 3, "solution": false}
#| export
TIMERS = {"wall": time.perf_counter, "cpu": time.process_time, "thread": time.thread_time}
CLOCK_NAMES = {"wall": "perf_counter", "cpu": "process_time", "thread": "thread_time"}


def timer_resolution(timer="wall", samples=2000) -> float:
    """The smallest non-zero difference between successive readings of the clock, in seconds."""
    clock = TIMERS[timer]
    best = float("inf")
    for _ in range(samples):
        t0 = clock()
        t1 = clock()
        while t1 == t0:
            t1 = clock()
        best = min(best, t1 - t0)
    return best


# %%
for _name in TIMERS:
    print(f"{_name:>6} clock: {time.get_clock_info(CLOCK_NAMES[_name]).implementation}, "
          f"measured step {timer_resolution(_name, 500) * 1e9:.0f} ns")

# %% [markdown]
# ## 3. Calibration: how many calls per sample?
#
# Double the loop count until one sample lasts at least `min_time`:
#
# ```
#   loops  1 -> 12 us    2 -> 25 us    4 -> 50 us  ...  128 -> 1.6 ms  >= 1 ms: use 128
# ```

# %% nbgrader={"grade": false, "grade_id": "calibrate", "locked": false, "schema_version": 3, "solution": true}
#| export
def time_loop(fn, loops, timer="wall") -> float:
    """Seconds per call of ``fn`` averaged over ``loops`` calls (provided)."""
    clock = TIMERS[timer]
    t0 = clock()
    for _ in range(loops):
        fn()
    return (clock() - t0) / loops


def calibrate(fn, min_time=0.002, timer="wall", max_loops=1 << 20) -> int:
    """Smallest power of two ``loops`` such that ``loops`` calls of fn take >= min_time seconds.

    HINT: start at 1, double while loops * time_loop(fn, loops) < min_time and loops < max_loops.
    """
    if min_time <= 0:
        raise ValueError(f"min_time must be > 0 seconds, got {min_time}")
    ### BEGIN SOLUTION
    loops = 1
    while loops < max_loops and loops * time_loop(fn, loops, timer) < min_time:
        loops *= 2
    return loops
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-calibrate", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_calibrate():
    slow = lambda: time.sleep(0.003)
    assert calibrate(slow, min_time=0.002) == 1, "one call already lasts min_time"
    fast = lambda: None
    n = calibrate(fast, min_time=0.001)
    assert n > 1 and n & (n - 1) == 0, f"a power of two above 1 for a near-empty function, got {n}"
    assert n * time_loop(fast, n) >= 0.0005, "the calibrated loop must last about min_time"
    try:
        calibrate(fast, min_time=0)
    except ValueError:
        pass
    else:
        raise AssertionError("min_time <= 0 must raise ValueError")
    ### BEGIN HIDDEN TESTS
    assert calibrate(fast, min_time=10.0, max_loops=8) == 8, "max_loops caps the count"
    ### END HIDDEN TESTS


test_unit_calibrate()

# %% [markdown]
# ## 4. The median and its confidence interval
#
# Timing noise is one-sided and heavy-tailed: the machine can make you slower, never faster.
# The mean is dragged by the slow outliers; the **median** is not. How sure are we of it? With
# n samples sorted, x(1) <= ... <= x(n), each sample is below the true median with probability
# 1/2, so the number below it is Binomial(n, 1/2). The interval [x(j), x(k)] covers the true
# median with probability P(j <= B < k), B ~ Binomial(n, 1/2), no assumption about the shape
# of the noise needed:
#
# ```
#   n = 9:  P(2 <= B <= 7) = 1 - 2 * (1 + 9) / 512 = 0.961   ->  [x(2), x(8)] is a 96% interval
#   n = 9 is the smallest n whose interval excludes the extremes with >= 95% coverage.
# ```
#
# Write the interval: find the largest j such that the tails P(B < j) on each side add up to at
# most 1 - confidence.

# %% nbgrader={"grade": false, "grade_id": "median-ci", "locked": false, "schema_version": 3, "solution": true}
#| export
def median_ci(samples, confidence=0.95):
    """(low, high): a distribution-free confidence interval for the median, from order statistics.

    Sorted samples x[0..n-1]; the interval is (x[j-1], x[n-j]) with the largest j >= 1 such that
    2 * P(B <= j - 1) <= 1 - confidence, B ~ Binomial(n, 1/2). With n < 6 no j qualifies at 95%:
    return (min, max).
    HINT: P(B <= m) = sum(math.comb(n, i) for i in range(m + 1)) / 2**n
    """
    x = np.sort(np.asarray(samples, dtype=np.float64))
    n = len(x)
    if n == 0:
        raise ValueError("median_ci needs at least one sample")
    ### BEGIN SOLUTION
    j = 0
    cdf = 0.0
    for m in range(n // 2):
        cdf += math.comb(n, m) / 2.0 ** n          # P(B <= m)
        if 2 * cdf <= 1 - confidence:
            j = m + 1
        else:
            break
    if j == 0:
        return float(x[0]), float(x[-1])
    return float(x[j - 1]), float(x[n - j])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-median-ci", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_median_ci():
    assert median_ci(np.arange(1, 10)) == (2.0, 8.0), f"n=9: [x(2), x(8)], got {median_ci(np.arange(1, 10))}"
    assert median_ci([3, 1, 2]) == (1.0, 3.0), "too few samples: the whole range"
    lo, hi = median_ci(np.arange(100))
    assert (lo, hi) == (39.0, 60.0), f"n=100: ranks 40 and 61, got {(lo, hi)}"
    # coverage, by simulation: a skewed distribution whose median is known (exponential: ln 2)
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(400):
        lo, hi = median_ci(rng.exponential(1.0, 15))
        hits += lo <= math.log(2) <= hi
    assert hits / 400 >= 0.93, f"a 95% interval must cover the median ~95% of the time, got {hits / 400:.3f}"
    ### BEGIN HIDDEN TESTS
    assert median_ci(np.arange(1, 10), confidence=0.5)[0] >= 3.0, "a lower confidence gives a narrower interval"
    try:
        median_ci([])
    except ValueError:
        pass
    else:
        raise AssertionError("no samples must raise")
    ### END HIDDEN TESTS


test_unit_median_ci()

# %% [markdown]
# ## 5. `benchmark(fn)`: the harness
#
# ```
#   warm-up calls (caches, first touch of memory, lazy imports)
#   calibrate loops so that one sample >= min_time
#   repeat >= 9 samples of `loops` calls each          -> seconds per call
#   median, 95% CI of the median, IQR, outliers (Tukey: beyond 1.5 IQR from the quartiles)
#   + the environment
# ```
#
# Outliers are counted and reported, never deleted: they are what the machine did.

# %% nbgrader={"grade": false, "grade_id": "benchmark", "locked": false, "schema_version": 3, "solution": true}
#| export
class BenchmarkResult:
    """Samples (seconds per call) of one function and their statistics."""

    def __init__(self, name, samples, loops, timer, warmup, env):
        self.name, self.loops, self.timer, self.warmup, self.env = name, loops, timer, warmup, env
        self.samples = np.asarray(samples, dtype=np.float64)
        self.median = float(np.median(self.samples))
        self.ci = median_ci(self.samples)
        q1, q3 = np.percentile(self.samples, [25, 75])
        self.iqr = float(q3 - q1)
        self.outliers = int(np.sum((self.samples < q1 - 1.5 * self.iqr) | (self.samples > q3 + 1.5 * self.iqr)))
        self.min = float(self.samples.min())

    @property
    def settings(self) -> str:
        return (f"tinytorch.benchmarking.benchmark: {len(self.samples)} samples x {self.loops} loop(s), "
                f"{self.warmup} warm-up, {self.timer} clock, median with 95% order-statistic CI")

    def to_dict(self) -> dict:
        return {"name": self.name, "median_s": self.median, "ci_s": list(self.ci), "iqr_s": self.iqr,
                "min_s": self.min, "outliers": self.outliers, "samples": len(self.samples),
                "loops": self.loops, "timer": self.timer, "settings": self.settings, "environment": self.env}

    def __repr__(self):
        lo, hi = self.ci
        return (f"{self.name}: median {_fmt_s(self.median)} (95% CI {_fmt_s(lo)}-{_fmt_s(hi)}), "
                f"{len(self.samples)} x {self.loops} loops, {self.outliers} outlier(s)")


def _fmt_s(s) -> str:
    s = float(s)
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.2f} us"


def benchmark(fn, *, name=None, warmup=1, repeats=9, min_time=0.002, timer="wall", loops=None) -> BenchmarkResult:
    """Time ``fn()`` (no arguments: wrap with a lambda). Returns a BenchmarkResult.

    repeats >= 9 samples; each sample times ``loops`` calls (calibrated to ``min_time`` if None).
    HINT: call fn warmup times; loops = loops or calibrate(fn, min_time, timer);
          samples = [time_loop(fn, loops, timer) for each repeat]
    """
    if not callable(fn):
        raise TypeError(f"benchmark needs a callable, got {type(fn).__name__}")
    if repeats < 9:
        raise ValueError(f"repeats must be >= 9 for a 95% interval of the median, got {repeats}")
    if timer not in TIMERS:
        raise ValueError(f"timer must be one of {sorted(TIMERS)}, got {timer!r}")
    ### BEGIN SOLUTION
    for _ in range(warmup):
        fn()
    loops = int(loops) if loops else calibrate(fn, min_time, timer)
    samples = [time_loop(fn, loops, timer) for _ in range(repeats)]
    ### END SOLUTION
    if min(samples) <= 0:
        raise ValueError(f"a sample measured 0 s with the {timer!r} clock: the clock is coarser than one "
                         f"sample of {loops} call(s); raise min_time (or loops) or use another timer")
    return BenchmarkResult(name or getattr(fn, "__name__", "fn"), samples, loops, timer, warmup, environment())


# %% nbgrader={"grade": true, "grade_id": "test-benchmark", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_benchmark():
    calls = []
    r = benchmark(lambda: calls.append(1), warmup=2, repeats=9, min_time=0.0005)
    assert len(r.samples) == 9, f"9 samples, got {len(r.samples)}"
    assert len(calls) >= 2 + 9 * r.loops, "warm-up calls plus repeats x loops calls"
    calls.clear()
    benchmark(lambda: calls.append(1), warmup=2, repeats=9, loops=4)    # loops given: no calibration
    assert len(calls) == 2 + 9 * 4, f"2 warm-up calls + 9 samples of 4 calls = 38, got {len(calls)}"
    assert r.ci[0] <= r.median <= r.ci[1], (r.ci, r.median)
    s = benchmark(lambda: time.sleep(0.002), repeats=9, min_time=0.001)
    assert 0.0019 <= s.median < 0.2, f"sleep(2 ms) should time at >= 2 ms, got {s.median}"
    d = s.to_dict()
    assert d["environment"]["cores"] == os.cpu_count() and "settings" in d, d
    json.dumps(d)                                       # the result is JSON-serializable
    for bad in (dict(repeats=5), dict(timer="sundial")):
        try:
            benchmark(lambda: None, **bad)
        except ValueError:
            continue
        raise AssertionError(f"benchmark(..., {bad}) must raise ValueError")
    ### BEGIN HIDDEN TESTS
    out = BenchmarkResult("x", [1.0] * 8 + [100.0], 1, "wall", 0, {})
    assert out.outliers == 1 and out.median == 1.0, "one slow sample is an outlier, the median ignores it"
    try:
        benchmark(42)
    except TypeError:
        pass
    else:
        raise AssertionError("a non-callable must raise TypeError")
    ### END HIDDEN TESTS


test_unit_benchmark()

# %% [markdown]
# ## 6. Is B different from A? The Mann-Whitney U test
#
# Two sets of timings overlap. The Mann-Whitney U test asks: if A and B were the same, how
# surprising would it be that B's samples rank above A's so often? Pool all samples, rank them
# (ties share the average rank), and add up A's ranks:
#
# ```
#   A = [10, 11, 13]   B = [12, 14, 15]      pooled ranks: 10->1 11->2 12->3 13->4 14->5 15->6
#   R_A = 1 + 2 + 4 = 7        U_A = R_A - n_A (n_A + 1) / 2 = 7 - 6 = 1
#   U_A counts the (a, b) pairs where a > b: only (13, 12).  Under "same": mean n_A n_B / 2 = 4.5
# ```
#
# For n_A, n_B >= 8 or so, U is close to normal with mean n_A n_B / 2 and variance
# n_A n_B / 12 * ((N + 1) - sum(t^3 - t) / (N (N - 1))) (t: the size of each group of ties,
# N = n_A + n_B); z = (|U - mean| - 1/2) / sd, and the two-sided p-value is erfc(z / sqrt 2).
# No SciPy needed. It uses ranks only, so one sample slowed 10x by the machine counts as just
# "the largest", not as a huge number.

# %% nbgrader={"grade": false, "grade_id": "mann-whitney", "locked": false, "schema_version": 3, "solution": true}
#| export
def mann_whitney_u(a, b):
    """(U_a, p): Mann-Whitney U of sample a against b and the two-sided p-value (normal
    approximation with tie and continuity corrections).

    HINT: uniq, inv, counts = np.unique(pooled, return_inverse=True, return_counts=True);
          the average rank of a group of ties is its last rank - (count - 1) / 2.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"mann_whitney_u needs >= 2 samples on each side, got {len(a)} and {len(b)}")
    ### BEGIN SOLUTION
    n1, n2 = len(a), len(b)
    N = n1 + n2
    _, inv, counts = np.unique(np.concatenate([a, b]), return_inverse=True, return_counts=True)
    avg_rank = np.cumsum(counts) - (counts - 1) / 2.0
    ranks = avg_rank[inv]
    u = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2.0)
    mean = n1 * n2 / 2.0
    ties = float(np.sum(counts.astype(np.float64) ** 3 - counts))
    var = n1 * n2 / 12.0 * ((N + 1) - ties / (N * (N - 1)))
    if var <= 0:
        return u, 1.0
    z = max(abs(u - mean) - 0.5, 0.0) / math.sqrt(var)
    return u, math.erfc(z / math.sqrt(2.0))
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-mann-whitney", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_mann_whitney():
    u, _ = mann_whitney_u([10, 11, 13], [12, 14, 15])
    assert u == 1.0, f"the worked example: U_A = 1, got {u}"
    rng = np.random.default_rng(0)
    same = [mann_whitney_u(rng.normal(0, 1, 30), rng.normal(0, 1, 30))[1] for _ in range(200)]
    rate = np.mean(np.array(same) < 0.05)
    assert 0.01 <= rate <= 0.10, f"under 'same', p < 0.05 must happen ~5% of the time, got {rate:.3f}"
    _, p = mann_whitney_u(rng.normal(0, 1, 30), rng.normal(1.5, 1, 30))
    assert p < 1e-4, f"a shift of 1.5 sd over 30 samples must be found, p = {p}"
    _, p = mann_whitney_u([1, 1, 1, 1], [1, 1, 1, 1])
    assert p == 1.0, "all tied: no evidence of a difference"
    # Ties shrink the variance: ranks 1 | 3.5 x4 | 7.5 x4 | 11 x3, U = 5.5, mean 18,
    # var = 36/12 * (13 - 144/132) = 35.73, z = (12.5 - 0.5) / 5.98 = 2.01, p = 0.045
    # (without the tie term: var = 39, p = 0.055).
    u, p = mann_whitney_u([1, 2, 2, 2, 3, 3], [2, 3, 3, 4, 4, 4])
    assert u == 5.5 and 0.040 < p < 0.050, f"tied ranks: U = 5.5, p = 0.045 expected, got {u}, {p}"
    ### BEGIN HIDDEN TESTS
    # the normal approximation against the exact distribution of U (all 12,870 splits of 16 ranks)
    import itertools
    a, b = [1, 2, 3, 4, 6, 9, 10, 11], [5, 7, 8, 12, 13, 14, 15, 16]
    u, p = mann_whitney_u(a, b)
    us = np.array([sum(c) - 36 for c in itertools.combinations(range(1, 17), 8)])
    exact = np.mean(np.abs(us - 32) >= abs(u - 32))
    assert abs(p - exact) < 0.01, (u, p, exact)
    ### END HIDDEN TESTS


test_unit_mann_whitney()

# %% [markdown]
# ## 7. `compare(fn_a, fn_b)`: an A/B test that survives a noisy machine
#
# Timing A for a minute and then B for a minute is the classic mistake: if the machine gets
# busier during B's minute, B looks slower. Interleave instead, and alternate the order
# (A B, B A, A B, ...), so that a slow moment of the machine hits both:
#
# ```
#   round    1      2      3      4    ...
#           A  B   B  A   A  B   B  A          one sample = the fastest of `inner` timings of
#                                              `loops` calls (same loops for both)
#   ratio_i = b_i / a_i  (paired: same moment, same machine state)
# ```
#
# The ratio B/A is the median of the paired ratios r_i = b_i / a_i, with its order-statistic
# interval. A slow moment of the machine hits both samples of a round and cancels in r_i, so the
# decision uses the ratios too. Take log r_i of the A-first rounds, and -log r_i of the B-first
# rounds. If A and B are the same, both sets are the same noise, symmetric around 0 (and a
# bias of going first or second has the same sign in both, since the order is flipped). If B is
# 10% slower, the first set sits near +log 1.1 and the second near -log 1.1. The Mann-Whitney
# test between the two sets (independent rounds) decides:
#
# ```
#   round   order   r_i = b/a    set
#   0       A B     1.11         X:  log r  = +0.104
#   1       B A     1.09         Y: -log r  = -0.086       X vs Y: Mann-Whitney p
#   2       A B     1.08         X:  log r  = +0.077       same: X ~ Y, 10% slower: X > Y
# ```
#
# B is declared **different** only if the test rejects "same" at level `alpha` *and* the
# interval of the ratio excludes 1. With alpha = 0.01, two identical functions are called
# different in at most about 1% of comparisons; `tests/benchmarking/` counts trials to check
# this, and that a 10% difference is found.

# %% nbgrader={"grade": false, "grade_id": "compare", "locked": false, "schema_version": 3, "solution": true}
#| export
class Comparison:
    """B relative to A: .ratio (time_b / time_a, > 1: B slower), .ci, .p_value, .different."""

    def __init__(self, a, b, loops, timer, alpha, names, env, inner=1):
        self.inner = inner
        self.a, self.b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        self.loops, self.timer, self.alpha, self.names, self.env = loops, timer, alpha, names, env
        if not (np.all(self.a > 0) and np.all(self.b > 0)):
            raise ValueError(f"a sample measured 0 s with the {timer!r} clock: the clock is coarser than "
                             f"one sample of {loops} call(s); raise min_time (or loops) or use another timer")
        ratios = self.b / self.a
        self.ratio = float(np.median(ratios))
        self.ci = median_ci(ratios)
        log_r = np.log(ratios)
        # A-first rounds (even r) against the mirrored B-first rounds: see the text above
        self.u, self.p_value = mann_whitney_u(log_r[0::2], -log_r[1::2])
        self.different = bool(self.p_value < alpha and not (self.ci[0] <= 1.0 <= self.ci[1]))

    @property
    def settings(self) -> str:
        return (f"tinytorch.benchmarking.compare: {len(self.a)} interleaved rounds (A B, B A, ...), "
                f"each sample the fastest of {self.inner} timings of {self.loops} loop(s), {self.timer} clock, "
                f"Mann-Whitney alpha {self.alpha}")

    def to_dict(self) -> dict:
        return {"a": self.names[0], "b": self.names[1], "ratio_b_over_a": self.ratio,
                "ci": list(self.ci), "p_value": self.p_value, "different": self.different,
                "median_a_s": float(np.median(self.a)), "median_b_s": float(np.median(self.b)),
                "settings": self.settings, "environment": self.env}

    def __repr__(self):
        verdict = "different" if self.different else "no significant difference"
        return (f"{self.names[1]} / {self.names[0]} = {self.ratio:.3f}x (95% CI {self.ci[0]:.3f}-"
                f"{self.ci[1]:.3f}), Mann-Whitney p = {self.p_value:.2g}: {verdict}")


def compare(fn_a, fn_b, *, names=("A", "B"), rounds=41, warmup=1, min_time=0.001, inner=3,
            timer="wall", alpha=0.01, loops=None) -> Comparison:
    """Run fn_a and fn_b interleaved (A B, B A, ...) for ``rounds`` rounds.

    One sample = the fastest of ``inner`` back-to-back timings of ``loops`` calls (the least
    disturbed one: a preemption by another program only ever adds time).
    HINT: warm both up; loops = loops or calibrate(fn_a, min_time, timer);
          sample(fn) = min(time_loop(fn, loops, timer) for _ in range(inner));
          in round r take (a, b) in the order A, B if r is even, else B, A.
    """
    if not (callable(fn_a) and callable(fn_b)):
        raise TypeError("compare needs two callables")
    if rounds < 9 or inner < 1:
        raise ValueError(f"need rounds >= 9 and inner >= 1, got rounds={rounds}, inner={inner}")
    if timer not in TIMERS:
        raise ValueError(f"timer must be one of {sorted(TIMERS)}, got {timer!r}")
    a, b = [], []
    ### BEGIN SOLUTION
    for _ in range(warmup):
        fn_a()
        fn_b()
    loops = int(loops) if loops else calibrate(fn_a, min_time, timer)

    def sample(fn):
        return min(time_loop(fn, loops, timer) for _ in range(inner))

    for r in range(rounds):
        if r % 2 == 0:
            a.append(sample(fn_a))
            b.append(sample(fn_b))
        else:
            b.append(sample(fn_b))
            a.append(sample(fn_a))
    ### END SOLUTION
    return Comparison(a, b, loops, timer, alpha, tuple(names), environment(), inner)


# %% nbgrader={"grade": true, "grade_id": "test-compare", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def spin(n):
    """A pure-Python loop: work exactly proportional to n, no memory traffic, one thread."""
    acc = 0
    for i in range(n):
        acc += i
    return acc


def test_unit_compare():
    # thread CPU time: these workloads are single-threaded, and the machine may be shared
    same = compare(lambda: spin(5000), lambda: spin(5000), rounds=15, timer="thread")
    assert 0.9 < same.ratio < 1.1, same
    assert same.ci[0] <= same.ratio <= same.ci[1], same
    slower = compare(lambda: spin(5000), lambda: spin(7500), rounds=15, timer="thread")
    assert slower.different and 1.3 < slower.ratio < 1.7, f"50% more work must be found: {slower}"
    d = slower.to_dict()
    assert d["different"] is True and "ratio_b_over_a" in d
    order = []
    compare(lambda: order.append("a") or spin(100), lambda: order.append("b") or spin(100),
            rounds=9, warmup=0, loops=1, inner=1)
    assert order[:4] == ["a", "b", "b", "a"], f"rounds must alternate A B, B A: {order[:4]}"
    ### BEGIN HIDDEN TESTS
    try:
        compare(lambda: 0, lambda: 0, rounds=3)
    except ValueError:
        pass
    else:
        raise AssertionError("rounds < 9 must raise")
    ### END HIDDEN TESTS


test_unit_compare()

# %% [markdown]
# ## 8. Measuring measurement
#
# ### Run-to-run noise
#
# Benchmark the same function five times. If the medians differ by 3%, no single benchmark can
# resolve a 1% change, however many decimals it prints.

# %%
from tinytorch.core.activations import ReLU
from tinytorch.core.autograd import no_grad
from tinytorch.core.layers import Linear, Sequential
from tinytorch.core.tensor import Tensor

mlp = Sequential(Linear(784, 256, seed=0), ReLU(), Linear(256, 10, seed=1))
x1 = Tensor(np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32))     # (1, 784)
x64 = Tensor(np.random.default_rng(1).standard_normal((64, 784)).astype(np.float32))   # (64, 784)


def infer(x):
    with no_grad():
        return mlp(x)


meds = [benchmark(lambda: infer(x64), repeats=9, min_time=0.002).median for _ in range(5)]
print("MLP 784-256-10 inference at batch 64, five benchmarks of 9 samples each:")
print("  medians " + ", ".join(_fmt_s(m) for m in meds))
print(f"  run-to-run spread (max / min - 1): {(max(meds) / min(meds) - 1) * 100:.1f}%")
print(f"  one benchmark: {benchmark(lambda: infer(x64), repeats=9, min_time=0.002)}")

# %% [markdown]
# ### BLAS threads on a loaded two-core machine
#
# OpenBLAS reads its thread count once, when NumPy is imported, so each setting needs a fresh
# process. With the machine to yourself, 2 threads can make a big matmul almost 2x faster; when
# other programs already keep the cores busy, the second thread only waits for a core, and the
# wall-clock gain shrinks or turns into a loss. The load average printed with it tells you which.

# %%
import subprocess
import sys

_probe = ("import time, numpy as np; a = np.ones((384, 384), np.float32); a @ a; ts = []\n"
          "for _ in range(15):\n    t0 = time.perf_counter(); a @ a; ts.append(time.perf_counter() - t0)\n"
          "print(sorted(ts)[7])")
_thread_times = {}
for _n in (1, 2):
    _env = dict(os.environ, OPENBLAS_NUM_THREADS=str(_n), OMP_NUM_THREADS=str(_n), MKL_NUM_THREADS=str(_n))
    _out = subprocess.run([sys.executable, "-c", _probe], env=_env, capture_output=True, text=True, timeout=120)
    _thread_times[_n] = float(_out.stdout.strip()) if _out.returncode == 0 else float("nan")
print(f"384x384 float32 matmul, median of 15: 1 thread {_fmt_s(_thread_times[1])}, "
      f"2 threads {_fmt_s(_thread_times[2])} -> {_thread_times[1] / _thread_times[2]:.2f}x "
      f"(load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")

# %% [markdown]
# ## 9. MLPerf-style scenarios
#
# MLPerf Inference measures a system under three traffic patterns:
#
# ```
#   SingleStream  one query at a time, the next when the last is done   -> latency p50/p90/p99
#                 (a phone's camera); at least 64 queries or a minimum duration
#   Offline       all samples available at once, process in batches     -> throughput, samples/s
#                 (sorting a photo library overnight)
#   Server        queries arrive at random (Poisson) at a target rate;   -> p99 latency incl. queueing,
#                 each waits if the system is busy                          valid only if p99 <= bound
#
#   Server timeline, rate 100/s: arrivals exponential gaps, mean 10 ms; service 5 ms per query
#     arrive   0    4        21  23                  (ms)
#     start    0    5        21  26     query 2 waits 1 ms, query 4 waits 3 ms: latency includes it
# ```
#
# Percentiles, not means: a p99 of 50 ms means 1 query in 100 waited longer than 50 ms, and
# that user does not care about the average. (MLPerf sets a minimum number of queries and a
# minimum duration, and its early-stopping rule lets a run end once the percentile is certain
# enough; here a run lasts at least 64 queries and at least `min_duration` seconds.) Percentiles come from `np.percentile` with its default (linear)
# interpolation; `ScenarioResult` carries the settings and the machine so the report can be
# rebuilt, and writes Markdown, JSON and (with matplotlib) a latency histogram.

# %% nbgrader={"grade": false, "grade_id": "scenarios", "locked": true, "schema_version": 3, "solution": false}
#| export
class ScenarioResult:
    """Latencies (seconds) of one scenario run, with throughput, settings and the machine."""

    def __init__(self, scenario, name, latencies, duration, samples, settings, bound=None):
        self.scenario, self.name = scenario, name
        self.latencies = np.asarray(latencies, dtype=np.float64)
        self.duration, self.samples, self.settings, self.bound = float(duration), int(samples), settings, bound
        self.env = environment()
        p = np.percentile(self.latencies, [50, 90, 99]) if len(self.latencies) else [np.nan] * 3
        self.p50, self.p90, self.p99 = (float(v) for v in p)
        self.throughput = self.samples / self.duration if self.duration > 0 else float("nan")
        self.valid = None if bound is None else bool(self.p99 <= bound)

    def to_dict(self) -> dict:
        return {"scenario": self.scenario, "name": self.name, "queries": len(self.latencies),
                "samples": self.samples, "duration_s": self.duration, "p50_s": self.p50,
                "p90_s": self.p90, "p99_s": self.p99, "throughput_per_s": self.throughput,
                "p99_bound_s": self.bound, "valid": self.valid, "settings": self.settings,
                "environment": self.env}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        valid = "" if self.valid is None else (f" | {'VALID' if self.valid else 'INVALID'} "
                                               f"(p99 bound {_fmt_s(self.bound)})")
        return (f"| {self.scenario} | {self.name} | {len(self.latencies)} | {_fmt_s(self.p50)} | "
                f"{_fmt_s(self.p90)} | {_fmt_s(self.p99)} | {self.throughput:,.1f}/s{valid} |")

    def __repr__(self):
        return (f"{self.scenario}({self.name}): {len(self.latencies)} queries, p50 {_fmt_s(self.p50)}, "
                f"p90 {_fmt_s(self.p90)}, p99 {_fmt_s(self.p99)}, {self.throughput:,.1f} samples/s")


MARKDOWN_HEADER = ("| scenario | system | queries | p50 | p90 | p99 | throughput / validity |\n"
                   "| --- | --- | ---: | ---: | ---: | ---: | --- |")


def report_markdown(results, title="MLPerf-style scenarios") -> str:
    """A Markdown report of several ScenarioResults, with the machine and the settings."""
    lines = [f"## {title}", "", f"- machine: {describe_environment(results[0].env)}"]
    lines += [f"- {r.scenario} {r.name}: {r.settings}" for r in results]
    lines += ["", MARKDOWN_HEADER] + [r.to_markdown() for r in results]
    return "\n".join(lines) + "\n"


def plot_latencies(results, path, title="latency distributions"):
    """Histogram of each result's latencies with p50/p99 marks, to a PNG (needs matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("plot_latencies needs matplotlib (pip install 'tinytorch[plot]'); "
                          "the Markdown and JSON reports work without it") from e
    fig, axes = plt.subplots(len(results), 1, figsize=(7, 2.2 * len(results)), squeeze=False)
    for ax, r in zip(axes[:, 0], results):
        ms = r.latencies * 1e3
        ax.hist(ms, bins=40, color="tab:blue", alpha=0.8)
        for v, label, style in ((r.p50, "p50", "--"), (r.p99, "p99", ":")):
            ax.axvline(v * 1e3, color="k", ls=style, lw=1, label=f"{label} {v * 1e3:.2f} ms")
        if r.bound is not None:
            ax.axvline(r.bound * 1e3, color="tab:red", lw=1.5, label=f"bound {r.bound * 1e3:.1f} ms")
        ax.set_title(f"{r.scenario}: {r.name}", fontsize=9)
        ax.set_xlabel("latency (ms)")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# %% [markdown]
# Write SingleStream and the Server (Offline is provided: one timed pass over the data in
# batches). The Server runs on one worker: a query that arrives while the worker is busy waits,
# and its latency is *finish - arrival*, queueing included.

# %% nbgrader={"grade": false, "grade_id": "scenario-runs", "locked": false, "schema_version": 3, "solution": true}
#| export
def single_stream(fn, *, name="model", min_queries=64, min_duration=0.0, warmup=2, max_queries=100_000):
    """Call fn() one query at a time until >= min_queries and >= min_duration seconds.

    HINT: time.perf_counter() around each call; stop when both conditions hold (or max_queries).
    """
    for _ in range(warmup):
        fn()
    lat = []
    t_start = time.perf_counter()
    ### BEGIN SOLUTION
    while len(lat) < max_queries:
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        lat.append(t1 - t0)
        if len(lat) >= min_queries and t1 - t_start >= min_duration:
            break
    ### END SOLUTION
    duration = time.perf_counter() - t_start
    return ScenarioResult("SingleStream", name, lat, duration, len(lat),
                          f"min {min_queries} queries, min {min_duration:g} s, {warmup} warm-up")


def offline(fn_batch, n_samples, batch_size, *, name="model", warmup=1):
    """Throughput: fn_batch(start, stop) processes samples [start, stop); all are available at once."""
    if n_samples < 1 or batch_size < 1:
        raise ValueError(f"need n_samples >= 1 and batch_size >= 1, got {n_samples}, {batch_size}")
    for _ in range(warmup):
        fn_batch(0, min(batch_size, n_samples))
    lat = []
    t_start = time.perf_counter()
    for start in range(0, n_samples, batch_size):
        t0 = time.perf_counter()
        fn_batch(start, min(start + batch_size, n_samples))
        lat.append(time.perf_counter() - t0)
    duration = time.perf_counter() - t_start
    return ScenarioResult("Offline", name, lat, duration, n_samples,
                          f"{n_samples} samples in batches of {batch_size}, {warmup} warm-up batch(es)")


def server(fn, *, rate, p99_bound, name="model", n_queries=64, seed=0, warmup=2):
    """Queries arrive as a Poisson process of ``rate`` per second; one worker serves them in order.

    Latency of query i = finish_i - arrival_i. Valid if p99 <= p99_bound (seconds).
    HINT: arrivals = np.cumsum(rng.exponential(1 / rate, n_queries)); for each query wait until
          its arrival (time.sleep is coarse: sleep all but the last millisecond, then spin on
          perf_counter), run fn(), record finish - arrival, times measured from t_start.
    """
    if rate <= 0 or p99_bound <= 0 or n_queries < 1:
        raise ValueError(f"need rate > 0, p99_bound > 0, n_queries >= 1; got {rate}, {p99_bound}, {n_queries}")
    for _ in range(warmup):
        fn()
    rng = np.random.default_rng(seed)
    lat = []
    t_start = time.perf_counter()
    ### BEGIN SOLUTION
    arrivals = np.cumsum(rng.exponential(1.0 / rate, n_queries))
    for arrive in arrivals:
        wait = arrive - (time.perf_counter() - t_start)
        if wait > 0.002:
            time.sleep(wait - 0.001)           # sleep is coarse: sleep most of the wait...
        while time.perf_counter() - t_start < arrive:
            pass                               # ...and spin the last millisecond
        fn()
        lat.append((time.perf_counter() - t_start) - arrive)
    ### END SOLUTION
    duration = time.perf_counter() - t_start
    return ScenarioResult("Server", name, lat, duration, len(lat),
                          f"Poisson arrivals at {rate:g}/s, {n_queries} queries, seed {seed}, one worker",
                          bound=p99_bound)


# %% nbgrader={"grade": true, "grade_id": "test-scenarios", "locked": true, "points": 1, "schema_version": 3, "solution": false}
def test_unit_scenarios():
    ss = single_stream(lambda: time.sleep(0.0005), min_queries=64)
    assert len(ss.latencies) == 64 and ss.p50 >= 0.0005 and ss.p50 <= ss.p90 <= ss.p99, ss
    long = single_stream(lambda: time.sleep(0.0001), min_queries=64, min_duration=0.05)
    assert len(long.latencies) > 64 and long.duration >= 0.05, "min_duration keeps it running"
    # an overloaded server: arrivals every ~1 ms, service 2 ms -> the queue grows, p99 >> service
    busy = server(lambda: time.sleep(0.002), rate=1000, p99_bound=0.005, n_queries=40)
    assert busy.p99 > 0.02 and busy.valid is False, f"queueing must show in the latency: {busy}"
    idle = server(lambda: None, rate=200, p99_bound=0.25, n_queries=20)
    assert idle.valid is True and idle.duration > 0.05, idle
    off = offline(lambda a, b: time.sleep(0.001), 100, 10)
    assert len(off.latencies) == 10 and off.samples == 100, off
    assert 0 < off.throughput < 100 / 0.01, "10 batches of >= 1 ms cannot beat 10,000 samples/s"
    md = report_markdown([ss, busy, off])
    assert "INVALID" in md and "SingleStream" in md and "load average" in md, md
    assert json.loads(busy.to_json())["valid"] is False
    ### BEGIN HIDDEN TESTS
    a = server(lambda: None, rate=500, p99_bound=1.0, n_queries=10, seed=3)
    assert a.settings.endswith("one worker") and "seed 3" in a.settings
    ### END HIDDEN TESTS


test_unit_scenarios()

# %% [markdown]
# ## 10. Systems measurement: your model, served
#
# The MLP above, served three ways. Latency per query in SingleStream at batch 1; throughput in
# Offline at batch 64; and a Server at a rate set to half of what SingleStream can sustain
# (0.5 / its mean latency), with a p99 bound of 5 ms. At tens of thousands of queries per second, one
# millisecond in which another program holds the core queues dozens of queries: on a busy
# machine the Server run can be INVALID while SingleStream looks fine.

# %%
x_all = np.random.default_rng(2).standard_normal((512, 784)).astype(np.float32)   # (512, 784)
ss = single_stream(lambda: infer(x1), name="MLP batch 1", min_queries=64, min_duration=0.2)
off = offline(lambda a, b: infer(Tensor(x_all[a:b])), 512, 64, name="MLP batch 64")
srv = server(lambda: infer(x1), rate=0.5 / float(ss.latencies.mean()), p99_bound=0.005, name="MLP batch 1",
             n_queries=256, seed=0)
print(report_markdown([ss, off, srv], title="MLP 784-256-10 on this machine"))
print(f"batching: {off.throughput:,.0f} samples/s at batch 64 vs {1 / ss.p50:,.0f} queries/s one at a time")

# %% [markdown]
# `benchmarks/serve_models.py` runs the three scenarios on the milestone CNN and GPT and writes
# `benchmarks/results/serve_models.md`, `.json` and the latency histograms (in the repository):
#
# ![CNN latencies](../../benchmarks/results/latency_cnn.png)
# ![GPT latencies](../../benchmarks/results/latency_gpt.png)
#
# An A/B test on your own code: is module 09's `im2col` convolution as fast with a 3x3 kernel
# as a 1x1 convolution doing the same number of MACs? (Same FLOPs, different memory traffic.)

# %%
from tinytorch.core.spatial import Conv2d

_xc = Tensor(np.random.default_rng(3).standard_normal((8, 16, 16, 16)).astype(np.float32))
conv3 = Conv2d(16, 16, 3, padding=1, bias=False, seed=0)         # 16*9 MACs per output
conv1 = Conv2d(16, 144, 1, bias=False, seed=0)                   # 16 MACs per output, 9x the outputs


def infer_conv(layer):
    with no_grad():
        return layer(_xc)


res = compare(lambda: infer_conv(conv3), lambda: infer_conv(conv1), names=("3x3 conv", "1x1 conv, 9x channels"),
              rounds=15)
print(res)
print(f"  ({res.settings}; load average {os.getloadavg()[0]:.2f})")

# %% [markdown]
# ## Reflect
#
# 1. Your five benchmarks of the same function had a run-to-run spread of a few percent. How many
#    interleaved rounds would you need to tell a 2% speed-up from noise? What does pairing the
#    samples (ratio per round) buy over comparing two separate benchmarks?
# 2. Why does `compare` require *both* a small Mann-Whitney p-value and a ratio interval that
#    excludes 1? Give a case where one holds and the other does not.
# 3. The Server with a rate of half the SingleStream capacity still queues sometimes. Why, if on
#    average the worker is idle half of the time? (Think of Poisson bursts; queueing theory says
#    the mean wait of an M/D/1 queue at utilization rho is rho / (2 (1 - rho)) service times.)
# 4. Offline throughput at batch 64 was much higher than 1 / latency at batch 1. Where does the
#    difference come from (Python overhead per call, BLAS efficiency of larger matrices)? Which
#    scenario matters for a phone keyboard, which for indexing a photo library?
# 5. With 2 BLAS threads the matmul got faster or slower depending on the load average. What
#    should a benchmark report so that a reader on another machine can judge its numbers?
