"""Specification of the multi-timescale optimizer, the stream layout and the boundary-aware collator."""

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from modeling_lstm_trm import (
    BoundaryAwareCollator,
    MultiTimescaleOptimizer,
    NestedLSTMConfig,
    NestedLSTMForCausalLM,
    StatefulTrainer,
    TokenStreams,
)
from modeling_lstm_trm.tasks.text.streams import concatenate, split_documents


def tiny_lm(levels=(1, 2, 4)):
    torch.manual_seed(0)
    return NestedLSTMForCausalLM(NestedLSTMConfig(vocab_size=11, hidden_size=8, intermediate_size=8,
                                                  level_update_every=list(levels)))


def train_steps(model, optimizer, steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    snapshots = []
    for _ in range(steps):
        x = torch.randint(0, 11, (2, 6), generator=g)
        model(x, labels=x).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        snapshots.append([[p.detach().clone() for p in level] for level in model.level_parameters()])
    return snapshots


def test_from_model_builds_one_group_per_level_with_its_period_and_lr_scale():
    model = tiny_lm()
    optimizer = MultiTimescaleOptimizer.from_model(model, torch.optim.AdamW, lr=1e-2, level_lr_scale=[1, 0.5, 0.25])
    assert optimizer.periods == [1, 2, 4]
    assert [g["lr"] for g in optimizer.param_groups] == [1e-2, 5e-3, 2.5e-3]
    assert [len(g["params"]) for g in optimizer.param_groups] == [len(lv) for lv in model.level_parameters()]


def test_each_level_changes_only_on_multiples_of_its_period():
    model = tiny_lm()
    optimizer = MultiTimescaleOptimizer.from_model(model, torch.optim.AdamW, lr=1e-2, weight_decay=0.1)
    before = [[p.detach().clone() for p in level] for level in model.level_parameters()]
    for step, snapshot in enumerate(train_steps(model, optimizer, 8), start=1):
        for k, period in enumerate([1, 2, 4]):
            changed = any(not torch.equal(a, b) for a, b in zip(snapshot[k], before[k]))
            assert changed == (step % period == 0), (step, k)
        before = snapshot


def test_between_its_steps_a_slow_level_accumulates_gradient():
    model = tiny_lm(levels=(1, 4))
    optimizer = MultiTimescaleOptimizer.from_model(model, torch.optim.SGD, lr=0.1)
    weight = model.model.levels[0].up_proj.weight
    counts = []
    g = torch.Generator().manual_seed(0)
    grads = []
    for step in range(1, 5):
        x = torch.randint(0, 11, (2, 6), generator=g)
        model(x, labels=x).loss.backward()
        grads.append(weight.grad.clone())
        start = weight.detach().clone()
        optimizer.step()
        optimizer.zero_grad()
        accumulated = optimizer.accumulated_gradient(weight)
        if step < 4:  # the accumulator grows by each step's gradient
            counts.append(optimizer.weight_sums[1])
            torch.testing.assert_close(accumulated, sum(grads))
            assert not torch.equal(accumulated, sum(grads[:-1])) if step > 1 else accumulated.abs().sum() > 0
    assert counts == [1.0, 2.0, 3.0]
    # the update on step 4 is plain SGD on the mean of the four gradients
    torch.testing.assert_close(weight.detach(), start - 0.1 * sum(grads) / 4)
    assert optimizer.accumulated_gradient(weight) is None


def test_state_dict_resumes_exactly():
    model_a, model_b = tiny_lm(), tiny_lm()
    opt_a = MultiTimescaleOptimizer.from_model(model_a, torch.optim.AdamW, lr=1e-2)
    train_steps(model_a, opt_a, 3)
    model_b.load_state_dict(model_a.state_dict())
    opt_b = MultiTimescaleOptimizer.from_model(model_b, torch.optim.AdamW, lr=1e-2)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # as through a checkpoint file
    after_a = train_steps(model_a, opt_a, 5, seed=9)
    after_b = train_steps(model_b, opt_b, 5, seed=9)
    for a, b in zip(after_a[-1], after_b[-1]):
        for x, y in zip(a, b):
            torch.testing.assert_close(x, y)


def test_works_with_lr_schedulers_and_gradient_clipping():
    model = tiny_lm()
    optimizer = MultiTimescaleOptimizer.from_model(model, torch.optim.AdamW, lr=1e-2, level_lr_scale=[1, 0.5, 0.5])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 ** step)
    x = torch.randint(0, 11, (2, 6))
    model(x, labels=x).loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
    optimizer.step()
    scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == [5e-3, 2.5e-3, 2.5e-3]


