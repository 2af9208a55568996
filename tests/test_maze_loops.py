"""Specification of mazes with loops (issue 34): every generator's kind of maze, scoring by valid shortest path where
several shortest paths exist (checked against an independent enumeration of all of them), the auxiliary distance
target (off by default, a maze-only flag), training labels that one rule explains where a maze has several
shortest paths, and a tiny run of the loops recipe read by side."""

import json
from collections import deque
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from modeling_lstm_trm.models.lstm_trm import LSTMTRMConfig, LSTMTRMForPuzzleSolving
from modeling_lstm_trm.tasks.maze.mazes import (
    GOAL,
    MAZE_KINDS,
    MAZE_STYLES,
    OPEN,
    PATH,
    START,
    WALL,
    MazeDataset,
    distance_target,
    generate_mazes,
    long_path,
    parent_target,
    path_problem,
    score_mazes,
    solve_maze,
    to_tokens,
    with_distance_target,
    with_parent_target,
)

LOOPED = ("#######"
          "#S    #"
          "# # # #"
          "#     #"
          "# # # #"
          "#    G#"
          "#######")  # a 3x3 grid of open corridors: 6 shortest paths of 8 steps


def steps_from(grid: np.ndarray, source) -> dict:
    """Breadth-first steps from `source` through non-wall cells, written apart from the package."""
    seen, queue = {source: 0}, deque([source])
    while queue:
        r, c = queue.popleft()
        for nxt in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if 0 <= nxt[0] < grid.shape[0] and 0 <= nxt[1] < grid.shape[1] and grid[nxt] != WALL and nxt not in seen:
                seen[nxt] = seen[(r, c)] + 1
                queue.append(nxt)
    return seen


def every_shortest_path(question: np.ndarray) -> list[list[tuple[int, int]]]:
    """All shortest paths from S to G, by walking forward through cells one step farther from S and one nearer G."""
    start = tuple(np.argwhere(question == START)[0])
    goal = tuple(np.argwhere(question == GOAL)[0])
    from_s, from_g = steps_from(question, start), steps_from(question, goal)
    length = from_s[goal]
    paths, stack = [], [[start]]
    while stack:
        path = stack.pop()
        if path[-1] == goal:
            paths.append(path)
            continue
        r, c = path[-1]
        for nxt in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if from_s.get(nxt) == len(path) and from_g.get(nxt) == length - len(path):
                stack.append(path + [nxt])
    return paths


def marked(question: np.ndarray, cells) -> np.ndarray:
    answer = question.copy()
    for cell in cells:
        if question[cell] == OPEN:
            answer[cell] = PATH
    return answer


