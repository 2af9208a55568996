"""Specification of NestedLSTMForCausalLM and its carried state (issue: package foundation)."""

import json

import pytest
import torch
from conftest import GENERATE_STATE

from modeling_lstm_trm import NestedLSTMConfig, NestedLSTMForCausalLM, NestedLSTMModel, NestedLSTMState

pytestmark = pytest.mark.floor  # also run on the oldest supported versions

LEVELS = [[1], [1, 16], [1, 16, 256], [1, 2, 3, 4]]


def tiny_config(**overrides):
    values = dict(vocab_size=37, hidden_size=16, num_lstm_layers=2, level_update_every=[1, 16, 256],
                  intermediate_size=24, pad_token_id=0)
    values.update(overrides)
    return NestedLSTMConfig(**values)


def tiny_model(seed=0, **overrides):
    torch.manual_seed(seed)
    return NestedLSTMForCausalLM(tiny_config(**overrides)).eval()


def ids(batch, length, vocab=37, seed=1):
    return torch.randint(1, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


# --- configuration -----------------------------------------------------------------------------------------------

def test_config_defaults_and_roundtrip(tmp_path):
    config = NestedLSTMConfig()
    assert config.model_type == "nested_lstm"
    assert config.level_update_every == [1, 16, 256]
    assert config.tie_word_embeddings and config.use_cache
    config.save_pretrained(tmp_path)
    assert NestedLSTMConfig.from_pretrained(tmp_path).to_dict() == config.to_dict()


@pytest.mark.parametrize("field, value", [
    ("vocab_size", 0), ("hidden_size", -4), ("num_lstm_layers", 0), ("intermediate_size", 0),
    ("level_update_every", []), ("level_update_every", [1, 16, 16]), ("level_update_every", [1, 256, 16]),
    ("level_update_every", [1, 2.5]), ("level_update_every", [2, 16]), ("level_update_every", "1,16"),
    ("dropout", 1.0), ("initializer_range", 0.0), ("eos_token_id", 999),
])
def test_config_rejects_invalid_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        NestedLSTMConfig(**{field: value})


@pytest.mark.parametrize("levels", LEVELS)
def test_levels_partition_the_parameters(levels):
    model = tiny_model(level_update_every=levels)
    groups = model.level_parameters()
    assert len(groups) == len(levels)
    flat = [id(p) for group in groups for p in group]
    assert len(flat) == len(set(flat))
    assert set(flat) == {id(p) for p in model.parameters()}
    assert any(p is model.model.embed_tokens.weight for p in groups[0])


def test_untied_head_belongs_to_level_one():
    model = tiny_model(tie_word_embeddings=False)
    assert model.lm_head.weight is not model.model.embed_tokens.weight
    assert any(p is model.lm_head.weight for p in model.level_parameters()[0])


def test_every_config_field_changes_the_model():
    base = sum(p.numel() for p in tiny_model().parameters())
    for change in [dict(vocab_size=40), dict(hidden_size=20), dict(num_lstm_layers=3), dict(intermediate_size=8),
                   dict(level_update_every=[1, 16]), dict(tie_word_embeddings=False)]:
        assert sum(p.numel() for p in tiny_model(**change).parameters()) != base, change
    x = ids(2, 10)
    train = tiny_model(dropout=0.5).train()
    assert not torch.equal(train(x).logits, train(x).logits)  # dropout is live in training
    assert tiny_model(use_cache=False)(x).cache is None
    assert tiny_model()(x).cache is not None
    weights = tiny_model(initializer_range=0.5).model.embed_tokens.weight
    assert 0.3 < weights.std() < 0.7


# --- the carried state is exact -----------------------------------------------------------------------------------

@pytest.mark.parametrize("levels", LEVELS)
@pytest.mark.parametrize("num_chunks", [2, 5])
def test_chunked_calls_with_carried_state_equal_one_call(levels, num_chunks):
    model = tiny_model(level_update_every=levels)
    x = ids(3, 23)
    full = model(x).logits
    state, pieces = None, []
    for chunk in x.tensor_split(num_chunks, dim=1):
        out = model(chunk, cache=state)
        state = out.cache
        pieces.append(out.logits)
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=0)
    assert isinstance(state, NestedLSTMState) and state.get_seq_length() == 23