def test_surprise_weights_are_bounded_and_weight_the_slow_accumulators():
    model = tiny_lm(levels=(1, 2))
    optimizer = MultiTimescaleOptimizer.from_model(model, torch.optim.SGD, lr=1.0, surprise_weighting=True,
                                                   watch_surprise=False)  # surprise reported by hand here
    step_weights = []
    for nll_sum, tokens in ((20.0, 10), (1000.0, 10), (0.0, 10)):  # mean NLL 2 (defines the running mean), 100, 0
        optimizer.observe_surprise(nll_sum / 2, tokens / 2)  # two micro-batches make one step
        optimizer.observe_surprise(nll_sum / 2, tokens / 2)
        optimizer.step()
        step_weights.append(optimizer.last_surprise_weight)
    assert step_weights == [1.0, 2.0, 0.5]

    optimizer = MultiTimescaleOptimizer.from_model(model, torch.optim.SGD, lr=1.0, surprise_weighting=True,
                                                   watch_surprise=False)
    weight = model.model.levels[0].up_proj.weight
    grads = []
    for w_surprise in (10.0, 0.1):
        optimizer.running_surprise = 1.0
        x = torch.randint(0, 11, (2, 6))
        model(x, labels=x).loss.backward()
        grads.append(weight.grad.clone())
        start = weight.detach().clone()
        optimizer.observe_surprise(w_surprise)
        optimizer.step()  # period 2: accumulates with weight 2, then steps with (2 g0 + 0.5 g1) / 2.5
        optimizer.zero_grad()
    torch.testing.assert_close(weight.detach(), start - (2.0 * grads[0] + 0.5 * grads[1]) / 2.5)


# --- streams and collator -----------------------------------------------------------------------------------------

def test_wikitext_articles_start_at_single_equals_titles():
    lines = [" = Alpha = \n", " text a \n", " = = Section = = \n", " more a \n", " = Beta = \n", " text b \n"]
    docs = split_documents(lines, "wikitext")
    assert len(docs) == 2 and docs[0].startswith(" = Alpha") and " = = Section" in docs[0]
    assert split_documents(["a\n", "\n", "b\n"]) == ["a\n", "b\n"]


@settings(max_examples=60, deadline=None)
@given(doc_lengths=st.lists(st.integers(1, 30), min_size=1, max_size=20), streams=st.integers(1, 4),
       chunk=st.integers(1, 7))
def test_stream_layout_properties(doc_lengths, streams, chunk):
    documents = [[100 * d + i for i in range(n)] for d, n in enumerate(doc_lengths)]
    tokens, starts = concatenate(documents, eos_token_id=None)
    if (len(tokens) - 1) // (streams * chunk) < 1:
        with pytest.raises(ValueError):
            TokenStreams(tokens, starts, streams, chunk)
        return
    data = TokenStreams(tokens, starts, streams, chunk)
    positions = {}  # token position -> how often it is a target
    for i in range(len(data)):
        item = data[i]
        assert item["stream"] == i % streams and item["chunk"] == i // streams  # time-major
        start = item["stream"] * data.stream_len + item["chunk"] * chunk
        assert np.array_equal(item["input_ids"].numpy(), tokens[start:start + chunk])
        assert np.array_equal(item["shift_labels"].numpy(), tokens[start + 1:start + chunk + 1])
        assert np.array_equal(item["reset_mask"].numpy(), starts[start:start + chunk])  # resets on document starts
        for p in range(start + 1, start + chunk + 1):
            positions[p] = positions.get(p, 0) + 1
        # a stream's chunks are contiguous: no stream leaks into another
        if item["chunk"] > 0:
            previous = data[i - streams]
            assert previous["stream"] == item["stream"]
            assert previous["shift_labels"][-1] == item["input_ids"][0]
    used = streams * data.stream_len
    assert positions == {p: 1 for p in range(1, used + 1)}  # every used token is a target exactly once
    assert len(tokens) - 1 - used < streams * chunk


@pytest.mark.parametrize("processes, per_device", [(1, 4), (2, 2)])
def test_each_process_keeps_its_streams_under_accelerate_sharding(processes, per_device):
    from accelerate.data_loader import BatchSamplerShard
    tokens, starts = concatenate([list(range(1000))], eos_token_id=None)
    data = TokenStreams(tokens, starts, num_streams=processes * per_device, chunk_len=5)
    sampler = torch.utils.data.BatchSampler(torch.utils.data.SequentialSampler(data), per_device, drop_last=True)
    for p in range(processes):
        shard = BatchSamplerShard(sampler, num_processes=processes, process_index=p)
        for step, batch in enumerate(shard):
            items = [data[i] for i in batch]
            assert [it["stream"] for it in items] == list(range(p * per_device, (p + 1) * per_device))
            assert all(it["chunk"] == step for it in items)


def test_collator_batches_chunks_with_reset_masks():
    tokens, starts = concatenate([[1, 2, 3], [4, 5], [6, 7, 8, 9]], eos_token_id=10)
    data = TokenStreams(tokens, starts, num_streams=2, chunk_len=3)
    batch = BoundaryAwareCollator()([data[0], data[1]])
    assert set(batch) == {"input_ids", "labels", "shift_labels", "attention_mask", "reset_mask"}
    assert batch["input_ids"].shape == batch["reset_mask"].shape == (2, 3)
    assert batch["reset_mask"].dtype == torch.bool and batch["reset_mask"][0, 0]
    assert torch.equal(batch["reset_mask"][1], torch.tensor([False, True, False]))  # tokens 10, 4, 5 -> doc 2 at 4
    model = tiny_lm()
    out = model(**batch)
    assert torch.isfinite(out.loss)


def test_public_names_import():
    assert StatefulTrainer.__name__ == "StatefulTrainer"