def test_valid_shortest_path_accepts_every_shortest_path_and_only_those():
    question = to_tokens(LOOPED, 7, "test", "maze")
    paths = every_shortest_path(question)
    assert len(paths) == 6 and {len(p) for p in paths} == {9}
    label = marked(question, paths[0])
    right = np.stack([marked(question, p) for p in paths])
    scores = score_mazes(np.stack([question] * 6), np.stack([label] * 6), right)
    assert scores["valid_shortest_path_accuracy"] == 1.0 and scores["exact_accuracy"] == pytest.approx(1 / 6)
    assert scores["unique_path_mazes"] == 0 and "exact_accuracy_unique" not in scores
    detour = [(1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (2, 5), (3, 5), (3, 4), (3, 3), (4, 3), (5, 3), (5, 4), (5, 5)]
    wrong = [marked(question, detour),  # a path, not a shortest one
             marked(question, paths[0][:-2]),  # one cell short
             marked(question, paths[0] + [(3, 1)]),  # one cell too many
             marked(question, paths[0][:4] + paths[1][4:]) if paths[0][3] != paths[1][3] else question,  # broken
             question]  # nothing marked
    scores = score_mazes(np.stack([question] * len(wrong)), np.stack([label] * len(wrong)), np.stack(wrong))
    assert scores["valid_shortest_path_accuracy"] == 0.0


def test_exact_match_is_also_reported_over_the_mazes_whose_shortest_path_is_unique():
    looped = to_tokens(LOOPED, 7, "test", "maze")
    perfect, answers = generate_mazes(2, 7, 4, seed=1, loops=0.0)
    questions = np.concatenate([perfect, looped[None]])
    labels = np.concatenate([answers, marked(looped, every_shortest_path(looped)[0])[None]])
    predictions = labels.copy()
    predictions[0] = perfect[0]  # one unique-path maze wrong
    scores = score_mazes(questions, labels, predictions)
    assert scores["unique_path_mazes"] == 2 and scores["exact_accuracy_unique"] == 0.5


@pytest.mark.parametrize("style", sorted(MAZE_KINDS))
def test_every_kind_of_maze_has_a_reachable_goal_at_least_its_path_floor_away(style):
    questions, answers = generate_mazes(4, 15, long_path(15, style), seed=3, style=style)
    for question, answer in zip(questions, answers):
        start = tuple(np.argwhere(question == START)[0])
        goal = tuple(np.argwhere(question == GOAL)[0])
        steps = steps_from(question, start)
        assert steps[goal] >= long_path(15, style)
        assert (answer == PATH).sum() == steps[goal] - 1
        assert made_as_its_kind(question, style)


def independent_loops(question: np.ndarray) -> int:
    """Open neighbour pairs - open cells + 1: a maze's independent loops where its open cells are connected."""
    open_cells = question != WALL
    pairs = (open_cells[1:] & open_cells[:-1]).sum() + (open_cells[:, 1:] & open_cells[:, :-1]).sum()
    return int(pairs) - int(open_cells.sum()) + 1


def made_as_its_kind(question: np.ndarray, kind: str) -> bool:
    """What each kind is built to be: perfect ones a tree of all open cells, many-loops 10+ independent loops,
    start-inside an S with 3+ open neighbours (not a dead end), open-field a G inside a cleared 3x3 room."""
    if kind in ("wilson", "kruskal", "division"):
        start = tuple(np.argwhere(question == START)[0])
        return independent_loops(question) == 0 and len(steps_from(question, start)) == int((question != WALL).sum())
    if kind == "many-loops":
        return independent_loops(question) >= 10
    if kind == "start-inside":
        walled = np.pad(question, 1, constant_values=WALL)
        r, c = np.argwhere(walled == START)[0]
        return sum(walled[n] != WALL for n in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1))) >= 3
    if kind == "open-field":
        r, c = np.argwhere(question == GOAL)[0]
        return bool((question[r - 1:r + 2, c - 1:c + 2] != WALL).all())
    return True


def test_mixed_training_mazes_draw_several_kinds():
    questions, _ = generate_mazes(40, 15, long_path(15, "mixed"), seed=5, style="mixed")
    loops = [independent_loops(q) for q in questions]
    assert min(loops) <= 0 < 20 < max(loops) and "mixed" in MAZE_STYLES


def test_a_mixed_draw_names_the_kind_it_kept_and_a_long_path_floor_shifts_the_mix_towards_carved_mazes(tmp_path):
    import random
    from argparse import Namespace

    from conftest import BENCHMARKS, load_example

    from modeling_lstm_trm.tasks.maze.mazes import draw_maze, generate_maze

    drawn = [draw_maze(15, 22, random.Random(seed), style="mixed") for seed in range(40)]
    for seed, (question, answer, kind) in enumerate(drawn):  # the same maze generate_maze makes, and of its kind
        same_question, same_answer = generate_maze(15, 22, random.Random(seed), style="mixed")
        assert (question == same_question).all() and (answer == same_answer).all()
        assert made_as_its_kind(question, kind), (seed, kind)
    assert len({kind for *_, kind in drawn}) == 5
    bench = load_example("bench_maze_extrapolation", BENCHMARKS, "benchmark")
    args = Namespace(path_floors=[8, 16], train_sizes=[15], num_mazes=30, seed=0, out=tmp_path, results_name="k.json")
    preset_floor, far_floor = bench.kinds_kept(args)
    assert (preset_floor["min_path_length"], far_floor["min_path_length"]) == (22, 44)
    assert sum(far_floor["kinds"].values()) == pytest.approx(1.0)
    assert far_floor["kinds"]["carved"] > 0.5 > preset_floor["kinds"]["carved"]
    assert json.loads((tmp_path / "k.json").read_text()) == [preset_floor, far_floor]


