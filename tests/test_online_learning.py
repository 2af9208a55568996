"""Specification of learning while reading (training/online.py): the nested LM scores a chunk, then learns from it on
its levels' clocks; no token is scored by weights that saw it; the model it was given never changes."""

import numpy as np
import pytest
import torch

from modeling_lstm_trm import NestedLSTMConfig, NestedLSTMForCausalLM
from modeling_lstm_trm.tasks.text.streams import evaluate_stream
from modeling_lstm_trm.training.online import OnlineLearner, OnlineSettings


def tiny_model(seed=0):
    torch.manual_seed(seed)
    config = NestedLSTMConfig(vocab_size=23, hidden_size=16, num_lstm_layers=1, level_update_every=[1, 16, 256],
                              intermediate_size=24, pad_token_id=0)
    return NestedLSTMForCausalLM(config).eval()


def stream(length=161, seed=0, doc_starts_at=(0,)):
    tokens = np.random.default_rng(seed).integers(1, 23, size=length)
    starts = np.zeros(length, dtype=bool)
    starts[list(doc_starts_at)] = True
    return tokens, starts


def read(model, tokens, starts, chunk_len=16, **settings):
    learner = OnlineLearner(model, OnlineSettings(**settings)) if settings else None
    return evaluate_stream(model, tokens, starts, chunk_len=chunk_len, online=learner,
                           return_token_losses=True)["token_losses"], learner


@pytest.mark.parametrize("levels", ["all", "slow"])
def test_no_token_is_scored_by_weights_that_saw_it(levels):
    model = tiny_model()
    tokens, starts = stream()
    t = 70
    changed = tokens.copy()
    changed[t + 1:] = (changed[t + 1:] % 22) + 1  # every target after position t differs
    settings = dict(levels=levels, lr=0.5, periods=[1, 1, 2])
    before, _ = read(model, tokens, starts, **settings)
    after, _ = read(model, changed, starts, **settings)
    static, _ = read(model, tokens, starts)
    np.testing.assert_allclose(after[:t], before[:t], rtol=0, atol=1e-6)  # targets up to t: unchanged
    assert not np.allclose(after[t:], before[t:])  # the test can see a change where there is one
    assert np.allclose(before[:16], static[:16], atol=1e-6)  # the first chunk is scored by the trained weights
    assert not np.allclose(before[16:], static[16:], atol=1e-4)  # and later ones by weights that learned


def test_two_reads_give_the_same_scores_and_the_given_model_never_changes():
    model = tiny_model()
    weights = {name: p.detach().clone() for name, p in model.state_dict().items()}
    tokens, starts = stream()
    first, _ = read(model, tokens, starts, levels="1,2,3", lr=0.1, optimizer="adam", surprise="weight")
    second, _ = read(model, tokens, starts, levels="1,2,3", lr=0.1, optimizer="adam", surprise="weight")
    assert np.array_equal(first, second)
    assert all(torch.equal(p, weights[name]) for name, p in model.state_dict().items())


def test_each_level_steps_on_its_own_clock_and_only_chosen_levels_learn():
    model = tiny_model()
    tokens, starts = stream(length=49)  # 48 targets: 3 chunks of 16
    _, learner = read(model, tokens, starts, levels="slow", lr=0.5, periods=[1, 2, 4])
    original, learned = model.level_parameters(), learner.model.level_parameters()

    def moved(k):
        return any(not torch.equal(a, b) for a, b in zip(original[k], learned[k]))

    assert not moved(0)  # level 1 was not chosen
    assert moved(1)  # level 2 stepped at chunk 2
    assert not moved(2)  # level 3 would step at chunk 4: only 3 were read


def test_gating_by_surprise_can_leave_a_slow_level_unwritten():
    model = tiny_model()
    tokens, starts = stream(length=33)  # 2 chunks: the second one far less surprising than the first
    tokens[17:] = tokens[16]
    _, learner = read(model, tokens, starts, levels="slow", lr=0.5, periods=[1, 2, 2], surprise="gate")
    assert all(torch.equal(a, b) for a, b in zip(model.level_parameters()[1], learner.model.level_parameters()[1])) \
        or learner.optimizer.weight_sums == [0.0, 0.0]
    _, ungated = read(model, tokens, starts, levels="slow", lr=0.5, periods=[1, 2, 2])
    assert any(not torch.equal(a, b) for a, b in zip(model.level_parameters()[1], ungated.model.level_parameters()[1]))


def test_reset_at_documents_reads_each_document_as_if_alone():
    model = tiny_model()
    tokens, starts = stream(length=121, doc_starts_at=(0, 50))
    together, _ = read(model, tokens, starts, levels="all", lr=0.3, reset="document")
    alone, _ = read(model, tokens[50:], np.r_[True, np.zeros(70, dtype=bool)], levels="all", lr=0.3)
    np.testing.assert_allclose(together[50:], alone, atol=1e-5)
    kept, _ = read(model, tokens, starts, levels="all", lr=0.3, reset="never")
    assert not np.allclose(kept[50:], alone, atol=1e-4)


@pytest.mark.parametrize("settings, message", [
    (dict(lr=-1.0), "online_lr must be a finite positive number"),
    (dict(periods=[1, 0, 4]), "online_periods must be positive integers"),
    (dict(periods=[1, 4]), "one period per level"),
    (dict(levels="fast"), "online levels must be all, slow or level numbers"),
    (dict(levels="1,7"), "online levels"),
    (dict(surprise="sometimes"), "online_surprise"),
    (dict(reset="always"), "online_reset"),
    (dict(decay=1.5), "online_decay"),
    (dict(optimizer="lbfgs"), "online_optimizer"),
])
def test_bad_settings_raise_value_errors_naming_the_setting(settings, message):
    with pytest.raises(ValueError, match=message):
        OnlineLearner(tiny_model(), OnlineSettings(**settings))


def test_evaluate_and_generate_learn_from_what_they_read_and_never_write_the_model(trained, tmp_path, capsys):
    from conftest import load_example

    folder = trained["lm"]
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    text = tmp_path / "text.txt"
    text.write_text("to be or not to be, that is the question. " * 40)
    static = load_example("evaluate_model").main(["--model", str(folder), "--file", str(text), "--block_size", "32"])
    online = load_example("evaluate_model").main(["--model", str(folder), "--file", str(text), "--block_size", "32",
                                                  "--online_levels", "all", "--online_lr", "0.05"])
    assert online["loss"] < static["loss"]  # a repetitive text: learning while reading must help
    assert online["online"]["levels"] == "all" and online["tokens"] == static["tokens"]
    generated = load_example("generate").main(["--model", str(folder), "--prompt", "to be or not to be, " * 5,
                                               "--greedy", "--max_new_tokens", "5", "--online_levels", "slow"])
    assert "[learned from the prompt: 99 targets" in capsys.readouterr().out and generated
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before
    with pytest.raises(SystemExit) as bad:
        load_example("evaluate_model").main(["--model", str(folder), "--file", str(text), "--online_levels", "9"])
    assert bad.value.code == 2
