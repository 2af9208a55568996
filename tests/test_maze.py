"""Specification of the maze module: TRM's grid format, shortest paths, the valid-shortest-path check, the dihedral
symmetries and the generator (checked by an independent breadth-first search)."""

import random
from collections import deque

import numpy as np
import pytest

from modeling_lstm_trm.tasks.maze.mazes import (
    OPEN,
    PATH,
    WALL,
    canonical_form,
    dihedral,
    generate_maze,
    generate_mazes,
    pad_to_canvas,
    path_problem,
    solve_maze,
    to_text,
    to_tokens,
)

SMALL = ("#######"
         "#S    #"
         "# ### #"
         "# #G  #"
         "# ### #"
         "#     #"
         "#######")


def shortest_paths(question: np.ndarray) -> tuple[int, int]:
    """Length (steps) and number of shortest paths from S to G, by a plain breadth-first search over (cell, count)
    written independently of the package."""
    text = to_text(question)
    n = question.shape[0]
    start, goal = text.index("S"), text.index("G")
    dist, ways = {start: 0}, {start: 1}
    queue = deque([start])
    while queue:
        i = queue.popleft()
        r, c = divmod(i, n)
        for j in [(r + 1) * n + c if r + 1 < n else None, (r - 1) * n + c if r else None,
                  i + 1 if c + 1 < n else None, i - 1 if c else None]:
            if j is None or text[j] == "#":
                continue
            if j not in dist:
                dist[j], ways[j] = dist[i] + 1, 0
                queue.append(j)
            if dist[j] == dist[i] + 1:
                ways[j] += ways[i]
    return dist.get(goal, -1), ways.get(goal, 0)


def test_tokens_follow_trms_charset_shifted_by_one():
    grid = to_tokens(SMALL, 7, "test", "question")
    assert grid[0, 0] == WALL == 1 and grid[1, 2] == OPEN == 2 and grid[1, 1] == 3 and grid[3, 3] == 4
    assert to_text(grid) == SMALL


@pytest.mark.parametrize("text, message", [
    (SMALL[:-1], "must have 49 characters"),
    (SMALL.replace(" ", ".", 1), "holds '.'"),
])
def test_malformed_grids_are_refused_naming_the_place(text, message):
    with pytest.raises(ValueError, match=f"mazes.csv, line 3: the question {message}"):
        to_tokens(text, 7, "mazes.csv, line 3", "question")


def test_the_solver_marks_the_shortest_path_and_the_check_accepts_only_shortest_paths():
    question = to_tokens(SMALL, 7, "test", "question")
    answer, count = solve_maze(question)
    assert count == 1 and path_problem(question, answer) is None  # over the block (8 steps), not under it (12)
    assert (answer == PATH).sum() + 1 == shortest_paths(question)[0] == 8
    detour = answer.copy()
    detour[5, 1:6] = np.where(question[5, 1:6] == OPEN, PATH, detour[5, 1:6])
    assert path_problem(question, detour).endswith("cells, a shortest path from S to G 7")  # 8 steps: 7 cells
    broken = answer.copy()
    broken[tuple(np.argwhere(answer == PATH)[2])] = OPEN
    assert path_problem(question, broken) is not None
    walled = answer.copy()
    walled[0, 0] = PATH
    assert "marks a wall" in path_problem(question, walled)
    square = to_tokens("#####" "#S  #" "# # #" "#  G#" "#####", 5, "test", "question")
    assert solve_maze(square)[1] == 2 == shortest_paths(square)[1]  # around the pillar either way


def test_every_symmetry_maps_a_valid_answer_to_a_valid_answer():
    question, answer = generate_maze(11, 10, random.Random(3))
    images = set()
    for k in range(8):
        q, a = dihedral(question, k), dihedral(answer, k)
        assert path_problem(q, a) is None
        images.add(q.tobytes())
        assert canonical_form(q) == canonical_form(question)
    assert len(images) == 8