def test_forward_does_not_mutate_the_state_it_is_given():
    model = tiny_model()
    state = model(ids(2, 5)).cache
    h = state.h.clone()
    model(ids(2, 5, seed=3), cache=state)
    assert torch.equal(state.h, h)


@pytest.mark.parametrize("t", [0, 1, 9, 16])
def test_reset_mask_equals_a_fresh_state_for_the_rest_of_the_row(t):
    model = tiny_model()
    x = ids(3, 17)
    warm = model(ids(3, 6, seed=7)).cache
    reset = torch.zeros(3, 17, dtype=torch.bool)
    reset[1, t] = True
    out = model(x, cache=warm, reset_mask=reset)
    fresh = model(x[1:2, t:]).logits  # the rest of row 1, from zeros
    torch.testing.assert_close(out.logits[1:2, t:], fresh, atol=1e-5, rtol=0)
    untouched = model(x, cache=warm)
    torch.testing.assert_close(out.logits[[0, 2]], untouched.logits[[0, 2]], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.logits[1:2, :t], untouched.logits[1:2, :t], atol=1e-5, rtol=0)


def test_several_resets_in_one_row():
    model = tiny_model()
    x = ids(2, 20)
    reset = torch.zeros(2, 20, dtype=torch.bool)
    reset[0, [4, 11]] = True
    reset[1, 7] = True
    out = model(x, reset_mask=reset).logits
    torch.testing.assert_close(out[0:1, 11:], model(x[0:1, 11:]).logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[0:1, 4:11], model(x[0:1, 4:11]).logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1:2, 7:], model(x[1:2, 7:]).logits, atol=1e-5, rtol=0)


