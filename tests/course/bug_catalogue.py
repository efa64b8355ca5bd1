"""Typical student bugs, each written as a source substitution in a reference solution.

Every entry must make the graded unit test that follows its cell fail (not only the
whole-module test at the end of the lesson): tests/course/test_bug_catalogue.py applies each
one to the reference lesson and checks it. When you add a test or change a solution, add the
bugs a learner is likely to make there; when an entry is no longer caught, the test it names
has stopped protecting learners.

Kinds of bugs (``kind``): raw-numpy (a result that is an ndarray, not a Tensor), float64
(a silent upcast), keepdims, axis, swapped (operands or arguments in the wrong order),
in-place (an input modified), bias (forgotten), accumulate (a sum or gradient overwritten
instead of accumulated), shape, off-by-one, formula (a wrong constant or term), state
(something not reset or not stored), api (an argument ignored).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bug:
    module: int
    cell: str  # grade_id of the solution cell where the learner makes the bug
    kind: str
    what: str
    old: str  # text of the reference solution (must occur exactly once in the cell)
    new: str  # what the learner wrote instead

    def __str__(self) -> str:
        return f"{self.module:02d} {self.cell} [{self.kind}] {self.what}"


BUGS = [
    # ------------------------------------------------------------------ 01 tensor
    Bug(1, "tensor-class", "float64", "float64 arrays are kept as float64",
        "arr = data.astype(np.float32) if data.dtype == np.float64 else np.asarray(data)", "arr = np.asarray(data)"),
    Bug(1, "tensor-class", "float64", "Python lists become NumPy's default float64",
        "arr = np.asarray(data, dtype=np.float32)", "arr = np.asarray(data)"),
    Bug(1, "tensor-class", "api", "an explicit dtype is ignored",
        "arr = np.asarray(data, dtype=dtype)", "arr = np.asarray(data, dtype=np.float32)"),
    Bug(1, "tensor-arithmetic", "raw-numpy", "+ returns the raw NumPy array",
        "return _wrap(self.data + _operand(other, self))", "return self.data + _operand(other, self)"),
    Bug(1, "tensor-arithmetic", "raw-numpy", "* returns the raw NumPy array",
        "return _wrap(self.data * _operand(other, self))", "return self.data * _operand(other, self)"),
    Bug(1, "tensor-arithmetic", "raw-numpy", "/ returns the raw NumPy array",
        "return _wrap(self.data / _operand(other, self))", "return self.data / _operand(other, self)"),
    Bug(1, "tensor-arithmetic", "raw-numpy", "** returns the raw NumPy array",
        "return _wrap(self.data ** _operand(exponent, self))", "return self.data ** _operand(exponent, self)"),
    Bug(1, "tensor-arithmetic", "raw-numpy", "unary minus returns the raw NumPy array",
        "return _wrap(-self.data)", "return -self.data"),
    Bug(1, "tensor-arithmetic", "swapped", "a - b computes b - a",
        "return _wrap(self.data - _operand(other, self))", "return _wrap(_operand(other, self) - self.data)"),
    Bug(1, "tensor-arithmetic", "formula", "/ is integer division",
        "return _wrap(self.data / _operand(other, self))", "return _wrap(self.data // _operand(other, self))"),
    Bug(1, "tensor-arithmetic", "float64", "the operand's float64 is not cast",
        "arr = arr.astype(target)", "arr = arr"),
    Bug(1, "tensor-arithmetic", "in-place", "+= on the input's array",
        "return _wrap(self.data + _operand(other, self))",
        "self.data += _operand(other, self)\n    return _wrap(self.data)"),
    Bug(1, "tensor-arithmetic", "in-place", "negation flips the input's array in place",
        "return _wrap(-self.data)", "np.negative(self.data, out=self.data)\n    return _wrap(self.data)"),
    Bug(1, "tensor-matmul", "raw-numpy", "@ returns the raw NumPy array",
        "return _wrap(np.matmul(self.data, b))", "return np.matmul(self.data, b)"),
    Bug(1, "tensor-matmul", "swapped", "A @ B computes B @ A",
        "return _wrap(np.matmul(self.data, b))", "return _wrap(np.matmul(b, self.data))"),
    Bug(1, "tensor-matmul", "float64", "the loop result is allocated as float64",
        "out = np.zeros((M, N), dtype=np.result_type(A.dtype, B.dtype))", "out = np.zeros((M, N))"),
    Bug(1, "tensor-matmul", "raw-numpy", "matmul_loops returns the raw NumPy array",
        "    return _wrap(out)\n", "    return out\n"),
    Bug(1, "tensor-matmul", "accumulate", "the loop overwrites instead of accumulating",
        "total += A[i, k] * B[k, j]", "total = A[i, k] * B[k, j]"),
    Bug(1, "tensor-matmul", "off-by-one", "the inner loop skips the last k",
        "for k in range(K):", "for k in range(K - 1):"),
    Bug(1, "tensor-shape-ops", "raw-numpy", "reshape returns the raw NumPy array",
        "return _wrap(self.data.reshape(shape))", "return self.data.reshape(shape)"),
    Bug(1, "tensor-shape-ops", "api", "transpose ignores its axes (reverses all of them)",
        "return _wrap(np.swapaxes(self.data, dim0, dim1))", "return _wrap(np.transpose(self.data))"),
    Bug(1, "tensor-shape-ops", "raw-numpy", "permute returns the raw NumPy array",
        "return _wrap(np.transpose(self.data, dims))", "return np.transpose(self.data, dims)"),
    Bug(1, "tensor-shape-ops", "shape", "permute reshapes instead of moving axes",
        "return _wrap(np.transpose(self.data, dims))",
        "return _wrap(self.data.reshape([self.shape[d] for d in dims]))"),
    Bug(1, "tensor-reductions", "raw-numpy", "sum returns the raw NumPy array",
        "return _wrap(np.asarray(self.data.sum(axis=axis, keepdims=keepdims)))",
        "return np.asarray(self.data.sum(axis=axis, keepdims=keepdims))"),
    Bug(1, "tensor-reductions", "keepdims", "sum ignores keepdims",
        "return _wrap(np.asarray(self.data.sum(axis=axis, keepdims=keepdims)))",
        "return _wrap(np.asarray(self.data.sum(axis=axis)))"),
    Bug(1, "tensor-reductions", "keepdims", "mean ignores keepdims",
        "return _wrap(np.asarray(self.data.mean(axis=axis, keepdims=keepdims, dtype=dtype)))",
        "return _wrap(np.asarray(self.data.mean(axis=axis, dtype=dtype)))"),
    Bug(1, "tensor-reductions", "keepdims", "max ignores keepdims",
        "return _wrap(np.asarray(self.data.max(axis=axis, keepdims=keepdims)))",
        "return _wrap(np.asarray(self.data.max(axis=axis)))"),
    Bug(1, "tensor-reductions", "axis", "max always reduces axis 0",
        "return _wrap(np.asarray(self.data.max(axis=axis, keepdims=keepdims)))",
        "return _wrap(np.asarray(self.data.max(axis=0 if axis is not None else None, keepdims=keepdims)))"),
    Bug(1, "tensor-reductions", "float64", "the mean of an int or bool tensor is float64",
        "dtype = None if np.issubdtype(self.dtype, np.floating) else np.float32", "dtype = None"),
    Bug(1, "tensor-reductions", "raw-numpy", "sqrt returns the raw NumPy array",
        "return _wrap(np.sqrt(self.data))", "return np.sqrt(self.data)"),
    Bug(1, "tensor-reductions", "raw-numpy", "exp returns the raw NumPy array",
        "return _wrap(np.exp(self.data))", "return np.exp(self.data)"),
    Bug(1, "tensor-reductions", "formula", "log is log10",
        "return _wrap(np.log(self.data))", "return _wrap(np.log10(self.data))"),
    Bug(1, "tensor-getitem", "raw-numpy", "indexing returns the raw NumPy array",
        "return _wrap(np.asarray(self.data[index]))", "return self.data[index]"),
]