@pytest.mark.parametrize("size, length", [(9, 8), (15, 30), (30, 110)])
def test_generated_mazes_have_a_unique_shortest_path_of_the_requested_length(size, length):
    questions, answers = generate_mazes(6, size, length, seed=size)
    assert questions.shape == answers.shape == (6, size, size)
    for question, answer in zip(questions, answers):
        steps, ways = shortest_paths(question)
        assert steps >= length and ways == 1
        assert path_problem(question, answer) is None
    assert len({canonical_form(q) for q in questions}) == 6


@pytest.mark.parametrize("size, length", [(9, 8), (15, 30)])
def test_scattered_mazes_have_maze_hards_random_walls_and_a_marked_shortest_path(size, length):
    """Maze-Hard's kind (walls on 30-50% of the cells at random): S and G at least `length` steps apart by the
    independent BFS, the answer one of the shortest paths (several may exist, as in Maze-Hard)."""
    questions, answers = generate_mazes(8, size, length, seed=size, style="scattered")
    for question, answer in zip(questions, answers):
        steps, _ = shortest_paths(question)
        assert steps >= length and path_problem(question, answer) is None
        walls = int((question == WALL).sum())
        assert size * size // 10 * 3 <= walls <= size * size // 10 * 5
    assert len({canonical_form(q) for q in questions}) == 8
    with pytest.raises(ValueError, match="style must be one of carved, scattered"):
        generate_mazes(1, 9, 8, style="mossy")


@pytest.mark.parametrize("size", [9, 21])
def test_carved_mazes_without_loops_are_perfect_and_the_default_keeps_a_few_loops(size):
    """loops=0: the open cells (S and G included) form a tree, one path between any two; the default knocks a few
    inner walls down, so a 21x21 maze has more neighbouring open pairs than a tree has edges."""
    def open_pairs_and_cells(question):
        free = question != WALL
        return int((free[1:] & free[:-1]).sum() + (free[:, 1:] & free[:, :-1]).sum()), int(free.sum())

    questions, answers = generate_mazes(6, size, 8, seed=size, loops=0)
    for question, answer in zip(questions, answers):
        edges, cells = open_pairs_and_cells(question)
        assert edges == cells - 1 and path_problem(question, answer) is None
    looped = [open_pairs_and_cells(q) for q in generate_mazes(6, 21, 8, seed=size)[0]]
    assert all(edges > cells - 1 for edges, cells in looped)


def test_generation_can_exclude_mazes_and_their_symmetric_images():
    first, _ = generate_mazes(5, 9, 8, seed=1)
    excluded = {canonical_form(q) for q in first}
    again, _ = generate_mazes(5, 9, 8, seed=1, exclude=excluded)
    assert not excluded & {canonical_form(q) for q in again}
    with pytest.raises(ValueError, match="shorter path"):
        generate_maze(7, 40, random.Random(0), attempts=5)
    with pytest.raises(ValueError, match="distinct 7x7 mazes"):  # a small space runs out instead of looping forever
        generate_mazes(210, 7, 8)


def test_walls_around_a_maze_leave_it_the_same_maze():
    """How a model of one canvas reads smaller mazes: the padded maze has the same shortest path, still unique."""
    questions, answers = generate_mazes(4, 7, 6, seed=2)
    padded_q, padded_a = pad_to_canvas(questions, 11), pad_to_canvas(answers, 11)
    assert padded_q.shape == (4, 11, 11) and (padded_q[:, 7:, :] == WALL).all() and (padded_q[:, :, 7:] == WALL).all()
    for q, a, small in zip(padded_q, padded_a, questions):
        assert path_problem(q, a) is None and shortest_paths(q) == shortest_paths(small)
    with pytest.raises(ValueError, match="7x7 mazes do not fit a 5x5 canvas"):
        pad_to_canvas(questions, 5)


