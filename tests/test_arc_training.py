"""Specification of ARC training: one puzzle identifier per augmented version, trained sparsely; the test split's
test outputs never reach training; a run ends in pass@1 / pass@2 and the competition's submission.json."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_example
from transformers import TrainingArguments

from modeling_lstm_trm.models.lstm_trm import LSTMTRMConfig, LSTMTRMForPuzzleSolving
from modeling_lstm_trm.tasks.arc.arc_data import decode, encode, load_split
from modeling_lstm_trm.tasks.arc.arc_dataset import ArcTrainingPairs, build_versions, load_versions, training_pairs
from modeling_lstm_trm.tasks.lstm_trm_recipe import build_optimizer

SHARED_ARC = Path(__file__).resolve().parents[2] / "shared" / "data" / "arc"


def test_the_sparse_embedding_moves_only_the_rows_in_the_batch(tmp_path):
    config = LSTMTRMConfig(vocab_size=12, seq_len=16, num_puzzle_identifiers=50, puzzle_emb_ndim=8, hidden_size=16,
                           num_layers=1, T_cycles=1, n_cycles=1, halt_max_steps=2, forward_dtype="float32",
                           puzzle_emb_sparse=True)
    model = LSTMTRMForPuzzleSolving(config)
    with torch.no_grad():
        model.model.puzzle_emb.weight.normal_()
    args = TrainingArguments(str(tmp_path), learning_rate=1e-3, weight_decay=0.1, report_to="none")
    optimizer = build_optimizer(model, args, puzzle_emb_lr=0.01, puzzle_emb_weight_decay=0.1)
    table, network = model.model.puzzle_emb.weight.detach().clone(), model.lm_head.weight.detach().clone()
    ids = torch.tensor([3, 7, 7, 41])
    out = model(torch.randint(2, 12, (4, 16)), labels=torch.randint(2, 12, (4, 16)), puzzle_identifiers=ids)
    out.loss.backward()
    assert model.model.puzzle_emb.weight.grad is None  # taken away: clipping and divergence checks see the network
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()

    moved = (model.model.puzzle_emb.weight != table).any(-1)
    assert moved.nonzero().flatten().tolist() == [3, 7, 41]
    assert not torch.equal(model.lm_head.weight, network)
    # TRM's sign update: w (1 - lr wd) - lr sign(g), so every moved coordinate moved by about lr
    step = (model.model.puzzle_emb.weight[moved] - table[moved] * (1 - 0.01 * 0.1)).abs()
    assert torch.allclose(step[step > 0], torch.tensor(0.01), atol=1e-6)
    assert model.model.puzzle_emb.weight not in optimizer.state  # no moments: the checkpoint holds the table once


TINY = {  # three tasks: recolour 1 -> 2, flip left-right, keep
    "t_recolour": {"train": [{"input": [[1, 0], [0, 1]], "output": [[2, 0], [0, 2]]},
                             {"input": [[1, 1, 0]], "output": [[2, 2, 0]]}],
                   "test": [{"input": [[0, 1, 1]]}]},
    "t_flip": {"train": [{"input": [[1, 2, 3]], "output": [[3, 2, 1]]}, {"input": [[4, 0]], "output": [[0, 4]]}],
               "test": [{"input": [[5, 6]]}, {"input": [[7, 8, 9]]}]},
    "t_keep": {"train": [{"input": [[3, 3], [0, 3]], "output": [[3, 3], [0, 3]]}], "test": [{"input": [[6]]}]},
}
TINY_SOLUTIONS = {"t_recolour": [[[0, 2, 2]]], "t_flip": [[[6, 5]], [[9, 8, 7]]], "t_keep": [[[6]]]}


def write_tiny(folder: Path, split: str = "training") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"arc-agi_{split}_challenges.json").write_text(json.dumps(TINY))
    (folder / f"arc-agi_{split}_solutions.json").write_text(json.dumps(TINY_SOLUTIONS))
    return folder


def test_every_version_has_its_own_identifier_and_items_are_placed_alike_on_the_canvas(tmp_path):
    tasks = load_split(write_tiny(tmp_path), "training")
    versions = build_versions(tasks, 5, seed=0, progress=False)
    identifiers = [i for t in tasks for i, _ in versions.versions(t)]
    assert sorted(identifiers) == list(range(1, versions.num_identifiers))  # 0 stays the blank identifier
    pairs = training_pairs(tasks, held_out={"t_flip"})
    dataset = ArcTrainingPairs(versions, pairs, side=6, length=200, seed=1)
    owner = {i: (t, aug) for t in tasks for i, aug in versions.versions(t)}
    offsets = set()
    for k in range(200):
        item = dataset[k]
        x, y = item["input_ids"].view(6, 6).numpy(), item["labels"].view(6, 6).numpy()
        top, left = np.argwhere(x >= 2).min(0)
        assert (np.argwhere(y >= 2).min(0) == (top, left)).all()  # input and output moved together
        offsets.add((top, left))
        question = decode(np.roll(x, (-top, -left), axis=(0, 1)))
        answer = decode(np.roll(np.where(y < 0, 0, y), (-top, -left), axis=(0, 1)))
        expected = encode(answer, top, left, 6).astype(np.int64)
        assert np.array_equal(y, np.where(expected == 0, -100, expected))  # the loss ignores the padding only
        task_id, aug = owner[int(item["puzzle_identifiers"])]
        assert any(np.array_equal(aug.invert(question), q) and np.array_equal(aug.invert(answer), a)
                   for q, a in pairs[task_id])
    assert len(offsets) > 5
    assert dataset[17]["input_ids"].equal(ArcTrainingPairs(versions, pairs, 6, 200, seed=1)[17]["input_ids"])


def test_test_outputs_of_the_test_split_are_not_training_pairs_but_other_splits_test_pairs_are(tmp_path):
    tasks = load_split(write_tiny(tmp_path), "training")
    pairs = training_pairs(tasks, held_out={"t_flip", "t_keep"})
    assert len(pairs["t_recolour"]) == 3  # its test pair is training data: its split is not scored
    for task_id in ("t_flip", "t_keep"):
        assert [id(a) for _, a in pairs[task_id]] == [id(a) for _, a in tasks[task_id].train]


@pytest.mark.skipif(not SHARED_ARC.is_dir(), reason="the shared ARC files are not on this machine")
def test_no_evaluation_test_output_reaches_training_on_the_real_files():
    from modeling_lstm_trm.tasks.arc.task import ArcArguments, load_tasks

    args = ArcArguments(data_dir=str(SHARED_ARC), train_splits=["training", "evaluation"], test_split="evaluation")
    tasks, test_ids, _ = load_tasks(args, is_main=False)
    assert len(test_ids) == 400 and len(tasks) == 800
    pairs = training_pairs(tasks, held_out=set(test_ids))
    held_outputs = {id(a) for t in test_ids for _, a in tasks[t].test}
    taught = [a for task_pairs in pairs.values() for _, a in task_pairs]
    assert not held_outputs & {id(a) for a in taught}
    # nor a copy of one: no held-out test output is a training answer of its own task
    for t in test_ids:
        for _, truth in tasks[t].test:
            assert not any(a.shape == truth.shape and np.array_equal(a, truth) for _, a in pairs[t]
                           if not any(a is b for _, b in tasks[t].train))
    assert sum(len(p) for p in pairs.values()) == sum(len(tasks[t].train) for t in tasks) + sum(
        len(tasks[t].test) for t in tasks if t not in test_ids)


@pytest.fixture(scope="module")
def arc_run(tmp_path_factory):
    """A tiny run through examples/train.py --task arc on the three toy tasks (4x4 canvas, 3 versions each)."""
    data = write_tiny(tmp_path_factory.mktemp("arc") / "data")
    out = data.parent / "run"
    load_example("train").main([
        "--task", "arc", "--preset", "smoke", "--data_dir", str(data), "--output_dir", str(out),
        "--canvas_size", "4", "--num_augmentations", "3", "--hidden_size", "16", "--puzzle_emb_ndim", "16",
        "--max_steps", "60", "--eval_steps", "30", "--save_strategy", "no", "--disable_tqdm", "true",
        "--max_minutes", "5", "--per_device_train_batch_size", "8"])
    return data, out


def test_a_run_writes_the_submission_pass_at_k_and_the_versions(arc_run):
    data, out = arc_run
    submission = json.loads((out / "submission.json").read_text())
    assert sorted(submission) == sorted(TINY)
    assert [sorted(entry) for entry in submission["t_flip"]] == [["attempt_1", "attempt_2"]] * 2
    assert all(isinstance(g, list) and all(isinstance(r, list) for r in g)
               for entries in submission.values() for e in entries for g in e.values())
    results = json.loads((out / "eval_results.json").read_text())
    assert {"pass@1", "pass@2"} <= set(results) and results["pass@2"] >= results["pass@1"]
    assert results["held_out"]["tasks"] == 3
    run = json.loads((out / "training_run.json").read_text())
    tasks = load_split(data, "training")
    expected = build_versions({t: tasks[t] for t in sorted(tasks)}, 3, seed=0, progress=False)  # the run's order
    assert run["data"]["puzzle_identifiers"] == expected.num_identifiers
    versions, side = load_versions(out, load_split(data, "training"))
    assert side == 4 and versions.augmentations == expected.augmentations
    assert "eval_pass@2" in run["evaluations"][0]
    assert "pass@2" in (out / "README.md").read_text()


def test_solve_votes_over_the_versions_and_draws_input_attempts_and_truth(arc_run, tmp_path, capsys):
    data, out = arc_run
    png = tmp_path / "arc.png"
    reports = load_example("solve").main(["--model", str(out), "t_flip", "t_keep", "--png", str(png)])
    assert [(r["task"], r["test_input"]) for r in reports] == [("t_flip", 0), ("t_flip", 1), ("t_keep", 0)]
    assert all(isinstance(r["solved"], bool) and len(r["attempts"]) == 2 for r in reports)
    assert png.stat().st_size > 5000 and "versions voted" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        load_example("solve").main(["--model", str(out), "not_a_task"])
    assert "was not trained on task not_a_task" in capsys.readouterr().err


def test_the_pipeline_answers_an_arc_tasks_json_as_solve_py_does(arc_run, capsys):
    from transformers import pipeline

    import modeling_lstm_trm  # noqa: F401  (registers pipeline("puzzle-solving"))

    data, out = arc_run
    challenges = json.loads((data / "arc-agi_training_challenges.json").read_text())
    answers = pipeline("puzzle-solving", model=str(out))({t: challenges[t] for t in ("t_flip", "t_keep")})
    reports = load_example("solve").main(["--model", str(out), "t_flip", "t_keep"])
    assert [(t, a["test_input"]) for t in answers for a in answers[t]] == [(r["task"], r["test_input"])
                                                                        for r in reports]
    assert [a["attempts"] for t in answers for a in answers[t]] == [r["attempts"] for r in reports]
    assert all(a["solved"] is None and a["versions_voted"] == 4 for t in answers for a in answers[t])  # no outputs
    with pytest.raises(ValueError, match="was not trained on task other"):
        pipeline("puzzle-solving", model=str(out))({"other": challenges["t_flip"]})


def test_evaluate_scores_a_split_and_writes_the_submission(arc_run, tmp_path, capsys):
    data, out = arc_run
    last = load_example("evaluate_model").main(["--model", str(out), "--data_dir", str(data), "--output_dir",
                                                str(tmp_path)])
    assert last["tasks"] == 3 and last == json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert json.loads((tmp_path / "submission_training.json").read_text()).keys() == TINY.keys()
    assert (tmp_path / "eval_arc_training.json").is_file()
    blind = write_tiny(tmp_path / "blind")
    (blind / "arc-agi_training_solutions.json").unlink()  # a hidden test: inputs only
    last = load_example("evaluate_model").main(["--model", str(out), "--data_dir", str(blind), "--split", "training",
                                                "--output_dir", str(tmp_path / "b")])
    assert last["tasks"] == 0 and (tmp_path / "b" / "submission_training.json").is_file()


def test_evaluating_in_the_model_folder_keeps_the_runs_own_submission(arc_run, tmp_path):
    data, out = arc_run
    model = tmp_path / "model"
    shutil.copytree(out, model)
    before = (model / "submission.json").read_bytes()
    load_example("evaluate_model").main(["--model", str(model), "--data_dir", str(data)])
    assert (model / "submission.json").read_bytes() == before and (model / "submission_training.json").is_file()


@pytest.mark.parametrize("flags, message", [
    (["--train_splits", "training", "--test_split", "evaluation"], "must be one of --train_splits"),
    (["--train_splits", "nope", "--test_split", "nope"], "no arc-agi_nope_challenges.json"),
    (["--canvas_size", "31"], "--canvas_size must be in 1..30"),
])
def test_bad_arc_flags_are_one_line_errors_before_training(tmp_path, flags, message, capsys):
    data = write_tiny(tmp_path / "arc")
    with pytest.raises(SystemExit) as exit_info:
        load_example("train").main(["--task", "arc", "--data_dir", str(data), "--output_dir",
                                    str(tmp_path / "out"), *flags])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_arc_without_data_dir_says_which_flag(tmp_path, capsys):
    with pytest.raises(SystemExit):
        load_example("train").main(["--task", "arc", "--output_dir", str(tmp_path / "out")])
    assert "--data_dir is required" in capsys.readouterr().err


def _sparse_steps(rank: int, world: int, folder: str) -> None:
    """Two steps of AdamWWithSparseRows on an embedding + linear toy, each process on its half of a fixed batch."""
    import torch.distributed as dist

    from modeling_lstm_trm.training.sparse_rows import AdamWWithSparseRows

    torch.manual_seed(0)
    table, head = torch.nn.Embedding(20, 4, sparse=True), torch.nn.Linear(4, 1)
    optimizer = AdamWWithSparseRows([{"params": list(head.parameters())},
                                     {"params": [table.weight], "lr": 0.1, "weight_decay": 0.1, "sparse_rows": True}])
    ids = torch.tensor([[1, 2, 3, 4], [5, 6, 2, 9]])
    for _ in range(2):
        rows = ids.view(world, -1)[rank]
        head(table(rows)).square().sum().backward()
        if world > 1:  # what DDP does for the dense parameters (summed, as one process's sum over the whole batch)
            for p in head.parameters():
                dist.all_reduce(p.grad)
        optimizer.step()
        optimizer.zero_grad()
    torch.save(table.weight.detach(), f"{folder}/table-{world}-{rank}.pt")


def _evaluate_tiny(rank: int, world: int, folder: str) -> None:
    """The ARC evaluation of an untrained model on the toy tasks (3 versions each, 2 inputs a batch)."""
    from modeling_lstm_trm.tasks.arc.arc_data import CHARSET
    from modeling_lstm_trm.tasks.arc.evaluation import demonstration_accuracy, predict_test_inputs

    tasks = load_split(folder, "training")
    versions = build_versions(tasks, 3, seed=0, progress=False)
    torch.manual_seed(0)
    config = LSTMTRMConfig(vocab_size=len(CHARSET), seq_len=16, num_puzzle_identifiers=versions.num_identifiers,
                           puzzle_emb_ndim=16, hidden_size=16, num_layers=1, T_cycles=1, n_cycles=1, halt_max_steps=2,
                           forward_dtype="float32")
    model = LSTMTRMForPuzzleSolving(config).eval()
    with torch.no_grad():  # random everywhere (the Q head starts at a constant): every item answers differently
        for parameter in model.parameters():
            parameter.normal_(0, 0.5)
    candidates = predict_test_inputs(model, versions, sorted(tasks), side=4, batch_size=2, progress=False)
    demo = demonstration_accuracy(model, versions, sorted(tasks), side=4, batch_size=2, progress=False)
    saved = [[task_id, index, [[None if grid is None else grid.tolist(), confidence] for grid, confidence in entries]]
             for (task_id, index), entries in candidates.items()]
    Path(f"{folder}/evaluation-{world}-{rank}.json").write_text(json.dumps({"candidates": saved, "demo": demo}))


def _load_evaluation(path: Path) -> tuple[dict, dict]:
    """What `_evaluate_tiny` wrote: the candidates (grids back as arrays) in their order, and the demo accuracy."""
    saved = json.loads(path.read_text())
    candidates = {(task_id, index): [(None if grid is None else np.array(grid), confidence)
                                     for grid, confidence in entries]
                  for task_id, index, entries in saved["candidates"]}
    return candidates, saved["demo"]


def _in_processes(rank: int, world: int, port: int, folder: str) -> None:
    import torch.distributed as dist

    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    _sparse_steps(rank, world, folder)
    _evaluate_tiny(rank, world, folder)
    if world > 1:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """The folder where two processes (gloo) and then one wrote what they computed."""
    import socket

    import torch.multiprocessing as mp

    folder = write_tiny(tmp_path_factory.mktemp("processes"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_in_processes, args=(2, port, str(folder)), nprocs=2)
    _in_processes(0, 1, port, str(folder))
    return folder


def test_sparse_rows_move_alike_on_every_process_and_as_on_one(two_processes):
    """Under several processes the batch's rows are gathered from all of them: every process's table ends the same,
    and the same as one process that saw the whole batch (the sign update ignores the gradient's scale)."""
    tables = [torch.load(two_processes / f"table-{name}.pt", weights_only=True) for name in ("2-0", "2-1", "1-0")]
    assert torch.equal(tables[0], tables[1]) and torch.allclose(tables[0], tables[2])
    torch.manual_seed(0)
    untouched = torch.nn.Embedding(20, 4).weight.detach()
    moved = (tables[0] != untouched).any(-1).nonzero().flatten().tolist()
    assert moved == [1, 2, 3, 4, 5, 6, 9]


def test_processes_share_the_evaluation_and_all_get_what_one_process_gets(two_processes):
    """Each process solves its share of the (version, test input) items; gathered, every process holds every
    candidate in the order one process makes them, so the votes, and the submission, are the same."""
    runs = [_load_evaluation(two_processes / f"evaluation-{name}.json") for name in ("2-0", "2-1", "1-0")]
    (one, one_demo), count = runs[2], 0
    for candidates, demo in runs[:2]:
        assert list(candidates) == list(one) and demo == pytest.approx(one_demo)
        for key in one:
            assert len(candidates[key]) == len(one[key]) == 4  # the task as it is and 3 versions
            for (grid, confidence), (grid_one, confidence_one) in zip(candidates[key], one[key]):
                assert (grid is None) == (grid_one is None) and (grid is None or np.array_equal(grid, grid_one))
                assert confidence == pytest.approx(confidence_one, abs=1e-6)
                count += grid is not None
    assert count > 0  # some answers decode to a grid, so grids are compared too
    confidences = [c for key in one for _, c in one[key]]
    assert len(set(confidences)) > len(confidences) // 2  # the items are told apart, so their order is checked