def path_by_the_frame_rule(question: np.ndarray) -> set:
    """Walking back from G, always to the first neighbour one step nearer S, looking down, up, right, left."""
    from_s = steps_from(question, tuple(np.argwhere(question == START)[0]))
    cell, path = tuple(np.argwhere(question == GOAL)[0]), set()
    while from_s[cell] > 1:
        r, c = cell
        cell = next(n for n in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)) if from_s.get(n) == from_s[cell] - 1)
        path.add(cell)
    return path


def test_where_a_maze_has_several_shortest_paths_every_training_label_marks_the_one_a_rule_picks_in_its_frame():
    question = to_tokens(LOOPED, 7, "test", "maze")
    answer = marked(question, every_shortest_path(question)[0])  # a valid path, not the rule's in every image
    labels = with_distance_target(question[None], answer[None])
    items = [MazeDataset(question[None], labels, 64, tie_break=tie_break) for tie_break in ("frame", "given")]
    disagree = 0
    for frame, given in zip(*items):
        turned = frame["input_ids"].numpy().reshape(7, 7)
        assert np.array_equal(turned, given["input_ids"].numpy().reshape(7, 7))  # the same image of the maze
        rule = marked(turned, path_by_the_frame_rule(turned))
        frame_label, given_label = (item["labels"].numpy().reshape(2, 7, 7) for item in (frame, given))
        assert np.array_equal(frame_label[0], rule)
        assert np.array_equal(frame_label[1], distance_target(turned))
        assert np.array_equal(given_label[1], frame_label[1])
        assert path_problem(turned, given_label[0]) is None  # a shortest path all the same
        disagree += not np.array_equal(given_label[0], rule)
    assert disagree > 0  # "given" turns one path with the maze: a label the model cannot read off the image


def test_tie_break_is_frame_by_default_and_an_unknown_one_is_refused():
    from modeling_lstm_trm.tasks.maze.arguments import MazeArguments

    assert MazeArguments().tie_break == "frame"
    with pytest.raises(ValueError, match="--tie_break must be one of frame, given"):
        MazeArguments(tie_break="nearest").check()


def test_the_distance_target_is_the_wave_from_s_modulo_3_and_leads_back_from_g():
    question = to_tokens(LOOPED, 7, "test", "maze")
    target = distance_target(question)
    start = tuple(np.argwhere(question == START)[0])
    steps = steps_from(question, start)
    for cell, value in np.ndenumerate(target):
        assert value == (1 + steps[cell] % 3 if cell in steps else 0)
    cell, walked = tuple(np.argwhere(question == GOAL)[0]), 0
    while cell != start:  # a neighbour one class lower (mod 3) is one step nearer S
        r, c = cell
        cell = next(n for n in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1))
                    if target[n] and (target[n] - 1) % 3 == (target[cell] - 2) % 3)
        walked += 1
    assert walked == steps[tuple(np.argwhere(question == GOAL)[0])]
    both = with_distance_target(question[None], question[None])
    assert both.shape == (1, 2, 7, 7) and (both[0, 1] == target).all()


def tiny_config(**overrides):
    return LSTMTRMConfig(**{**dict(vocab_size=6, seq_len=49, puzzle_emb_ndim=0, hidden_size=16, num_layers=1,
                                   T_cycles=1, n_cycles=1, halt_max_steps=2, mixer="conv", forward_dtype="float32"),
                            **overrides})