def test_masked_positions_leave_the_state_untouched():
    model = tiny_model()
    x = ids(2, 12)
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[0, 3:6] = 0  # a hole in the middle of row 0
    mask[1, :12] = 0  # row 1 entirely masked
    warm = model(ids(2, 4, seed=5)).cache
    out = model(x, cache=warm, attention_mask=mask)
    kept = torch.cat([x[0:1, :3], x[0:1, 6:]], dim=1)
    alone = model(kept, cache=NestedLSTMState(warm.h[:, :1], warm.c[:, :1]))
    torch.testing.assert_close(out.logits[0:1, 6:], alone.logits[:, 3:], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.cache.h[:, 0], alone.cache.h[:, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.cache.h[:, 1], warm.h[:, 1])
    torch.testing.assert_close(out.cache.c[:, 1], warm.c[:, 1])


def test_detach_cuts_the_graph_and_truncates_backprop():
    model = tiny_model().train()
    first = model(ids(2, 6))
    state = first.cache
    assert state.h.requires_grad
    detached = state.detach()
    assert not detached.h.requires_grad and torch.equal(detached.h, state.h)
    out = model(ids(2, 6, seed=2), cache=detached, labels=ids(2, 6, seed=2))
    out.loss.backward()  # would fail with "backward through the graph a second time" if still connected
    first.logits.sum().backward()


def test_state_reset_and_reorder():
    state = NestedLSTMState(torch.randn(2, 4, 3), torch.randn(2, 4, 3), seen_tokens=9)
    original = state.h.clone()
    state.reset(torch.tensor([False, True, False, True]))
    assert torch.all(state.h[:, [1, 3]] == 0) and torch.equal(state.h[:, [0, 2]], original[:, [0, 2]])
    assert state.get_seq_length() == 9
    state.reset([0])
    assert torch.all(state.c[:, 0] == 0)
    state.reorder_cache(torch.tensor([2, 2, 0, 1]))
    assert torch.equal(state.h[:, 0], original[:, 2]) and torch.equal(state.h[:, 1], original[:, 2])
    assert state.batch_size == 4
    state.reset(torch.ones(4, dtype=torch.bool))
    assert state.get_seq_length() == 0


# --- generation ---------------------------------------------------------------------------------------------------

def record_input_lengths(model):
    lengths = []
    handle = model.register_forward_pre_hook(
        lambda module, args, kwargs: lengths.append(kwargs["input_ids"].shape[1]), with_kwargs=True)
    return lengths, handle


def test_generate_with_cache_equals_without_and_feeds_one_token_per_step():
    model = tiny_model()
    prompt = ids(2, 9)
    lengths, handle = record_input_lengths(model)
    cached = model.generate(prompt, max_new_tokens=12, do_sample=False, min_new_tokens=12)
    handle.remove()
    assert lengths == [9] + [1] * 11
    uncached = model.generate(prompt, max_new_tokens=12, do_sample=False, min_new_tokens=12, use_cache=False)
    assert torch.equal(cached, uncached)


def test_left_padded_batch_generates_what_each_prompt_generates_alone():
    model = tiny_model()
    prompts = [ids(1, n, seed=n)[0] for n in (3, 8, 5)]
    width = max(len(p) for p in prompts)
    batch = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros_like(batch)
    for row, prompt in enumerate(prompts):
        batch[row, width - len(prompt):] = prompt
        mask[row, width - len(prompt):] = 1
    together = model.generate(batch, attention_mask=mask, max_new_tokens=10, min_new_tokens=10, do_sample=False)
    for row, prompt in enumerate(prompts):
        alone = model.generate(prompt[None], max_new_tokens=10, min_new_tokens=10, do_sample=False)
        assert torch.equal(together[row, width:], alone[0, len(prompt):])


def test_generation_continues_from_a_returned_state():
    model = tiny_model()
    prompt = ids(2, 6)
    first = model.generate(prompt, max_new_tokens=5, min_new_tokens=5, do_sample=False,
                           return_dict_in_generate=True)
    state = first[GENERATE_STATE]
    assert isinstance(state, NestedLSTMState)
    follow_up = torch.cat([first.sequences, ids(2, 3, seed=4)], dim=1)
    lengths, handle = record_input_lengths(model)
    continued = model.generate(follow_up, max_new_tokens=4, min_new_tokens=4, do_sample=False,
                               **{GENERATE_STATE: state})
    handle.remove()
    # The state already holds all but the last generated token, so the new prefill reads only the unseen tokens.
    assert lengths[0] == follow_up.shape[1] - state.get_seq_length()
    from_scratch = model.generate(follow_up, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    assert torch.equal(continued, from_scratch)


def test_sampling_and_beam_search_run_and_beam_search_reorders_the_state(monkeypatch):
    model = tiny_model()
    prompt = ids(2, 5)
    torch.manual_seed(0)
    sampled = model.generate(prompt, do_sample=True, top_k=5, max_new_tokens=6, min_new_tokens=6)
    assert sampled.shape == (2, 11)
    calls = []
    original = NestedLSTMState.reorder_cache
    monkeypatch.setattr(NestedLSTMState, "reorder_cache",
                        lambda self, idx: calls.append(idx.clone()) or original(self, idx))
    beams = model.generate(prompt, num_beams=3, max_new_tokens=6, min_new_tokens=6, do_sample=False,
                           num_return_sequences=2)
    assert beams.shape == (4, 11) and calls and calls[0].shape == (6,)
    assert torch.all((beams >= 0) & (beams < 37))


def test_no_dynamic_cache_is_ever_built():
    from transformers import DynamicCache
    model = tiny_model()
    seen = []
    handle = model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(type(kwargs.get("cache"))), with_kwargs=True)
    model.generate(ids(1, 4), max_new_tokens=3, do_sample=False)
    handle.remove()
    assert DynamicCache not in seen and seen[0] is type(None) and seen[1] is NestedLSTMState


# --- saving and sharing -------------------------------------------------------------------------------------------

def test_save_and_load_give_identical_logits(tmp_path):
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM
    model = tiny_model()
    model.save_pretrained(tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert {"model.safetensors", "config.json", "configuration_nested_lstm.py", "modeling_nested_lstm.py"} <= names
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"]["AutoModelForCausalLM"] == "modeling_nested_lstm.NestedLSTMForCausalLM"
    assert isinstance(AutoConfig.from_pretrained(tmp_path), NestedLSTMConfig)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(loaded) is NestedLSTMForCausalLM
    x = ids(2, 11)
    assert torch.equal(loaded(x).logits, model(x).logits)
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
    assert isinstance(AutoModel.from_pretrained(tmp_path), NestedLSTMModel)


def test_remote_code_folder_loads_without_the_package(tmp_path, without_package):
    model = tiny_model()
    folder = tmp_path / "shared_model"
    model.save_pretrained(folder)
    x = ids(2, 11)
    torch.save({"x": x, "logits": model(x).logits}, tmp_path / "expected.pt")
    printed = without_package(f"""
        import torch
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained({str(folder)!r}, trust_remote_code=True).eval()
        expected = torch.load({str(tmp_path / "expected.pt")!r}, weights_only=True)
        assert torch.equal(model(expected["x"]).logits, expected["logits"])
        out = model.generate(expected["x"][:, :4], max_new_tokens=3, do_sample=False)
        print(type(model).__module__, tuple(out.shape))
    """)
    assert "modeling_nested_lstm" in printed and "(2, 7)" in printed


def test_modeling_files_import_only_their_siblings():
    import re
    from pathlib import Path
    package = Path(__import__("modeling_lstm_trm").__file__).parent
    files = sorted(package.rglob("modeling_*.py")) + sorted(package.rglob("configuration_*.py"))
    assert {p.name for p in files} == {"modeling_nested_lstm.py", "configuration_nested_lstm.py",
                                       "modeling_lstmtrm.py", "configuration_lstm_trm.py"}
    for path in files:
        for line in path.read_text().splitlines():
            assert not re.match(r"\s*(from|import)\s+modeling_lstm_trm", line), (path.name, line)
            assert not re.match(r"\s*from\s+\.\.", line), (path.name, line)
            assert not re.match(r"\s*from\s+\.\w+\.", line), (path.name, line)
            sibling = re.match(r"\s*from\s+\.(\w+)\s+import", line)
            assert sibling is None or (path.parent / f"{sibling.group(1)}.py").exists(), (path.name, line)


# --- bad input ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad_ids, message", [
    (torch.tensor([[1, 2, 37]]), "vocab_size"),
    (torch.tensor([[1, -1, 3]]), "vocab_size"),
    (torch.tensor([1, 2, 3]), r"\(batch, time\)"),
])
def test_token_ids_outside_the_vocabulary_raise_value_error(bad_ids, message):
    with pytest.raises(ValueError, match=message):
        tiny_model()(bad_ids)


