"""`pipeline("puzzle-solving")`: what it answers is what `model.solve` answers (Sudoku and mazes, batched or not), its
checks agree with the tasks' own, a bad puzzle is a clear error, and a saved folder carries it as remote code."""

import json

import numpy as np
import pytest
import torch
from transformers import pipeline

from modeling_lstm_trm import LSTMTRMConfig, LSTMTRMForPuzzleSolving, PuzzleSolvingPipeline
from modeling_lstm_trm.models.lstm_trm.pipeline_lstm_trm import CHECKERS
from modeling_lstm_trm.tasks import get_task
from modeling_lstm_trm.tasks.maze.mazes import PATH, generate_mazes, path_problem, to_text
from modeling_lstm_trm.tasks.sudoku.puzzles import BOXES, generate_puzzles, is_valid_solution


def saved_model(folder, task: str, side: int, **config) -> str:
    """A fresh (untrained) model of `task` for side x side grids, saved with the task's tokenizer."""
    torch.manual_seed(0)
    settings = dict(hidden_size=16, num_layers=1, T_cycles=1, n_cycles=1, puzzle_emb_ndim=0, halt_max_steps=6,
                    forward_dtype="float32", task=task, seq_len=side * side)
    model = LSTMTRMForPuzzleSolving(LSTMTRMConfig(**{**settings, **config},
                                                  vocab_size=len(get_task(task).vocabulary(side))))
    torch.nn.init.normal_(model.q_head.weight, std=2.0)  # a Q head that halts at different steps
    model.save_pretrained(folder)
    get_task(task).tokenizer(side).save_pretrained(folder)
    return str(folder)


def puzzles_of(task: str, count: int, side: int) -> list[str]:
    if task == "sudoku":
        return [get_task("sudoku").to_text(p) for p in generate_puzzles(count, BOXES[side], 8, seed=1).puzzles]
    return [to_text(q) for q in generate_mazes(count, side, 4, seed=1)[0]]


