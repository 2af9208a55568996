"""Specification of the ARC task's data side: the competition's files, TRM's encoding, augmentations and their
inverses, the voting evaluator and the submission."""

import json
from pathlib import Path

import numpy as np
import pytest

from modeling_lstm_trm.tasks.arc.arc_data import (
    END,
    IDENTITY,
    PAD,
    Augmentation,
    augmentations_of,
    decode,
    encode,
    load_split,
    load_task_folder,
    random_augmentation,
)
from modeling_lstm_trm.tasks.arc.voting import score, vote, write_submission

SHARED_ARC = Path(__file__).resolve().parents[2] / "shared" / "data" / "arc"


def test_every_augmentation_composed_with_its_inverse_is_the_identity_on_every_shape():
    rng = np.random.default_rng(0)
    for rows in range(1, 31):
        for cols in range(1, 31):
            grid = rng.integers(0, 10, (rows, cols)).astype(np.uint8)
            for dihedral in range(8):
                aug = Augmentation(dihedral, random_augmentation(rng).colours)
                image = aug.apply(grid)
                assert image.shape == ((rows, cols) if dihedral in (0, 2, 5, 7) else (cols, rows))
                assert np.array_equal(aug.invert(image), grid)
    assert np.array_equal(IDENTITY.apply(grid), grid)


def test_colour_zero_is_kept_and_the_eight_transforms_differ():
    grid = np.arange(12, dtype=np.uint8).reshape(3, 4) % 10
    images = {Augmentation(k).apply(grid).tobytes() + bytes(Augmentation(k).apply(grid).shape) for k in range(8)}
    assert len(images) == 8
    aug = random_augmentation(np.random.default_rng(3))
    assert aug.colours[0] == 0 and sorted(aug.colours) == list(range(10))
    assert ((aug.apply(grid) == 0) == (Augmentation(aug.dihedral).apply(grid) == 0)).all()


def test_encoding_puts_colours_after_pad_and_end_and_decoding_crops_at_the_marker():
    grid = np.array([[0, 9, 3], [4, 0, 1]], dtype=np.uint8)
    canvas = encode(grid)
    assert canvas.shape == (30, 30)
    assert (canvas[:2, :3] == grid + 2).all()
    assert (canvas[2, :3] == END).all() and (canvas[:2, 3] == END).all()
    assert canvas[2, 3] == PAD and (canvas[3:] == PAD).all()
    assert np.array_equal(decode(canvas), grid)
    moved = encode(grid, top=5, left=7)
    assert (moved[5:7, 7:10] == grid + 2).all() and (moved[7, 7:10] == END).all() and (moved[5:7, 10] == END).all()
    full = np.zeros((30, 30), dtype=np.uint8)
    assert np.array_equal(decode(encode(full)), full)  # no room for a marker: the whole canvas is the grid
    broken = canvas.copy()
    broken[1, 1] = PAD
    assert decode(broken) is None and decode(np.zeros((30, 30), dtype=np.uint8)) is None


def test_symmetric_tasks_get_fewer_versions_and_the_test_outputs_play_no_part():
    from modeling_lstm_trm.tasks.arc.arc_data import ArcTask

    blank = np.zeros((3, 3), dtype=np.uint8)
    plain = ArcTask("blank", [(blank, blank)], [(blank, blank)])
    assert augmentations_of(plain, 50, np.random.default_rng(0)) == [IDENTITY]  # every version is the same task
    rng = np.random.default_rng(1)
    task = ArcTask("t", [(rng.integers(0, 10, (3, 4)).astype(np.uint8), rng.integers(0, 10, (2, 2)).astype(np.uint8))],
                   [(rng.integers(0, 10, (3, 4)).astype(np.uint8), None)])
    versions = augmentations_of(task, 20, np.random.default_rng(5))
    assert len(versions) == 21 and versions[0] == IDENTITY and len(set(versions)) == 21
    solved = ArcTask("t", task.train, [(task.test[0][0], np.ones((5, 5), dtype=np.uint8))])
    assert augmentations_of(solved, 20, np.random.default_rng(5)) == versions


def write_split(folder: Path, split: str, challenges: dict, solutions: dict | None) -> None:
    (folder / f"arc-agi_{split}_challenges.json").write_text(json.dumps(challenges))
    if solutions is not None:
        (folder / f"arc-agi_{split}_solutions.json").write_text(json.dumps(solutions))