def test_a_model_reads_mazes_on_its_canvas_and_a_conv_model_reads_any_side_as_it_is():
    from modeling_lstm_trm import LSTMTRMConfig
    from modeling_lstm_trm.tasks.maze.maze_hard import MazeSet

    mazes = MazeSet(*generate_mazes(3, 7, 6, seed=2))
    mlp, conv = (LSTMTRMConfig(vocab_size=6, seq_len=81, mixer=mixer, puzzle_emb_ndim=0) for mixer in ("mlp", "conv"))
    assert mazes.for_model(mlp).size == 9 and np.array_equal(mazes.for_model(mlp).questions, pad_to_canvas(
        mazes.questions, 9))
    assert mazes.for_model(conv) is mazes
    larger = MazeSet(*generate_mazes(2, 11, 10, seed=2))
    assert larger.for_model(conv) is larger
    with pytest.raises(ValueError, match="reads 9x9 grids"):
        larger.for_model(mlp)


# ----- Maze-Hard's CSV shape and TRM's folders ----------------------------------------------------------------------

def test_csv_files_and_trm_folders_load_through_the_real_loaders(tmp_path):
    from modeling_lstm_trm.tasks.maze.maze_hard import (
        MazeSet,
        load_csv_splits,
        load_trm_folder,
        write_csv,
        write_trm_folder,
    )

    data = MazeSet(*generate_mazes(4, 9, 8, seed=2))
    write_csv(tmp_path / "train.csv", data, source="test")
    loaded = load_csv_splits({"train": str(tmp_path / "train.csv")})["train"]
    assert np.array_equal(loaded.questions, data.questions) and np.array_equal(loaded.answers, data.answers)
    write_trm_folder(tmp_path / "trm", {"test": data})
    from_trm = load_trm_folder(tmp_path / "trm", "test")
    assert np.array_equal(from_trm.questions, data.questions) and np.array_equal(from_trm.answers, data.answers)


@pytest.mark.parametrize("column, change, message", [
    ("question", lambda text: text[:-1], "must have 81 characters"),
    ("question", lambda text: text.replace("#", "x", 1), "holds 'x'"),
    ("question", lambda text: text.replace("S", " "), "exactly one S"),
    ("question", lambda text: text.replace("G", " "), "exactly one G"),
    ("answer", lambda text: text.replace("o", " ", 1), "do not form one path|cells"),
])
def test_a_bad_maze_row_is_named_by_file_and_line(tmp_path, column, change, message):
    import csv

    from modeling_lstm_trm.tasks.maze.maze_hard import MazeSet, load_csv_splits, write_csv

    path = tmp_path / "mazes.csv"
    write_csv(path, MazeSet(*generate_mazes(3, 9, 8, seed=5)), source="test")
    rows = list(csv.reader(path.open()))
    k = ["source", "question", "answer", "rating"].index(column)
    rows[2][k] = change(rows[2][k])
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    with pytest.raises(ValueError, match=f"mazes.csv, line 3: .*({message})"):
        load_csv_splits({"test": str(path)})


# --- the task end to end: train, evaluate, solve ------------------------------------------------------------------

TINY_RUN = ["--task", "maze", "--maze_size", "7", "--min_path_length", "4", "--train_mazes", "200", "--eval_mazes",
            "50", "--mixer", "conv", "--hidden_size", "32", "--num_heads", "2", "--T_cycles", "2", "--n_cycles", "2",
            "--halt_max_steps", "4", "--max_steps", "300", "--eval_steps", "300", "--save_steps", "300",
            "--learning_rate", "3e-3", "--warmup_steps", "30", "--per_device_train_batch_size", "32",
            "--ema_decay", "0", "--disable_tqdm", "true",
            "--forward_dtype", "float32"]  # one dtype on every machine (auto is bfloat16 where the CPU has it)


@pytest.fixture(scope="module")
def trained_maze(tmp_path_factory):
    from conftest import load_example

    out = tmp_path_factory.mktemp("maze")
    results = load_example("train").main(TINY_RUN + ["--output_dir", str(out)])
    return out, results


@pytest.fixture(scope="module")
def fixed_canvas_maze(tmp_path_factory):
    """A few steps of the token-MLP mixer, whose canvas is fixed at 7x7 (the conv mixer reads any side)."""
    from conftest import load_example

    out = tmp_path_factory.mktemp("maze_mlp")
    load_example("train").main([{"conv": "mlp", "300": "20"}.get(flag, flag) for flag in TINY_RUN]
                               + ["--output_dir", str(out)])
    return out


