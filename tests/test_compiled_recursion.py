"""The compiled recursion (`--compile_recursion`, `training.compiling`) computes what the eager one computes: the
same outputs (to float32 rounding: fused kernels sum in another order), the same answers, the same training curve over
a few steps; where compiling fails it runs eagerly and says so; the flag refuses what is no mode."""

import warnings

import pytest
import torch
from conftest import assert_one_line, run_example, sudoku_args

from modeling_lstm_trm import LSTMTRMConfig, LSTMTRMForPuzzleSolving
from modeling_lstm_trm.training import compiling

TOLERANCE = dict(rtol=1e-4, atol=1e-5)  # float32, another summation order


def pair(**config):
    """The same model twice: eager, and with its recursion compiled."""
    settings = dict(vocab_size=5, seq_len=16, hidden_size=16, num_layers=1, T_cycles=2, n_cycles=2,
                    puzzle_emb_ndim=0, forward_dtype="float32", halt_max_steps=4, **config)
    torch.manual_seed(0)
    eager = LSTMTRMForPuzzleSolving(LSTMTRMConfig(**settings))
    compiled = LSTMTRMForPuzzleSolving(LSTMTRMConfig(**settings))
    compiled.load_state_dict(eager.state_dict())
    assert compiling.compile_recursion(compiled, "default")
    return eager, compiled


@pytest.mark.skipif(not compiling.compiler_available("cpu"), reason="no C++ compiler for torch.compile's CPU backend")
def test_the_compiled_recursion_gives_the_eager_outputs_and_training_curve():
    eager, compiled = pair()
    x = torch.randint(0, 5, (8, 16), generator=torch.Generator().manual_seed(1))
    y = torch.randint(1, 5, (8, 16), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        e, c = eager.eval()(x), compiled.eval()(x)
    torch.testing.assert_close(c.logits, e.logits, **TOLERANCE)
    torch.testing.assert_close(c.q_halt_logits, e.q_halt_logits, **TOLERANCE)
    assert torch.equal(eager.solve(x, max_steps=6).predictions, compiled.solve(x, max_steps=6).predictions)
    curves = []
    for model in (eager.train(), compiled.train()):
        optimizer, carry, losses = torch.optim.AdamW(model.parameters(), lr=1e-2), None, []
        torch.manual_seed(3)  # the same exploration draws
        for _ in range(5):
            out = model(x, labels=y, cache=carry)
            out.loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            carry, losses = out.cache, losses + [float(out.loss)]
        curves.append(losses)
    torch.testing.assert_close(torch.tensor(curves[1]), torch.tensor(curves[0]), rtol=1e-4, atol=1e-5)
    assert curves[0][-1] < curves[0][0]  # it trained


def test_where_compiling_fails_the_recursion_runs_eagerly_and_says_so(monkeypatch):
    def broken_compile(function, mode=None):
        def fails(*args, **kwargs):
            raise RuntimeError("no C++ compiler found")
        return fails

    monkeypatch.setattr(compiling.torch, "compile", broken_compile)
    eager, compiled = pair()
    x = torch.randint(0, 5, (4, 16))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = compiled.eval()(x)
    assert any("torch.compile failed (RuntimeError: no C++ compiler found)" in str(w.message) for w in caught)
    torch.testing.assert_close(out.logits, eager.eval()(x).logits, rtol=0, atol=0)


def test_auto_compiles_only_runs_that_repay_it_and_a_bad_mode_is_refused(tmp_path, capsys):
    eager, _ = pair()
    assert not compiling.compile_recursion(eager, "auto", steps=50)  # a few steps: compiling would cost more
    assert not compiling.compile_recursion(eager, "none")
    code, err = run_example("train", sudoku_args(tmp_path / "o", "--compile_recursion", "fastest"), capsys)
    assert_one_line(err, code, 2, "--compile_recursion must be one of auto, none, default")