def test_the_auxiliary_head_is_off_by_default_and_trains_on_labels_of_twice_the_length():
    question = torch.from_numpy(to_tokens(LOOPED, 7, "test", "maze").reshape(1, -1))
    answer = question.clone()
    torch.manual_seed(0)
    plain = LSTMTRMForPuzzleSolving(tiny_config())
    assert plain.aux_head is None
    with pytest.raises(ValueError, match="must have the shape of `input_ids`"):
        plain(question, labels=torch.cat([answer, answer], 1))
    torch.manual_seed(0)
    model = LSTMTRMForPuzzleSolving(tiny_config(auxiliary_classes=4)).train()
    target = torch.from_numpy(distance_target(question.reshape(7, 7).numpy()).reshape(1, -1))
    without = model(question, labels=answer)
    with_target = model(question, labels=torch.cat([answer, target], 1))
    assert "auxiliary_loss" not in without.metrics and "auxiliary_loss" in with_target.metrics
    assert with_target.loss > without.loss  # the same answer loss plus the auxiliary one
    with_target.loss.backward()
    assert model.aux_head.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="auxiliary_classes=4"):
        model(question, labels=torch.cat([answer, target + 4], 1))


def test_with_arrival_each_distance_class_carries_the_step_a_wave_from_s_reaches_its_cell():
    question = to_tokens(LOOPED, 7, "test", "maze")
    steps = steps_from(question, tuple(np.argwhere(question == START)[0]))
    timed = distance_target(question, with_arrival=True)
    assert np.array_equal(timed % 4, distance_target(question))
    for cell, value in np.ndenumerate(timed):
        assert value // 4 == steps.get(cell, 0)


def front_labels(answer, question, depth, speed):
    """The distance classes a front of `speed` cells a step has reached after `depth` steps; the rest unscored."""
    steps = steps_from(question.reshape(7, 7).numpy(), tuple(np.argwhere(question.reshape(7, 7).numpy() == START)[0]))
    classes = distance_target(question.reshape(7, 7).numpy())
    due = np.array([[(r, c) not in steps or steps[r, c] <= speed * depth for c in range(7)] for r in range(7)])
    return torch.cat([answer, torch.from_numpy(np.where(due, classes, -100).reshape(1, -1))], 1)


def test_a_front_asks_each_distance_only_from_the_step_a_wave_of_its_speed_can_have_reached_the_cell():
    question = torch.from_numpy(to_tokens(LOOPED, 7, "test", "maze").reshape(1, -1))
    answer = question.clone()
    timed = torch.cat([answer, torch.from_numpy(distance_target(question.reshape(7, 7).numpy(), True).reshape(1, -1))],
                      1)
    torch.manual_seed(0)
    front = LSTMTRMForPuzzleSolving(tiny_config(auxiliary_classes=4, auxiliary_front_speed=2)).eval()
    plain = LSTMTRMForPuzzleSolving(tiny_config(auxiliary_classes=4)).eval()
    plain.load_state_dict(front.state_dict())
    first = front(question, labels=timed)
    assert torch.allclose(first.metrics["auxiliary_loss"][0],  # step 1: cells at most 2 steps from S
                          plain(question, labels=front_labels(answer, question, 1, 2)).metrics["auxiliary_loss"][0])
    ahead = replace(first.cache, head_start=torch.tensor([3]))  # as if progressive training had run 3 steps first
    second = front(question, labels=timed, cache=ahead)
    due_by_5 = front_labels(answer, question, 5, 2)  # a row that goes on keeps the labels in its carry
    reference = plain(question, labels=due_by_5, cache=replace(ahead, labels=due_by_5))
    assert ahead.depth.item() == 4 and second.cache.depth.item() == 5 and second.cache.head_start.item() == 3
    assert torch.allclose(second.metrics["auxiliary_loss"][0], reference.metrics["auxiliary_loss"][0])
    assert not torch.allclose(second.metrics["auxiliary_loss"][0], first.metrics["auxiliary_loss"][0])
    with pytest.raises(ValueError, match="`auxiliary_front_speed` schedules the auxiliary target"):
        tiny_config(auxiliary_front_speed=2)
    with pytest.raises(ValueError, match="non-negative"):
        front(question, labels=torch.cat([answer, -timed[:, 49:] - 1], 1))


