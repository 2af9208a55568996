"""`pipeline("puzzle-solving")` as the package registers it: the Hub-flat `PuzzleSolvingPipeline` that every saved
folder carries, plus what needs the package's tasks: an ARC task's JSON, answered as the competition scores it.

An ARC input is the ARC Prize files' shape, `{task_id: {"train": [...], "test": [{"input": ...}, ...]}}`, for tasks
the model trained on (it knows a task through the puzzle identifiers of its versions, in the folder's
`arc_versions.json`): each test input is solved under every version, the answers mapped back and voted; the output
is, per task, per test input, the two attempts, the number of versions that voted, and whether an attempt is right
where the JSON holds the test output. ARC tasks go one at a time (no `batch_size`).
"""

from __future__ import annotations

from .models.lstm_trm.pipeline_lstm_trm import PuzzleSolvingPipeline as FolderPipeline


class PuzzleSolvingPipeline(FolderPipeline):
    """The folders' pipeline (puzzles as text), and with the package an ARC task's JSON (see the module)."""

    def preprocess(self, puzzle) -> dict:
        if isinstance(puzzle, dict):
            return {"arc": self.arc_versions(puzzle)}
        return super().preprocess(puzzle)

    def _forward(self, inputs: dict, **options) -> dict:
        if "arc" not in inputs:
            return super()._forward(inputs, **options)
        from .tasks.arc.evaluation import predict_test_inputs

        versions, side = inputs["arc"]
        return {"arc": (versions, predict_test_inputs(self.model, versions, list(versions.tasks), side,
                                                      progress=False))}

    def postprocess(self, outputs: dict, **options):
        if "arc" not in outputs:
            return super().postprocess(outputs, **options)
        from .tasks.arc.voting import voted_attempts

        versions, candidates = outputs["arc"]
        answers = {}
        for task_id, task in versions.tasks.items():
            answers[task_id] = []
            for index, (_, truth) in enumerate(task.test):
                attempts, right = voted_attempts(candidates[(task_id, index)], truth)
                answers[task_id].append({"test_input": index, "solved": right,
                                         "versions_voted": len(candidates[(task_id, index)]),
                                         "attempts": [None if a is None else a.tolist() for a in attempts]})
        return answers

    def arc_versions(self, challenge: dict):
        """The versions the model trained on of the tasks in an ARC JSON, and its canvas side; ValueError naming a
        task it does not know or a grid that is not one."""
        from .tasks.arc.arc_data import parse_task
        from .tasks.arc.arc_dataset import load_versions

        if not challenge or not all(isinstance(task, dict) for task in challenge.values()):
            raise ValueError("an ARC input maps task ids to tasks ({task_id: {'train': [...], 'test': [...]}})")
        tasks = {task_id: parse_task(task_id, task, None, "the ARC input", need_solutions=False)
                 for task_id, task in challenge.items()}
        versions, side = load_versions(self.model.config._name_or_path, tasks)
        unknown = sorted(set(tasks) - set(versions.tasks))
        if unknown:
            raise ValueError(f"the model was not trained on task {unknown[0]}: it knows a task only through the "
                             "demonstration pairs it trained on")
        return versions, side