@pytest.mark.parametrize("task, side, config", [("sudoku", 4, {}), ("maze", 7, {"mixer": "conv"})])
def test_the_pipeline_answers_what_solve_answers(task, side, config, tmp_path):
    folder = saved_model(tmp_path / task, task, side, **config)
    solver = pipeline("puzzle-solving", model=folder)
    assert isinstance(solver, PuzzleSolvingPipeline)
    texts = puzzles_of(task, 6, side)
    results = solver(texts, batch_size=3, return_trace=True)
    model = LSTMTRMForPuzzleSolving.from_pretrained(folder).eval()
    ids = solver.tokenizer(texts, add_special_tokens=False, return_tensors="pt").input_ids
    steps = [model.solve(ids[k:k + 3], return_trace=True) for k in (0, 3)]
    halted = torch.cat([s.halted_at for s in steps])
    predictions = torch.cat([s.predictions for s in steps])
    assert len(set(halted.tolist())) > 1  # the rows of a batch halt at different steps
    for k, result in enumerate(results):
        out = steps[k // 3]
        assert result["steps"] == int(halted[k])
        assert result["answer"] == solver.to_text(predictions[k].tolist())
        assert result["grid"] == [list(result["answer"][r * side:(r + 1) * side]) for r in range(side)]
        expected = out.q_halt_trace[: result["steps"], k % 3].sigmoid().tolist()
        np.testing.assert_allclose(result["halting_probability"], expected, atol=1e-6)
        assert result["trace"][-1] == result["answer"] and len(result["trace"]) == result["steps"]
        assert isinstance(result["valid"], bool)
    assert solver(texts[0]) == {key: value for key, value in results[0].items() if key != "trace"}


def test_the_q_head_can_be_left_out_of_halting(tmp_path):
    folder = saved_model(tmp_path / "maze", "maze", 7, mixer="conv")
    solver, texts = pipeline("puzzle-solving", model=folder), puzzles_of("maze", 6, 7)
    assert any(result["steps"] < 6 for result in solver(texts))  # this Q head halts some mazes early
    assert all(result["steps"] == 6 for result in solver(texts, halt_on_q_head=False))  # max_steps alone
    model = LSTMTRMForPuzzleSolving.from_pretrained(folder).eval()
    ids = solver.tokenizer(texts, add_special_tokens=False, return_tensors="pt").input_ids
    expected = model.solve(ids, max_steps=9, fixed_point_steps=2, halt_on_q_head=False)
    results = solver(texts, max_steps=9, fixed_point_steps=2, halt_on_q_head=False)
    assert [result["steps"] for result in results] == expected.halted_at.tolist()
    assert [result["answer"] for result in results] == [solver.to_text(row.tolist()) for row in expected.predictions]


def test_the_pipelines_checks_agree_with_the_tasks():
    rng = np.random.default_rng(0)
    sudoku = generate_puzzles(20, BOXES[4], 6, seed=3)
    for puzzle, solution in zip(sudoku.puzzles, sudoku.solutions):
        for answer in (solution, np.where(rng.random(solution.shape) < 0.1, rng.integers(1, 5, solution.shape),
                                          solution)):
            assert CHECKERS["sudoku"](puzzle.reshape(-1).tolist(), answer.reshape(-1).tolist()) == \
                is_valid_solution(answer, puzzle, BOXES[4])
    questions, answers = generate_mazes(20, 9, 6, seed=4, loops=0.3)
    verdicts = []
    for question, answer in zip(questions, answers):
        broken = answer.copy()
        broken[np.unravel_index(rng.choice(np.flatnonzero(answer == PATH)), answer.shape)] = question.max() and 2
        for candidate in (answer, broken, question):
            verdicts.append(CHECKERS["maze"](question.reshape(-1).tolist(), candidate.reshape(-1).tolist()))
            assert verdicts[-1] == (path_problem(question, candidate) is None)
    assert True in verdicts and False in verdicts


def test_device_and_dtype_are_taken_as_every_pipeline_takes_them(tmp_path):
    solver = pipeline("puzzle-solving", model=saved_model(tmp_path / "s", "sudoku", 4), device="cpu",
                      dtype=torch.bfloat16)
    assert solver.model.dtype == torch.bfloat16 and solver.device.type == "cpu"
    result = solver("1.....2..3.....4")
    assert len(result["answer"]) == 16 and 1 <= result["steps"] <= 6


def test_a_bad_puzzle_is_a_clear_error(tmp_path):
    solver = pipeline("puzzle-solving", model=saved_model(tmp_path / "s", "sudoku", 4))
    with pytest.raises(ValueError, match="characters this model's tokenizer does not know"):
        solver("1x..............")
    with pytest.raises(ValueError, match="the puzzle has 36 cells; this model reads 16"):
        solver("1" + "." * 35)
    with pytest.raises(ValueError, match="a puzzle is the task's text"):
        solver(1234)
    with pytest.raises(ValueError, match="an ARC input maps task ids to tasks"):
        solver({"train": []})


def test_a_saved_folder_names_the_pipeline_for_remote_code(tmp_path):
    folder = saved_model(tmp_path / "s", "sudoku", 4)
    config = json.loads((tmp_path / "s" / "config.json").read_text())
    assert config["custom_pipelines"]["lstm-trm-puzzle-solving"]["impl"] == "pipeline_lstm_trm.PuzzleSolvingPipeline"
    assert config["auto_map"]["AutoModelForTokenClassification"] == "modeling_lstmtrm.LSTMTRMForPuzzleSolving"
    assert (tmp_path / "s" / "pipeline_lstm_trm.py").is_file()
    remote = pipeline(model=folder, trust_remote_code=True)  # the folder's own code (the package is importable here:
    assert type(remote).__module__.startswith("transformers_modules")  # test_hub.py runs it where it is not)
    assert remote("1.....2..3.....4") == pipeline("puzzle-solving", model=folder)("1.....2..3.....4")


def test_the_demos_chat_carries_the_state_across_turns(trained):
    """Each reply reads only the new message, on top of the state the last turn left: the same as reading the whole
    conversation from the start."""
    from conftest import load_example

    demo = load_example("app").Demo(str(trained["lm"]))
    assert demo.kind == "lm"
    *_, (first, state) = demo.reply("the old king", None, max_new_tokens=8)
    *_, (second, carried) = demo.reply("sailed", state, max_new_tokens=8, seed=1)
    assert carried.get_seq_length() > state.get_seq_length() > 0
    tokenizer, model = demo.tokenizer, demo.model
    ids = tokenizer("the old king\n", add_special_tokens=False)["input_ids"] + \
        tokenizer(first, add_special_tokens=False)["input_ids"]
    *_, (again, _) = demo.reply("sailed", model(torch.tensor([ids])).cache, max_new_tokens=8, seed=1)
    assert again == second
