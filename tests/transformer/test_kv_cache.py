"""Module 17's KV cache on the trained milestone-5 models (load_pretrained): with and without
the cache the greedy tokens are identical, every step's logits agree to float32 rounding (within
2e-6 of the largest logit: about 1e-5 absolute on logits of 10-18; the cached path sums in another
order, so bit-identity is not expected), seeded sampling
gives the same text, and past the context (a re-prefill) the tokens are still identical."""
from __future__ import annotations

import numpy as np
import pytest

from tinytorch.core.autograd import no_grad
from tinytorch.generation.kv_cache import KVCache, forward_cached, new_cache
from tinytorch.models.pretrained import load_pretrained

PROMPTS = {"shakespeare_gpt": "KING RICHARD:\n", "tinytalks_gpt": "\nQ: What is 3 + 8?\nA: "}


@pytest.fixture(scope="module", params=sorted(PROMPTS))
def trained(request):
    return load_pretrained(request.param), PROMPTS[request.param]


def test_greedy_tokens_and_every_steps_logits(trained):
    model, prompt = trained
    ids = model.preprocess(prompt)                                    # (1, P)
    n = model.block_size - ids.shape[1]                               # fill the context exactly
    plain = model.generate(ids, n, temperature=0)
    np.testing.assert_array_equal(model.generate(ids, n, temperature=0, use_cache=True), plain)
    with no_grad():
        cache = new_cache(model, 1)
        worst, scale = 0.0, 0.0
        steps = [forward_cached(model, ids, cache).data[:, -1]]       # prefill: the prompt's last logits
        for t in range(ids.shape[1], model.block_size - 1):           # then one token at a time
            steps.append(forward_cached(model, plain[:, t:t + 1], cache).data[:, -1])
        for i, got in enumerate(steps):
            T = ids.shape[1] + i
            want = model(plain[:, :T]).data[:, -1]                    # the full pass of the context
            worst = max(worst, float(np.abs(got - want).max()))
            scale = max(scale, float(np.abs(want).max()))
            assert int(got.argmax()) == int(plain[0, T]), f"step {i}: the cached argmax is not the token"
    assert worst <= 2e-6 * scale, f"largest logit difference {worst:.2e} on logits up to {scale:.1f}"


def test_seeded_sampling_same_text_and_past_the_context(trained):
    model, prompt = trained
    ids = model.preprocess(prompt)
    dec = lambda out: model.preprocess.tokenizer.decode(out[0], skip_special_tokens=True)
    n = model.block_size - ids.shape[1]
    a = model.generate(ids, n, temperature=0.8, top_k=200, seed=1337)
    b = model.generate(ids, n, temperature=0.8, top_k=200, seed=1337, use_cache=True)
    assert dec(b) == dec(a)
    longer = model.block_size + 20 - ids.shape[1]                      # 20 steps past the context
    np.testing.assert_array_equal(model.generate(ids, longer, temperature=0, use_cache=True),
                                  model.generate(ids, longer, temperature=0))


def test_cache_memory_is_the_formula(trained):
    model, _ = trained
    cache = new_cache(model, 1)
    assert cache.nbytes == 2 * model.n_layer * 1 * model.block_size * model.n_embd * 4
    with pytest.raises(ValueError, match="context"):
        with no_grad():
            forward_cached(model, np.zeros((1, model.block_size + 1), dtype=np.int64), cache)
    with pytest.raises(ValueError, match="max_len"):
        KVCache(1, 1, 1, 1, 0)
    k = np.ones((1, model.blocks[0].attn.num_heads, 3, model.n_embd // model.blocks[0].attn.num_heads), np.float32)
    ka, va = new_cache(model, 1).update(0, k, k)
    assert ka.base is not None and va.base is not None, "update returns views of the cache, not copies"
