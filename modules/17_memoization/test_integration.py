"""Integration: module 17's KV cache on the exported package: module 13's GPT.generate switches
to it (the packed FusedDecoder) with use_cache=True, CachedModel gives the same tokens, and the
trained milestone-5 model gives the same text with both."""
import numpy as np

from tinytorch.core.autograd import no_grad
from tinytorch.generation.kv_cache import CachedModel, FusedDecoder, forward_cached, generate_cached, new_cache
from tinytorch.models.transformer import GPT


def test_generate_use_cache_switch():
    model = GPT(vocab_size=19, block_size=20, n_layer=2, n_head=2, n_embd=24, seed=4)
    prompt = np.random.default_rng(3).integers(0, 19, (2, 5))
    for kw in ({"temperature": 0}, {"temperature": 0.9, "top_k": 6, "seed": 2}):
        for n in (15, 30):                                  # inside the context, then past it
            plain = model.generate(prompt, n, **kw)
            np.testing.assert_array_equal(model.generate(prompt, n, use_cache=True, **kw), plain)
            np.testing.assert_array_equal(generate_cached(model, prompt, n, **kw), plain)


def test_trained_shakespeare_model_same_text_with_the_cache():
    from tinytorch.models.pretrained import load_pretrained
    model = load_pretrained("shakespeare_gpt")
    ids = model.preprocess("ROMEO:\n")
    n = model.block_size - ids.shape[1]
    greedy = model.generate(ids, n, temperature=0)
    np.testing.assert_array_equal(model.generate(ids, n, temperature=0, use_cache=True), greedy)
    with no_grad():
        cache = new_cache(model, 1)
        logits = forward_cached(model, greedy[:, :-1], cache)                  # prefill all at once
        np.testing.assert_allclose(logits.data, model(greedy[:, :-1]).data, atol=1e-5, rtol=0)
    text = lambda out: model.preprocess.tokenizer.decode(out[0], skip_special_tokens=True)
    assert text(model.generate(ids, n, temperature=0.8, top_k=20, seed=5, use_cache=True)) == \
        text(model.generate(ids, n, temperature=0.8, top_k=20, seed=5))
    assert isinstance(CachedModel(model, 1).cache.nbytes, int)
    fused = FusedDecoder(model, 1)
    with no_grad():
        np.testing.assert_allclose(fused(greedy[:, :-1]).data[:, -1], logits.data[:, -1], atol=1e-5, rtol=0)
    assert not fused.stale()
