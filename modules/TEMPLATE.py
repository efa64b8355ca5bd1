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
# # Module NN: Title
#
# One paragraph: what the learner builds and why it matters for a real framework.
# (Copy this file to modules/NN_slug/slug.py; number, slug and package come from
# modules/modules.toml. The authoring guide is docs/authoring.md.)

# %% [markdown]
# ## Connection map
#
# ```
#   built so far            you build now             this unlocks
#   ------------            -------------             ------------
#   01 Tensor     ----->    NN Title        ----->    what comes next
# ```

# %% nbgrader={"grade": false, "grade_id": "imports", "locked": true, "schema_version": 3, "solution": false}
#| default_exp core.example
#| export
import numpy as np

# %% [markdown]
# ## 1. The idea
#
# Explanation with an ASCII diagram and worked numbers:
#
# ```
#   x = [1, 2, 3]   --double-->   [2, 4, 6]
# ```

# %% nbgrader={"grade": false, "grade_id": "double", "locked": false, "schema_version": 3, "solution": true}
#| export
def double(x: np.ndarray) -> np.ndarray:
    """Return ``2 * x`` as float32.

    EXAMPLE: double(np.array([1, 2])) -> array([2., 4.], dtype=float32)
    HINT: np.asarray(x, dtype=np.float32)
    """
    ### BEGIN SOLUTION
    return 2 * np.asarray(x, dtype=np.float32)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-double", "locked": true, "points": 2, "schema_version": 3, "solution": false}
def test_unit_double():
    """double() doubles and returns float32."""
    out = double(np.array([1, 2]))
    assert out.dtype == np.float32, f"expected float32, got {out.dtype}"
    np.testing.assert_allclose(out, [2.0, 4.0])
    ### BEGIN HIDDEN TESTS
    np.testing.assert_allclose(double(np.array([-1.5])), [-3.0])
    ### END HIDDEN TESTS


test_unit_double()

# %% [markdown]
# ## Systems measurement
#
# Measure something about the code above, with the code above; print what was measured.

# %%
x = np.ones(1_000_000, dtype=np.float32)
print(f"double() of 1M float32 values returns {double(x).nbytes / 1e6:.1f} MB")

# %% [markdown]
# ## Reflect
#
# 1. A question about memory, complexity or a trade-off, with numbers to reason from.
