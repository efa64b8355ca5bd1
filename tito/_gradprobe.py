"""Grading only: what a probe observes for a ``gradcheck(fn, *inputs)`` check (see
tito.probe.gradcheck). Loaded by the sandbox harness (``_harness.py``) from beside it before
any learner code runs; it imports nothing of tito. The student kit never ships this file: it
is module 05's finite-difference loop, which learners write themselves.
"""


def observe(np, fn, inputs, options, _type, _isinstance, _float):
    """The analytic gradients of ``sum(fn(*inputs) * R)`` (the learner's backward) and the
    objective at x +/- eps for every element (the learner's forward), as
    ``[checked positions, analytic, plus, minus, eps]``."""
    eps, seed = float(options.get("eps", 1e-6)), int(options.get("seed", 0))
    autograd = sys.modules.get("tinytorch.core.autograd")
    no_grad = getattr(autograd, "no_grad", None) or contextlib.nullcontext
    args, checked = [], []
    for pos, x in enumerate(inputs):
        data = getattr(x, "data", None) if not _isinstance(x, _type) else None
        if _type(data) is np.ndarray and data.dtype.kind == "f":
            args.append(_type(x)(np.array(data, dtype=np.float64), dtype=np.float64, requires_grad=True))
            checked.append(pos)
        else:
            args.append(x)
    out = fn(*args)
    R = np.random.default_rng(seed).standard_normal(np.shape(out.data))

    def objective():
        with no_grad():
            return _float((np.asarray(fn(*args).data, dtype=np.float64) * R).sum())

    out.backward(R)
    analytic, plus, minus = [], [], []
    for pos in checked:
        x = args[pos]
        shape = x.data.shape
        g = x.grad
        analytic.append(np.zeros(shape) if g is None else np.array(getattr(g, "data", g), dtype=np.float64))
        flat = x.data.reshape(-1)  # a view: changing it changes x
        p, m = np.zeros(flat.size), np.zeros(flat.size)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            p[i] = objective()
            flat[i] = old - eps
            m[i] = objective()
            flat[i] = old
        plus.append(p.reshape(shape))
        minus.append(m.reshape(shape))
    return [checked, analytic, plus, minus, eps]
