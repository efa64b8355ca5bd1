"""Module 17's KV cache on the trained milestone-5 models (load_pretrained), both ways of running
it: CachedModel (forward_cached, the layers themselves) and FusedDecoder (the weights packed, what
``generate(use_cache=True)`` uses). With and without the cache the greedy tokens are identical,
every step's logits agree to float32 rounding (within 2e-6 of the largest logit: about 1e-5
absolute on logits of 10-18; the cached paths sum in another order, so bit-identity is not
expected), seeded sampling gives the same text, and past the context (a re-prefill) the tokens
are still identical. Bad input is refused before anything is computed."""
from __future__ import annotations

import numpy as np
import pytest

from tinytorch.core.autograd import no_grad
from tinytorch.generation.kv_cache import (
    CachedModel,
    FusedDecoder,
    KVCache,
    NotPackable,
    forward_cached,
    generate_cached,
    generate_fused,
    new_cache,
)
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
    np.testing.assert_array_equal(generate_cached(model, ids, n, temperature=0), plain)
    with no_grad():
        cache, fused = new_cache(model, 1), FusedDecoder(model, 1)
        worst, scale = {"cached": 0.0, "fused": 0.0}, 0.0
        steps = [(forward_cached(model, ids, cache).data[:, -1], fused(ids).data[:, -1])]   # prefill
        for t in range(ids.shape[1], model.block_size - 1):           # then one token at a time
            steps.append((forward_cached(model, plain[:, t:t + 1], cache).data[:, -1],
                          fused(plain[:, :t + 1]).data[:, -1]))
        assert fused.prefills == 1 and fused.cache.length == model.block_size - 1
        for i, got in enumerate(steps):
            T = ids.shape[1] + i
            want = model(plain[:, :T]).data[:, -1]                    # the full pass of the context
            scale = max(scale, float(np.abs(want).max()))
            for name, g in zip(worst, got):
                worst[name] = max(worst[name], float(np.abs(g - want).max()))
                assert int(g.argmax()) == int(plain[0, T]), f"{name}, step {i}: the argmax is not the token"
    for name, w in worst.items():
        assert w <= 2e-6 * scale, f"{name}: largest logit difference {w:.2e} on logits up to {scale:.1f}"


def test_seeded_sampling_same_text_and_past_the_context(trained):
    model, prompt = trained
    ids = model.preprocess(prompt)
    dec = lambda out: model.preprocess.tokenizer.decode(out[0], skip_special_tokens=True)
    n = model.block_size - ids.shape[1]
    a = model.generate(ids, n, temperature=0.8, top_k=200, seed=1337)
    b = model.generate(ids, n, temperature=0.8, top_k=200, seed=1337, use_cache=True)
    assert dec(b) == dec(a)
    assert dec(generate_cached(model, ids, n, temperature=0.8, top_k=200, seed=1337)) == dec(a)
    longer = model.block_size + 20 - ids.shape[1]                      # 20 steps past the context
    plain = model.generate(ids, longer, temperature=0)
    np.testing.assert_array_equal(model.generate(ids, longer, temperature=0, use_cache=True), plain)
    np.testing.assert_array_equal(generate_cached(model, ids, longer, temperature=0), plain)


def test_bad_input_is_refused_and_the_cache_kept(trained):
    model, prompt = trained
    ids = model.preprocess(prompt)                                    # (1, P)
    V = model.vocab_size
    for memo in (CachedModel(model, 1), FusedDecoder(model, 1)):
        with no_grad():
            good = memo(ids).data[:, -1]
            stored = memo.cache.length
            for bad, err, match in ((ids.astype(np.float32), TypeError, "integers"),
                                    (ids[0], ValueError, "shape"),
                                    (np.concatenate([ids, ids]), ValueError, "shape"),
                                    (np.concatenate([ids, [[V]]], axis=1), IndexError, "range|in \\["),
                                    (np.concatenate([ids, [[-1]]], axis=1), IndexError, "range|in \\["),
                                    (np.zeros((1, model.block_size + 1), np.int64), ValueError, "context|exceed")):
                with pytest.raises(err, match=match):
                    memo(bad)
            assert memo.cache.length == stored and memo.prefills == 1, "a refused call must keep the cache"
            np.testing.assert_allclose(memo(ids[:, :-1]).data[:, -1], model(ids[:, :-1]).data[:, -1], atol=1e-5)
            np.testing.assert_allclose(good, model(ids).data[:, -1], atol=1e-5)


def test_a_model_that_cannot_be_packed_falls_back_to_its_layers(trained):
    import copy

    from tinytorch.core.layers import Linear

    model, prompt = trained
    ids = model.preprocess(prompt)

    class Doubled(Linear):                       # a layer that computes something else than Linear
        def forward(self, x):
            return super().forward(x) * 2.0

    other = copy.deepcopy(model)
    old = other.blocks[0].mlp.fc
    other.blocks[0].mlp.fc = Doubled(old.in_features, old.out_features)
    other.blocks[0].mlp.fc.weight.data[...] = old.weight.data
    other.blocks[0].mlp.fc.bias.data[...] = old.bias.data
    with pytest.raises(NotPackable, match="blocks.0.mlp.fc is Doubled"):
        FusedDecoder(other, 1)
    np.testing.assert_array_equal(generate_fused(other, ids, 12, temperature=0),
                                  other.generate(ids, 12, temperature=0))


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


def test_packed_weights_are_shared_until_the_model_changes(trained):
    """PackedGPT.of packs a model once and hands the same packing to every later decoder while
    the weights are unchanged; a changed weight (in place, or a replaced array) gets a new one,
    and the tokens follow the new weights."""
    import copy

    from tinytorch.generation.kv_cache import PackedGPT

    model, prompt = trained
    model = copy.deepcopy(model)                      # the fixture's model stays untouched
    ids = model.preprocess(prompt)
    first = FusedDecoder(model, 1).packed
    assert FusedDecoder(model, 1).packed is first and not first.stale()
    model.blocks[0].mlp.proj.weight.data[0, 0] += 0.5           # a writer of the stream, in place
    assert first.stale()
    second = FusedDecoder(model, 1).packed
    assert second is not first and not second.stale()
    np.testing.assert_array_equal(generate_fused(model, ids, 8, temperature=0),
                                  model.generate(ids, 8, temperature=0))
    model.ln_f.bias.data = model.ln_f.bias.data + 0.25          # an array replaced by another
    assert second.stale() and PackedGPT.of(model) is not second
    np.testing.assert_array_equal(generate_fused(model, ids, 8, temperature=0),
                                  model.generate(ids, 8, temperature=0))