def open_cell_accuracy(model, questions: np.ndarray, answers: np.ndarray) -> tuple[float, float]:
    """How often the model tells path from not-path on the open cells (S and G excluded) of held-out mazes, and the
    same for the rule "mark nothing" (what copying the maze does)."""
    import torch

    predictions = model.solve(torch.from_numpy(questions.reshape(len(questions), -1)), run_to_max=True)
    predicted = predictions.final_predictions.numpy().reshape(answers.shape) == PATH
    open_cells = questions == OPEN
    truth = answers == PATH
    return float((predicted == truth)[open_cells].mean()), float((~truth)[open_cells].mean())


MARGIN = 0.1  # measured (Xeon, float32, seeds 0-3): 0.76-0.84 against 0.48 (mark nothing) and 0.49 (untrained)


def test_a_short_run_on_tiny_mazes_learns_beyond_chance(trained_maze):
    """After 300 steps on 200 tiny mazes, the model separates path from not-path on the open cells of 50 held-out
    mazes (no symmetric image of a training maze) better than marking nothing does, and better than before training.
    """
    import torch

    from modeling_lstm_trm import LSTMTRMForPuzzleSolving
    from modeling_lstm_trm.tasks.maze.mazes import canonical_form

    out, results = trained_maze
    assert results["held_out"]["mazes"] == 50
    trained = LSTMTRMForPuzzleSolving.from_pretrained(out).eval()
    train_q, _ = generate_mazes(200, 7, 4, seed=0)  # the run's training mazes (its seed)
    questions, answers = generate_mazes(50, 7, 4, seed=1_000_003, exclude={canonical_form(q) for q in train_q})
    accuracy, mark_nothing = open_cell_accuracy(trained, questions, answers)
    torch.manual_seed(0)
    untrained, _ = open_cell_accuracy(LSTMTRMForPuzzleSolving(trained.config).eval(), questions, answers)
    assert accuracy >= mark_nothing + MARGIN and accuracy >= untrained + MARGIN, (accuracy, mark_nothing, untrained)


