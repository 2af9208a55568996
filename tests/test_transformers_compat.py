"""The contract with transformers, at both ends of the supported range (CI runs this file on the newest releases and
on the floor in `constraints/floor.txt`).

transformers 5.24 renamed a model's carried state from `past_key_values` to `cache`, in `forward` and in every
output, and `generate` hands it over under the new name. Our models take and return `cache`, accept
`past_key_values=` as the same argument, and their outputs answer to both names on every supported release.
"""

import logging
import warnings
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from conftest import GENERATE_STATE
from transformers import TrainingArguments

from modeling_lstm_trm import (
    LSTMTRMCarry,
    LSTMTRMConfig,
    LSTMTRMForPuzzleSolving,
    NestedLSTMConfig,
    NestedLSTMForCausalLM,
    NestedLSTMState,
)
from modeling_lstm_trm.models.lstm_trm import modeling_lstmtrm
from modeling_lstm_trm.models.nested_lstm import modeling_nested_lstm
from modeling_lstm_trm.tasks.sudoku.puzzles import SudokuDataset, generate_puzzles
from modeling_lstm_trm.training import StatefulTrainer

pytestmark = pytest.mark.floor

def lm(seed=0):
    torch.manual_seed(seed)
    return NestedLSTMForCausalLM(NestedLSTMConfig(vocab_size=23, hidden_size=16, num_lstm_layers=2,
                                                  level_update_every=[1, 4], intermediate_size=8,
                                                  pad_token_id=0)).eval()


def trm(seed=0):
    torch.manual_seed(seed)
    return LSTMTRMForPuzzleSolving(LSTMTRMConfig(vocab_size=5, seq_len=16, puzzle_emb_ndim=8, hidden_size=16,
                                                 num_layers=1, T_cycles=2, n_cycles=1, halt_max_steps=3,
                                                 forward_dtype="float32"))


def ids(batch, length, vocab=23, seed=1):
    return torch.randint(1, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def puzzles(batch=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 5, (batch, 16), generator=g), torch.randint(1, 5, (batch, 16), generator=g)


@contextmanager
def no_deprecation_warnings():
    """Fails if anything in the block warns that a name is deprecated: transformers' `warning_once` (recorded
    however often it fired before in this process) and Python warnings alike."""
    logged = []
    original = getattr(logging.Logger, "warning_once", None)
    logging.Logger.warning_once = lambda self, message, *args, **kwargs: logged.append(str(message))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        if original is None:
            del logging.Logger.warning_once
        else:
            logging.Logger.warning_once = original
    said = logged + [str(w.message) for w in caught]
    assert not [s for s in said if "deprecat" in s.lower()], said


# --- outputs and arguments ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("output_class", [modeling_nested_lstm.NestedLSTMModelOutput,
                                          modeling_nested_lstm.NestedLSTMCausalLMOutput,
                                          modeling_lstmtrm.LSTMTRMOutput])
def test_every_output_holds_the_state_as_cache_and_answers_to_the_old_name(output_class):
    state = object()
    out = output_class(cache=state)
    assert out.cache is state and out["cache"] is state and "cache" in out and out.get("cache") is state
    assert out.to_tuple() == (state,)  # the state appears once
    assert out.past_key_values is state and out["past_key_values"] is state and "past_key_values" in out


def test_solve_output_builds():
    out = modeling_lstmtrm.LSTMTRMSolveOutput(predictions=torch.zeros(2, 3, dtype=torch.long))
    assert out.to_tuple()[0].shape == (2, 3)


def test_the_nested_lm_takes_its_state_by_either_name_with_the_same_result():
    model, x = lm(), ids(2, 10)
    state = model(x[:, :4]).cache
    assert isinstance(state, NestedLSTMState)
    with no_deprecation_warnings():
        new = model(x[:, 4:], cache=state)
    old = model(x[:, 4:], past_key_values=state)
    assert torch.equal(new.logits, old.logits) and torch.equal(new.cache.h, old.cache.h)
    assert torch.equal(model.model(x[:, 4:], past_key_values=state).cache.c, model.model(x[:, 4:], cache=state).cache.c)
    with pytest.raises(ValueError, match="not both"):
        model(x[:, 4:], cache=state, past_key_values=state)


def test_lstm_trm_takes_its_carry_by_either_name_with_the_same_result():
    model, (x, y) = trm(), puzzles()
    carry = model(x, labels=y).cache
    assert isinstance(carry, LSTMTRMCarry)
    with no_deprecation_warnings():
        new = model(x, labels=y, cache=carry)
    old = model(x, labels=y, past_key_values=carry)
    assert torch.equal(new.logits, old.logits) and torch.equal(new.cache.steps, old.cache.steps)
    assert new.cache.steps.tolist() == [2, 2, 2]
    with pytest.raises(ValueError, match="not both"):
        model(x, cache=carry, past_key_values=carry)


def test_solve_runs_without_deprecation_warnings():
    model, (x, _) = trm(), puzzles()
    with no_deprecation_warnings():
        out = model.solve(x, return_trace=True, num_trajectories=2, noise_scale=0.1,
                          generator=torch.Generator().manual_seed(0))
    assert out.predictions.shape == x.shape and out.trace.shape[1:] == x.shape


# --- generate -----------------------------------------------------------------------------------------------------