THREE_TASKS = {
    "aaa": {"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[1, 1]]}]},
    "bbb": {"train": [{"input": [[3]], "output": [[3]]}], "test": [{"input": [[4]]}, {"input": [[5]]}]},
    "ccc": {"train": [{"input": [[0, 1], [1, 0]]}, ], "test": [{"input": [[7]]}]},
}
THREE_TASKS["ccc"]["train"][0]["output"] = [[1, 0], [0, 1]]
THREE_SOLUTIONS = {"aaa": [[[2, 2]]], "bbb": [[[4]], [[5]]], "ccc": [[[6]]]}


def test_the_voting_evaluator_gives_the_scores_and_submission_computed_by_hand(tmp_path):
    write_split(tmp_path, "toy", THREE_TASKS, THREE_SOLUTIONS)
    tasks = load_split(tmp_path, "toy")
    g = lambda rows: np.array(rows, dtype=np.uint8)  # noqa: E731
    candidates = {
        # aaa: the truth wins the vote 2 to 1 -> pass@1
        ("aaa", 0): [(g([[2, 2]]), 0.1), (g([[2, 2]]), 0.2), (g([[3, 3]]), 0.9)],
        # bbb, input 0: a 1-1 tie broken by confidence puts the truth second -> pass@2 only
        ("bbb", 0): [(g([[9]]), 0.8), (g([[4]]), 0.3), (None, 1.0)],
        # bbb, input 1: right at once
        ("bbb", 1): [(g([[5]]), 0.5)],
        # ccc: wrong twice
        ("ccc", 0): [(g([[1]]), 0.5), (g([[2]]), 0.4), (g([[6]]), 0.1)],
    }
    results, submission = score(tasks, candidates)
    assert results["tasks"] == 3
    assert results["per_task"] == {"aaa": {"pass@1": 1.0, "pass@2": 1.0}, "bbb": {"pass@1": 0.5, "pass@2": 1.0},
                                   "ccc": {"pass@1": 0.0, "pass@2": 0.0}}
    assert results["pass@1"] == pytest.approx(0.5) and results["pass@2"] == pytest.approx(2 / 3)
    assert submission == {
        "aaa": [{"attempt_1": [[2, 2]], "attempt_2": [[3, 3]]}],
        "bbb": [{"attempt_1": [[9]], "attempt_2": [[4]]}, {"attempt_1": [[5]], "attempt_2": [[0]]}],
        "ccc": [{"attempt_1": [[1]], "attempt_2": [[2]]}],
    }
    path = write_submission(submission, tmp_path)
    assert json.loads(path.read_text()) == submission


def test_votes_count_first_then_mean_confidence():
    a, b = np.zeros((1, 1), dtype=np.uint8), np.ones((1, 1), dtype=np.uint8)
    assert [x.item() for x in vote([(a, 0.9), (b, 0.1), (b, 0.1)])] == [1, 0]
    assert [x.item() for x in vote([(a, 0.2), (a, 0.4), (b, 0.1), (b, 0.6)])] == [b.item(), a.item()]
    assert vote([(None, 1.0)]) == []


@pytest.mark.parametrize("change, message", [
    (lambda c, s: c["aaa"]["train"][0].update(input=[[0] * 31]), "task aaa, train pair 0: the grid is 1x31"),
    (lambda c, s: c["bbb"]["test"][1].update(input=[[10]]), "task bbb, test input 1: colours must be integers 0-9"),
    (lambda c, s: s.pop("ccc"), "task ccc: missing solution"),
    (lambda c, s: s["bbb"].pop(), "task bbb: 2 test inputs, but solutions for 1"),
    (lambda c, s: c["aaa"]["train"][0].update(output=[[1, 2], [3]]), "task aaa, train pair 0 output: the grid's rows"),
])
def test_a_bad_task_is_an_error_naming_it(tmp_path, change, message):
    challenges, solutions = json.loads(json.dumps(THREE_TASKS)), json.loads(json.dumps(THREE_SOLUTIONS))
    change(challenges, solutions)
    write_split(tmp_path, "bad", challenges, solutions)
    with pytest.raises(ValueError, match=message):
        load_split(tmp_path, "bad")


def test_the_one_file_per_task_folder_and_a_split_without_solutions(tmp_path):
    for task_id, task in THREE_TASKS.items():
        full = json.loads(json.dumps(task))
        for pair, solution in zip(full["test"], THREE_SOLUTIONS[task_id]):
            pair["output"] = solution
        (tmp_path / f"{task_id}.json").write_text(json.dumps(full))
    tasks = load_task_folder(tmp_path)
    assert sorted(tasks) == ["aaa", "bbb", "ccc"] and np.array_equal(tasks["bbb"].test[1][1], [[5]])
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    write_split(hidden, "test", THREE_TASKS, None)
    with pytest.raises(ValueError, match="no arc-agi_test_solutions.json"):
        load_split(hidden, "test")
    assert load_split(hidden, "test", need_solutions=False)["bbb"].test[0][1] is None


@pytest.mark.skipif(not SHARED_ARC.is_dir(), reason="the shared ARC files are not on this machine")
def test_the_real_arc_agi_files_load_whole():
    for split, count in (("training", 400), ("evaluation", 400), ("evaluation2", 120)):
        tasks = load_split(SHARED_ARC, split)
        assert len(tasks) == count
        assert all(t.test and all(out is not None for _, out in t.test) for t in tasks.values())