def test_progressive_training_keeps_each_rows_head_start_in_the_carry():
    questions = torch.from_numpy(np.stack([to_tokens(LOOPED, 7, "test", "maze")] * 3).reshape(3, -1))
    model = LSTMTRMForPuzzleSolving(tiny_config(progressive_steps=3, halt_max_steps=4)).train()
    torch.manual_seed(1)
    out = model(questions)
    while out.cache.head_start is None:  # a draw of 0 runs nothing ahead
        out = model(questions)
    head_start = out.cache.head_start
    assert head_start.min() >= 1 and head_start.max() <= 3 and len(head_start.unique()) == 1  # one draw per batch
    going = replace(out.cache, halted=torch.tensor([True, False, False]))
    later = model(questions, cache=going).cache
    assert torch.equal(later.head_start[1:], head_start[1:])  # the rows that go on keep theirs
    assert torch.equal(later.depth[1:], head_start[1:] + out.cache.steps[1:] + 1)


def test_distance_front_speed_goes_with_the_distance_target():
    from modeling_lstm_trm.tasks.maze.arguments import MazeArguments

    with pytest.raises(ValueError, match="--distance_front_speed schedules the distance target"):
        MazeArguments(distance_front_speed=4).check()
    with pytest.raises(ValueError, match="--distance_front_speed must be at least 0"):
        MazeArguments(distance_target=True, distance_front_speed=-1).check()
    MazeArguments(distance_target=True, distance_front_speed=4).check()


def test_the_parent_target_points_each_cell_at_the_first_nearer_neighbour_and_leads_back_along_the_label():
    rng = __import__("random").Random(3)
    mazes = [to_tokens(LOOPED, 7, "test", "maze")] + [generate_maze_of(style, rng) for style in ("scattered", "carved")]
    for question in mazes:
        target = parent_target(question)
        start, goal = (tuple(np.argwhere(question == token)[0]) for token in (START, GOAL))
        steps = steps_from(question, start)
        for (r, c), value in np.ndenumerate(target):
            if (r, c) not in steps:
                assert value == 0
            elif (r, c) == start:
                assert value == 1
            else:  # looking down, up, right, left: the first open neighbour one step nearer S
                nearer = [i for i, (dr, dc) in enumerate(((1, 0), (-1, 0), (0, 1), (0, -1)))
                          if steps.get((r + dr, c + dc), -1) == steps[r, c] - 1]
                assert value == 2 + nearer[0]
        cell, followed = goal, set()
        while cell != start:
            dr, dc = ((1, 0), (-1, 0), (0, 1), (0, -1))[target[cell] - 2]
            cell = (cell[0] + dr, cell[1] + dc)
            followed.add(cell)
        assert followed - {start} == set(map(tuple, np.argwhere(solve_maze(question)[0] == PATH)))