def test_generate_greedy_beam_and_left_padding_without_deprecation_warnings():
    model = lm()
    prompts = [ids(1, n, seed=n)[0] for n in (3, 6)]
    batch = torch.zeros(2, 6, dtype=torch.long)
    mask = torch.zeros(2, 6, dtype=torch.long)
    for row, prompt in enumerate(prompts):
        batch[row, 6 - len(prompt):], mask[row, 6 - len(prompt):] = prompt, 1
    with no_deprecation_warnings():
        greedy = model.generate(batch, attention_mask=mask, max_new_tokens=5, min_new_tokens=5, do_sample=False)
        beams = model.generate(ids(2, 4), num_beams=3, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    for row, prompt in enumerate(prompts):
        alone = model.generate(prompt[None], max_new_tokens=5, min_new_tokens=5, do_sample=False)
        assert torch.equal(greedy[row, 6:], alone[0, len(prompt):])
    assert beams.shape == (2, 8)
    uncached = model.generate(batch, attention_mask=mask, max_new_tokens=5, min_new_tokens=5, do_sample=False,
                              use_cache=False)
    assert torch.equal(greedy, uncached)


def test_generate_returns_the_state_and_continues_from_it():
    model, prompt = lm(), ids(2, 5)
    first = model.generate(prompt, max_new_tokens=3, min_new_tokens=3, do_sample=False, return_dict_in_generate=True)
    state = first[GENERATE_STATE]
    assert isinstance(state, NestedLSTMState)
    follow_up = torch.cat([first.sequences, ids(2, 2, seed=9)], dim=1)
    continued = model.generate(follow_up, max_new_tokens=3, min_new_tokens=3, do_sample=False,
                               **{GENERATE_STATE: state})
    assert torch.equal(continued, model.generate(follow_up, max_new_tokens=3, min_new_tokens=3, do_sample=False))


# --- a Trainer step -----------------------------------------------------------------------------------------------

class Chunks(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        x = ids(1, 6, seed=i)[0]
        return {"input_ids": x, "labels": x}


@pytest.mark.parametrize("name", ["nested_lm", "lstm_trm"])
def test_a_trainer_step_carries_the_state_as_cache(tmp_path, name):
    model, data = ((lm(), Chunks()) if name == "nested_lm"
                   else (trm(), SudokuDataset(generate_puzzles(20, (2, 2), seed=0), 16)))
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4, report_to="none",
                             save_strategy="no", disable_tqdm=True, learning_rate=1e-3, use_cpu=True,
                             dataloader_drop_last=True)
    trainer = StatefulTrainer(model=model.train(), args=args, train_dataset=data)
    seen = []
    trainer.model.register_forward_pre_hook(lambda module, a, kwargs: seen.append(kwargs.get("cache")),
                                            with_kwargs=True)
    with no_deprecation_warnings():
        trainer.train()
    assert seen[0] is None and isinstance(seen[1], model.state_class) and seen[1].batch_size == 4
    assert all(torch.isfinite(p).all() for p in model.parameters())


# --- the Hub copy -------------------------------------------------------------------------------------------------

def test_the_copied_state_name_block_is_the_same_in_both_modeling_files():
    """Each modeling file must stand alone on the Hub, so the block that maps the old name is copied, not shared."""
    def block(module):
        text = Path(module.__file__).read_text()
        start = text.index("# ----- the carried state's name")
        return text[start:text.index("# ----- end of the copied block", start)]
    assert block(modeling_nested_lstm) == block(modeling_lstmtrm)


def test_saved_folders_load_as_remote_code_and_generate_and_solve(tmp_path, without_package):
    language_model, puzzle_model, (x, _) = lm(), trm().eval(), puzzles(2)
    language_model.save_pretrained(tmp_path / "lm")
    puzzle_model.save_pretrained(tmp_path / "trm")
    prompt = ids(2, 4)
    torch.save({"prompt": prompt, "generated": language_model.generate(prompt, max_new_tokens=3, do_sample=False),
                "x": x, "solved": puzzle_model.solve(x).predictions}, tmp_path / "expected.pt")
    printed = without_package(f"""
        import torch
        from transformers import AutoModel, AutoModelForCausalLM
        expected = torch.load({str(tmp_path / "expected.pt")!r}, weights_only=True)
        lm = AutoModelForCausalLM.from_pretrained({str(tmp_path / "lm")!r}, trust_remote_code=True).eval()
        assert torch.equal(lm.generate(expected["prompt"], max_new_tokens=3, do_sample=False), expected["generated"])
        state = lm(expected["prompt"]).cache
        assert lm(expected["prompt"], past_key_values=state).cache.get_seq_length() == 8
        from transformers.dynamic_module_utils import get_class_from_dynamic_module
        head = get_class_from_dynamic_module("modeling_lstmtrm.LSTMTRMForPuzzleSolving", {str(tmp_path / "trm")!r})
        trm = head.from_pretrained({str(tmp_path / "trm")!r}).eval()
        assert torch.equal(trm.solve(expected["x"]).predictions, expected["solved"])
        assert type(AutoModel.from_pretrained({str(tmp_path / "trm")!r}, trust_remote_code=True)).__name__ == \
            "LSTMTRMModel"
        print(type(lm).__module__, type(trm).__module__)
    """)
    assert "modeling_nested_lstm" in printed and "modeling_lstmtrm" in printed