def test_evaluate_reads_smaller_mazes_padded_and_ends_with_the_json_line(fixed_canvas_maze, tmp_path, capsys):
    import json

    from conftest import load_example

    from modeling_lstm_trm.tasks.maze.maze_hard import MazeSet, write_csv

    out = fixed_canvas_maze
    write_csv(tmp_path / "small.csv", MazeSet(*generate_mazes(4, 5, 2, seed=3)), source="test")
    load_example("evaluate_model").main(["--model", str(out), "--file", str(tmp_path / "small.csv"),
                                         "--output_dir", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "5x5 mazes padded with walls to the model's 7x7 canvas" in printed
    last = json.loads(printed.strip().splitlines()[-1])
    assert last["mazes"] == 4 and {"exact_accuracy", "valid_shortest_path_accuracy"} <= set(last)
    assert json.loads((tmp_path / "eval_small.json").read_text()) == last
    load_example("evaluate_model").main(["--model", str(out), "--file", str(tmp_path / "small.csv"), "--output_dir",
                                         str(tmp_path), "--max_steps", "16", "--fixed_point_steps", "2"])
    stopped = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert stopped["fixed_point_steps"] == 2 and 1 <= stopped["mean_stop_step"] <= 16
    assert 0 <= stopped["exact_accuracy_at_stop"] <= 1
    with pytest.raises(SystemExit):
        write_csv(tmp_path / "big.csv", MazeSet(*generate_mazes(2, 9, 4, seed=3)), source="test")
        load_example("evaluate_model").main(["--model", str(out), "--file", str(tmp_path / "big.csv")])
    assert "these mazes are 9x9" in capsys.readouterr().err


def test_evaluate_scores_the_fixed_point_stop_with_the_q_head_and_alone_as_solve_stops(trained_maze, tmp_path, capsys):
    """--fixed_point_steps k scores two stops of one run: the fixed point or the Q head's halt, and the fixed point
    alone (the stop the headline reads on mazes larger than training's); each is where `solve` itself stops. The Q
    head is made to halt at once, so the two stops part."""
    import json

    import torch
    from conftest import load_example

    from modeling_lstm_trm import LSTMTRMForPuzzleSolving
    from modeling_lstm_trm.tasks.maze.maze_hard import MazeSet, write_csv
    from modeling_lstm_trm.tasks.maze.mazes import score_mazes

    model = LSTMTRMForPuzzleSolving.from_pretrained(trained_maze[0])
    with torch.no_grad():
        model.q_head.bias[0] = 10.0  # q_halt > 0 for every maze at the first step
    model.save_pretrained(tmp_path / "halts_at_once")
    mazes = MazeSet(*generate_mazes(12, 9, 8, seed=5))
    write_csv(tmp_path / "nine.csv", mazes, source="test")
    load_example("evaluate_model").main(["--model", str(tmp_path / "halts_at_once"), "--file",
                                         str(tmp_path / "nine.csv"), "--output_dir", str(tmp_path),
                                         "--max_steps", "16", "--fixed_point_steps", "2"])
    printed = capsys.readouterr().out
    read = json.loads(printed.strip().splitlines()[-1])
    assert "stopping at a fixed point of 2 steps alone (the Q head not asked)" in printed
    assert read["mean_stop_step"] == 1.0 and read["mean_fixed_point_step"] > 2.0
    x = torch.from_numpy(mazes.questions.reshape(len(mazes.questions), -1))
    for suffix, halt_on_q_head, mean_step in (("at_stop", True, "mean_stop_step"),
                                               ("at_fixed_point", False, "mean_fixed_point_step")):
        own = model.solve(x, max_steps=16, fixed_point_steps=2, halt_on_q_head=halt_on_q_head)
        scores = score_mazes(mazes.questions, mazes.answers, own.predictions.numpy())
        assert read[f"valid_shortest_path_accuracy_{suffix}"] == scores["valid_shortest_path_accuracy"]
        assert read[f"exact_accuracy_{suffix}"] == scores["exact_accuracy"]
        assert read[mean_step] == pytest.approx(own.halted_at.float().mean().item())


def test_evaluate_by_side_and_depth_reads_one_deep_run_as_the_plain_evaluation_would(trained_maze, tmp_path, capsys):
    """--sizes and --depths: a table by side and depth from one run per maze; after d steps it is the plain evaluation
    with --max_steps d, and the stop rule is solve's own, on the same generated mazes."""
    import json

    from conftest import load_example

    from modeling_lstm_trm import LSTMTRMForPuzzleSolving
    from modeling_lstm_trm.tasks.maze.maze_hard import MazeSet
    from modeling_lstm_trm.tasks.maze.mazes import evaluate_mazes, long_path

    out, _ = trained_maze
    results = load_example("evaluate_model").main(["--model", str(out), "--sizes", "5", "7", "--depths", "1", "4",
                                                   "--fixed_point_steps", "2", "--num_puzzles", "5", "--maze_loops",
                                                   "0", "--output_dir", str(tmp_path)])
    printed = capsys.readouterr().out
    assert "| side | after 1 | after 4 | stop k=2 or Q halt (mean step) | stop k=2 alone |" in printed
    assert json.loads((tmp_path / "eval_generated_carved_loops0_sizes_5-7.json").read_text()) == results
    model = LSTMTRMForPuzzleSolving.from_pretrained(out)
    for side in (5, 7):
        mazes = MazeSet(*generate_mazes(5, side, long_path(side), seed=2024 + side, loops=0)).for_model(model.config)
        read = results["by_side"][str(side)]
        for depth in (1, 4):
            plain = evaluate_mazes(model, mazes.questions, mazes.answers, max_steps=depth, fixed_point_steps=2)
            assert read["by_depth"][str(depth)]["exact_accuracy"] == plain["exact_accuracy"]
        assert read["at_stop"]["2"]["exact_accuracy"] == plain["exact_accuracy_at_stop"]
        assert read["at_stop"]["2"]["mean_stop_step"] == plain["mean_stop_step"]


def test_evaluate_over_symmetries_scores_each_maze_read_once_beside_the_shortest_path_among_its_images(
        fixed_canvas_maze, tmp_path, capsys):
    """--symmetries 8: the images' candidates include the maze itself at its stop, and along the way includes the
    stops, so the three figures can only rise; the same held for every side of --sizes."""
    import json

    from conftest import load_example

    from modeling_lstm_trm.tasks.maze.maze_hard import MazeSet, write_csv

    write_csv(tmp_path / "small.csv", MazeSet(*generate_mazes(6, 7, 4, seed=3)), source="test")
    results = load_example("evaluate_model").main([
        "--model", str(fixed_canvas_maze), "--file", str(tmp_path / "small.csv"), "--output_dir", str(tmp_path),
        "--max_steps", "6", "--fixed_point_steps", "2", "--symmetries", "8"])
    assert "the shortest path among 8 images' answers" in capsys.readouterr().out
    assert json.loads((tmp_path / "eval_small.json").read_text()) == results
    scores = [results[rule]["valid_shortest_path_accuracy"] for rule in ("one_image", "at_stop", "along_the_way")]
    assert scores == sorted(scores) and results["found_a_path"] >= scores[-1]
    assert results["mazes"] == 6 and results["symmetries"] == 8 and 1 <= results["mean_stop_step"] <= 6
    by_side = load_example("evaluate_model").main([
        "--model", str(fixed_canvas_maze), "--sizes", "5", "7", "--num_puzzles", "3", "--output_dir", str(tmp_path),
        "--max_steps", "6", "--fixed_point_steps", "2", "--symmetries", "2"])["by_side"]
    assert set(by_side) == {"5", "7"} and all(read["symmetries"] == 2 for read in by_side.values())


def test_solve_draws_the_path_after_every_step_and_the_card_names_the_task(trained_maze, tmp_path):
    from conftest import load_example

    out, _ = trained_maze
    maze = to_text(generate_mazes(1, 7, 4, seed=8)[0][0])
    reports = load_example("solve").main(["--model", str(out), maze, "--png", str(tmp_path / "m.png")])
    assert len(reports) == 1 and set(reports[0]) == {"valid_shortest_path", "answer", "halted_at"}
    assert (tmp_path / "m.png").stat().st_size > 1000
    card = (out / "README.md").read_text()
    assert "maze" in card.lower() and "valid_shortest_path_accuracy" in card


def test_solve_can_stop_at_the_fixed_point_and_answer_the_pick_over_the_8_images(trained_maze, tmp_path, capsys):
    """solve.py reads a maze as evaluate_model.py --symmetries does: each image to its fixed point, the Q head not
    asked, and answers the shortest path among their answers, naming the image and step it came from."""
    from conftest import load_example

    from modeling_lstm_trm.models.lstm_trm.modeling_lstmtrm import LSTMTRMForPuzzleSolving
    from modeling_lstm_trm.tasks.maze.maze_hard import MazeSet, write_csv
    from modeling_lstm_trm.tasks.maze.selection import path_steps, read_over_symmetries

    out, _ = trained_maze
    questions, answers = generate_mazes(6, 7, 4, seed=21)
    write_csv(tmp_path / "mazes.csv", MazeSet(questions, answers), source="test")
    solve = load_example("solve").main
    flags = ["--model", str(out), "--file", str(tmp_path / "mazes.csv"), "--max_steps", "8", "--fixed_point_steps", "2"]
    reports = solve(flags + ["--symmetries", "8", "--png", str(tmp_path / "m.png")])
    reads = read_over_symmetries(LSTMTRMForPuzzleSolving.from_pretrained(out), questions, 8, 2, progress=False)
    assert (tmp_path / "m.png").stat().st_size > 1000 and "picked from image" in capsys.readouterr().out
    assert [r["answer"] for r in reports] == [to_text(a) for a in reads.along_the_way]
    assert sum(r["valid_shortest_path"] for r in reports) >= 1  # the tiny model solves some of them
    for question, report, stops in zip(questions, reports, reads.stops.T):
        answer = to_tokens(report["answer"], 7, "report", "maze")
        assert report["valid_shortest_path"] == (path_problem(question, answer) is None)
        assert report["halted_at"] == stops[0] and 1 <= stops.min() and stops.max() <= 8
        image, step = report["picked_image"], report["picked_step"]
        assert (image >= 0) == (path_steps(question, answer) is not None) and (image < 0 or 1 <= step <= stops[image])
    first = reports[0]
    if first["picked_image"] >= 0:  # the pick is that image's answer at that step, turned back
        assert to_text(reads.first_maze_trace[first["picked_step"] - 1, first["picked_image"]]) == first["answer"]
    once = solve(flags)
    assert [r["answer"] for r in once] == [to_text(a) for a in reads.one_image] and "picked_image" not in once[0]
    assert [r["halted_at"] for r in once] == reads.stops[0].tolist()


def test_a_long_trace_is_drawn_at_evenly_spaced_steps_ending_with_the_last(tmp_path, monkeypatch):
    from modeling_lstm_trm.tasks.maze import task

    titles = []
    real = task.save_figure
    monkeypatch.setattr(task, "save_figure", lambda fig, *a, **k: titles.append(
        [ax.get_title() for ax in fig.axes if ax.get_title()]) or real(fig, *a, **k))
    question, answer = (grid[0] for grid in generate_mazes(1, 7, 4, seed=8))
    trace = np.stack([question] * 39 + [answer])
    task.draw_trace(question, trace, [False] * 39 + [True], str(tmp_path / "long.png"))
    task.draw_trace(question, trace[-3:], [False, False, True], str(tmp_path / "short.png"))
    long, short = titles
    assert len(long) == task.MAX_PANELS and long[0] == "step 1" and long[-1] == "step 40 (shortest path)"
    assert short == ["step 1", "step 2", "step 3 (shortest path)"]
    assert (tmp_path / "long.png").stat().st_size > 1000


def test_several_sides_share_one_canvas_and_each_maze_keeps_its_unique_shortest_path():
    from modeling_lstm_trm.tasks.maze.task import MazeArguments, several_sides

    args = MazeArguments(maze_sizes=[7, 9], maze_size=9, min_path_length=8, train_mazes=10, eval_mazes=4)
    train, test, info = several_sides(args, seed=0, is_main=False)
    assert info["maze_sizes"] == [7, 9] and train.questions.shape == (10, 9, 9) and test.questions.shape == (4, 9, 9)
    sides = []
    for q, a in zip(np.concatenate([train.questions, test.questions]), np.concatenate([train.answers, test.answers])):
        open_rows = np.nonzero((q != WALL).any(1))[0]
        sides.append(int(open_rows.max()) + 2)  # the maze's own side: its open cells and its outer wall
        length, ways = shortest_paths(q)  # the padding walls opened no shorter path and no second one
        assert path_problem(q, a) is None and ways == 1 and length == int((a == PATH).sum()) + 1
        assert length >= (round(8 * 49 / 81) if sides[-1] == 7 else 8)  # the path floor scales with the area
    assert sides.count(7) == 5 + 2 and sides.count(9) == 5 + 2


def test_a_run_on_several_sides_trains_and_says_so(tmp_path):
    import json

    from conftest import load_example

    out = tmp_path / "run"
    load_example("train").main(["--task", "maze", "--maze_sizes", "7", "9", "--min_path_length", "6", "--maze_loops",
                                "0", "--train_mazes", "40", "--eval_mazes", "8", "--max_steps", "6", "--eval_strategy",
                                "no", "--save_strategy", "no", "--disable_tqdm", "true", "--output_dir", str(out)])
    data = json.loads((out / "training_run.json").read_text())["data"]
    assert data["maze_sizes"] == [7, 9] and data["canvas_size"] == 9
    assert data["source"].startswith("generated carved (no loops), sides 7, 9")
    assert json.loads((out / "config.json").read_text())["seq_len"] == 81