def test_the_wave_benchmark_counts_any_pointer_to_a_nearer_neighbour_as_right_and_only_those_and_finds_swapped_ends():
    from conftest import BENCHMARKS, load_example

    bench = load_example("bench_maze_extrapolation", BENCHMARKS, "benchmark")
    question = to_tokens(LOOPED, 7, "test", "maze")
    start, goal = (tuple(np.argwhere(question == token)[0]) for token in (START, GOAL))
    steps, to_goal = steps_from(question, start), steps_from(question, goal)
    steps_from_s, steps_from_g = np.full((1, 7, 7), -1), np.full((1, 7, 7), -1)
    for cell, value in steps.items():
        steps_from_s[(0, *cell)], steps_from_g[(0, *cell)] = value, to_goal[cell]
    on_a_shortest_path = {cell for cell in steps if steps[cell] + to_goal[cell] == steps[goal]}
    assert len(on_a_shortest_path) > steps[goal] + 1  # the looped maze has more than one shortest path
    looking = ((1, 0), (-1, 0), (0, 1), (0, -1))
    for (r, c), value in steps.items():  # every class the head could say at each reachable cell
        for said_class in range(6):
            said = parent_target(question)[None].copy()
            said[0, r, c] = said_class
            named = steps.get((r + looking[said_class - 2][0], c + looking[said_class - 2][1]), -1)
            expected = said_class == 1 if value == 0 else said_class >= 2 and named == value - 1
            valid = bench.pointer_valid(steps_from_s, said)
            assert valid[0, r, c] == expected, ((r, c), said_class)
            assert valid[steps_from_s >= 0].sum() == len(steps) - (not expected)  # the others stay right
            solved = np.array([(r + c) % 2 == 0])  # either outcome: the maze's swapped share goes to its side
            errors = bench.pointer_errors(steps_from_s, steps_from_g, said, valid, solved)
            assert errors["wrong"] == (not expected) * (value > 0)
            assert errors["said_farther"] == (value > 0 and said_class >= 2 and named == value + 1)
            on_band = value > 0 and (r, c) in on_a_shortest_path
            assert errors["band_cells"] == len(on_a_shortest_path - {start})
            assert errors["band_wrong"] == (on_band and not expected)
            named_cell = (r + looking[said_class - 2][0], c + looking[said_class - 2][1])
            ends_swapped = said_class >= 2 and named_cell in to_goal and to_goal[named_cell] == to_goal[r, c] - 1
            assert errors["band_said_toward_g"] == (on_band and not expected and ends_swapped)
            share = pytest.approx(errors["band_said_toward_g"] / errors["band_cells"], abs=1e-4)
            assert (errors["band_swapped_solved"], errors["band_swapped_unsolved"]) == (
                (share, None) if solved[0] else (None, share))
            tenth = min(9, 10 * value // steps[goal])
            by_position = errors["band_wrong_by_position"]
            assert [k for k, share in enumerate(by_position) if share] == ([tenth] if on_band and not expected else [])


def generate_maze_of(style, rng):
    from modeling_lstm_trm.tasks.maze.mazes import generate_maze

    return generate_maze(11, 10, rng, style=style)[0]


def test_parent_labels_are_recomputed_in_every_turned_frame():
    question = to_tokens(LOOPED, 7, "test", "maze")
    labels = with_parent_target(question[None], question[None])
    for item in MazeDataset(question[None], labels, 32, target_in_frame=parent_target):
        turned = item["input_ids"].numpy().reshape(7, 7)
        label = item["labels"].numpy().reshape(2, 7, 7)
        assert np.array_equal(label[1], parent_target(turned))  # directions of this frame, not the turned numbers
        assert np.array_equal(label[0], solve_maze(turned)[0])  # and the path they lead back along


def test_parent_target_is_one_kind_of_second_target():
    from modeling_lstm_trm.tasks.maze.arguments import MazeArguments

    with pytest.raises(ValueError, match="--parent_target and --distance_target"):
        MazeArguments(parent_target=True, distance_target=True).check()


def test_distance_target_is_a_maze_flag_that_other_tasks_refuse(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, str(root / "examples" / "train.py"), "--task", "sudoku", "--distance_target",
                          "--output_dir", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "--distance_target" in run.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("flags", [["--conv_max"], ["--conv_neighbours", "4"]])
def test_the_conv_mixers_flags_are_refused_with_a_mixer_that_is_not_the_conv_one(tmp_path, capsys, flags):
    from conftest import load_example

    with pytest.raises(SystemExit):
        load_example("train").main(["--task", "sudoku", *flags, "--output_dir", str(tmp_path / "o")])
    assert flags[0] in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "o").exists()


def test_a_tiny_run_of_the_loops_recipe_trains_and_is_read_by_side(tmp_path, capsys):
    from conftest import load_example

    out = tmp_path / "loops"
    load_example("train").main(["--task", "maze", "--recipe", "loops", "--maze_sizes", "7", "9", "--min_path_length",
                                "6", "--train_mazes", "16", "--eval_mazes", "4", "--max_steps", "3",
                                "--distance_target", "--distance_front_speed", "4", "--conv_max",
                                "--conv_neighbours", "4", "--eval_strategy", "no", "--save_strategy", "no",
                                "--disable_tqdm", "true", "--hidden_size", "16", "--output_dir", str(out)])
    config = json.loads((out / "config.json").read_text())
    run = json.loads((out / "training_run.json").read_text())
    data = run["data"]
    assert config["auxiliary_classes"] == 4 and config["progressive_steps"] > 0 and run["tie_break"] == "frame"
    assert config["conv_max"] is True and config["conv_neighbours"] == 4
    assert config["auxiliary_front_speed"] == 4
    assert run["lr_scheduler"] == "cosine over the time budget"  # the recipe decays the rate over its 25 minutes
    assert data["source"].startswith("generated mixed, sides 7, 9")
    capsys.readouterr()
    load_example("evaluate_model").main(["--model", str(out), "--sizes", "7", "11", "--maze_style", "scattered",
                                         "--num_puzzles", "3", "--depths", "1", "3", "--fixed_point_steps", "2"])
    shown = capsys.readouterr().out
    assert "valid shortest path accuracy by side" in shown and "| 11 |" in shown


def test_a_tiny_run_with_the_parent_target_trains_its_six_classes(tmp_path):
    from conftest import load_example

    out = tmp_path / "parent"
    load_example("train").main(["--task", "maze", "--recipe", "loops", "--maze_sizes", "7", "9", "--min_path_length",
                                "6", "--train_mazes", "16", "--eval_mazes", "4", "--max_steps", "2", "--parent_target",
                                "--eval_strategy", "no", "--save_strategy", "no", "--disable_tqdm", "true",
                                "--hidden_size", "16", "--output_dir", str(out)])
    config = json.loads((out / "config.json").read_text())
    assert config["auxiliary_classes"] == 6 and config["auxiliary_front_speed"] == 0
    assert json.loads((out / "trainer_state.json").read_text())["log_history"][-1]["step"] == 2


# ----- test-time selection over the 8 symmetries ------------------------------------------------------------------

RING = ("#######"
        "#S    #"
        "# ### #"
        "# ### #"
        "# ### #"
        "#  G  #"
        "#######")  # one shortest path of 6 steps (down the left side), one detour of 10 (round the right)
SHORT_WAY = [(2, 1), (3, 1), (4, 1), (5, 1), (5, 2)]
LONG_WAY = [(1, 2), (1, 3), (1, 4), (1, 5), (2, 5), (3, 5), (4, 5), (5, 5), (5, 4)]


def test_a_path_is_told_by_its_shape_alone_with_its_steps_and_anything_else_is_not_a_path():
    from modeling_lstm_trm.tasks.maze.selection import path_steps

    question = to_tokens(LOOPED, 7, "test", "maze")
    paths = every_shortest_path(question)
    assert [path_steps(question, marked(question, p)) for p in paths] == [8] * 6
    detour = [(1, 2), (1, 3), (1, 4), (1, 5), (2, 5), (3, 5), (3, 4), (3, 3), (4, 3), (5, 3), (5, 4)]
    assert path_steps(question, marked(question, detour)) == 12  # a path, longer than the shortest
    room = to_tokens("#######" "#S    #" "#     #" "#     #" "#     #" "#    G#" "#######", 7, "test", "maze")
    top_then_down = [(1, 2), (1, 3), (1, 4), (1, 5), (2, 5), (3, 5), (4, 5)]
    assert path_steps(room, marked(room, top_then_down)) == 8
    walled = marked(question, paths[0])
    walled[0, 0] = PATH
    not_paths = {
        "nothing marked": (question, question),
        "one cell short": (question, marked(question, paths[0][:-2])),
        "a branch": (question, marked(question, paths[0] + [(3, 1)])),
        "a wall marked": (question, walled),
        "S moved": (question, np.where(question == START, OPEN, np.where(marked(question, paths[0]) == OPEN, START,
                                                                         marked(question, paths[0])))),
        "a loop of marked cells beside the path": (room, marked(room, top_then_down + [(3, 2), (3, 3), (4, 2),
                                                                                      (4, 3)])),
    }
    for what, (maze, answer) in not_paths.items():
        assert path_steps(maze, answer) is None, what
        assert path_problem(maze, answer) is not None, what  # and none of them scores as a shortest path


def test_turning_an_image_back_undoes_each_of_the_8_symmetries():
    from modeling_lstm_trm.tasks.task import dihedral, undo_dihedral

    grid = np.arange(12).reshape(1, 3, 4)
    images = [dihedral(grid, k) for k in range(8)]
    assert len({image.tobytes() + bytes(image.shape) for image in images}) == 8
    for k, image in enumerate(images):
        assert np.array_equal(undo_dihedral(image, k), grid)


class ScriptedSolver(torch.nn.Module):
    """Stands in for a model: what it answers at each step, per maze and image (given in the maze's own frame and
    turned into the image's here). Its rows come image-major, the maze itself first, batch after batch."""

    def __init__(self, questions, script):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.questions, self.script, self.mazes_seen = questions, script, 0

    def solve(self, input_ids, max_steps, fixed_point_steps, halt_on_q_head, return_trace):
        from modeling_lstm_trm.models.lstm_trm.modeling_lstmtrm import fixed_point_stop
        from modeling_lstm_trm.tasks.task import dihedral

        assert not halt_on_q_head and return_trace  # the selection does not ask the Q head
        side = self.questions.shape[-1]
        rows = input_ids.numpy().reshape(-1, side, side)
        mazes = len(rows) // 8
        trace = []
        for r, row in enumerate(rows):
            maze, image = self.mazes_seen + r % mazes, r // mazes
            assert np.array_equal(row, dihedral(self.questions[maze], image))
            trace.append([dihedral(self.script(maze, image, step), image).reshape(-1)
                          for step in range(1, max_steps + 1)])
        self.mazes_seen += mazes
        trace = torch.from_numpy(np.array(trace)).transpose(0, 1)  # (steps, rows, cells), as solve's trace
        answers, stop = fixed_point_stop(trace, torch.zeros(trace.shape[:2]), fixed_point_steps)  # where solve stops
        held = torch.where(torch.arange(1, max_steps + 1).view(-1, 1, 1) <= stop.view(1, -1, 1), trace, answers)
        return SimpleNamespace(trace=held[: int(stop.max())], halted_at=stop)  # a halted row holds its answer


def test_the_shortest_path_among_the_images_answers_is_kept_wherever_one_image_finds_it_along_the_way():
    from modeling_lstm_trm.tasks.maze.selection import read_over_symmetries, select_over_symmetries

    question = to_tokens(RING, 7, "test", "maze")
    short, long = marked(question, SHORT_WAY), marked(question, LONG_WAY)
    assert path_problem(question, short) is None and path_problem(question, long) is not None

    def script(maze, image, step):
        if maze == 0:  # image 5 finds the shortest path at steps 2-3 and loses it; image 1 holds the detour
            return short if image == 5 and step in (2, 3) else long if image == 1 else question
        if maze == 2 and image == 0:  # the maze itself is solved and stays solved
            return short
        return question  # maze 1: never a path

    questions = np.stack([question] * 3)
    read = select_over_symmetries(ScriptedSolver(questions, script), questions, np.stack([short] * 3), max_steps=12,
                                  fixed_point_steps=2, batch_size=2, progress=False)
    assert read["one_image"]["valid_shortest_path_accuracy"] == pytest.approx(1 / 3)  # maze 2
    assert read["at_stop"]["valid_shortest_path_accuracy"] == pytest.approx(1 / 3)  # maze 0's stops: detour or none
    assert read["along_the_way"]["valid_shortest_path_accuracy"] == pytest.approx(2 / 3)  # maze 0's steps 2-3 too
    assert read["found_a_path"] == pytest.approx(2 / 3)
    assert read["mean_stop_step"] == pytest.approx(3.0)  # the maze itself holds its answer from step 1
    assert read["images_stop_steps"] == pytest.approx((3 * 8 * 3 + 3) / 3)  # all at step 3 but maze 0's image 5, at 6
    reads = read_over_symmetries(ScriptedSolver(questions, script), questions, max_steps=12, fixed_point_steps=2,
                                 batch_size=2, progress=False)
    assert reads.picked.tolist() == [[5, 2], [-1, -1], [0, 1]]  # (image, step) of each along-the-way pick
    assert np.array_equal(reads.first_maze_trace[1, 5], short) and np.array_equal(reads.along_the_way[0], short)
    with pytest.raises(ValueError, match="symmetries"):
        select_over_symmetries(ScriptedSolver(questions, script), questions, questions, 4, symmetries=9)