@pytest.mark.parametrize("h_shape, message", [
    ((2, 3, 16), "batch size 3"), ((1, 2, 16), "layer count 1"), ((2, 2, 8), "hidden size 8"),
])
def test_mismatched_state_raises_value_error(h_shape, message):
    state = NestedLSTMState(torch.zeros(h_shape), torch.zeros(h_shape))
    with pytest.raises(ValueError, match=message):
        tiny_model()(ids(2, 4), cache=state)


def test_wrong_state_type_raises_value_error():
    with pytest.raises(ValueError, match="NestedLSTMState"):
        tiny_model()(ids(2, 4), cache=(torch.zeros(2, 2, 16), torch.zeros(2, 2, 16)))


@pytest.mark.parametrize("name, mask", [
    ("reset_mask", torch.zeros(2, 5, dtype=torch.bool)),
    ("reset_mask", torch.zeros(3, 4, dtype=torch.bool)),
    ("attention_mask", torch.ones(2, 3)),
    ("attention_mask", torch.ones(1, 4)),
    ("attention_mask", torch.ones(2, 4, 1)),
])
def test_masks_of_the_wrong_shape_raise_value_error(name, mask):
    with pytest.raises(ValueError, match=name):
        tiny_model()(ids(2, 4), **{name: mask})


def test_bad_input_is_rejected_before_any_computation():
    model = tiny_model()
    calls = []
    model.model.lstm.register_forward_pre_hook(lambda *a: calls.append(1))
    with pytest.raises(ValueError):
        model(ids(2, 4), reset_mask=torch.zeros(2, 9, dtype=torch.bool))
    assert calls == []
