"""`recurrence="trm"` with TRM's shapes is TRM: a state dict of TRM's own code, converted, gives TRM's outputs.

The fixtures in tests/fixtures/trm/ were written once by TRM's code (make_trm_fixtures.py there, its commit in the
JSON files): tiny configurations with seeded random weights, five supervision steps in evaluation mode and five in
training mode with exploration off, new puzzles at every step, so that rows halt at different steps and are refilled.
"""

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from modeling_lstm_trm.models.lstm_trm.convert_trm_original_to_hf import config_from_trm, convert, convert_state_dict

pytestmark = pytest.mark.floor  # also run on the oldest supported versions

FIXTURES = Path(__file__).parent / "fixtures" / "trm"
VARIANTS = ["mlp", "attention"]
# Float32 sums depend on the CPU's kernels, and the recursion amplifies their last bits. On one machine our converted
# model and TRM's code give the same bits; TRM's own code on an Intel Xeon (AMX), fed the fixtures' weights and
# batches, differs from the logits it recorded on another machine by up to 3.2e-4 (|here - recorded| <= 3.2e-4 *
# (1 + |recorded|); tests/fixtures/trm/measure_trm_drift.py). The logits and the Q loss made of them (5.2e-5 there,
# relative) are compared at three times that; test_a_conversion_one_weight_off_by_a_thousandth_is_caught shows that
# it still tells a wrong conversion (0.1% off in one weight moves the outputs by 2e-2 to 3e-1). The total and LM
# losses drift by under 3e-6 and keep their tighter tolerances.
TOLERANCE = dict(atol=1e-3, rtol=1e-3)
OUTPUTS = ("logits", "q_halt_logits", "q_continue_logits")


def fixture(variant):
    tensors = load_file(FIXTURES / f"{variant}.safetensors")
    record = json.loads((FIXTURES / f"{variant}.json").read_text())
    state = {name.removeprefix("state."): t for name, t in tensors.items() if name.startswith("state.")}
    return tensors, record, state


def supervision_steps(model, tensors, record, mode):
    """The fixture's supervision steps through our model, the carry passed on: (batch, our output, TRM's sums)."""
    model.train(mode == "train")
    carry = None
    for k, sums in enumerate(record["modes"][mode]):
        batch = {name: tensors[f"{mode}.{k}.batch.{name}"] for name in ("inputs", "labels", "puzzle_identifiers")}
        out = model(batch["inputs"], labels=batch["labels"], puzzle_identifiers=batch["puzzle_identifiers"],
                    cache=carry)
        carry = out.cache
        yield batch, out, sums


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_converted_weights_give_trms_outputs_step_by_step(variant, mode):
    tensors, record, state = fixture(variant)
    model = convert(state, config_from_trm(record["config"]))
    for k, (batch, out, sums) in enumerate(supervision_steps(model, tensors, record, mode)):
        carry = out.cache
        for name in OUTPUTS:
            torch.testing.assert_close(getattr(out, name), tensors[f"{mode}.{k}.{name}"], **TOLERANCE)
        assert torch.equal(carry.halted, tensors[f"{mode}.{k}.halted"]), k
        assert torch.equal(carry.steps, tensors[f"{mode}.{k}.steps"]), k
        assert torch.equal(carry.inputs, tensors[f"{mode}.{k}.current_inputs"]), k
        # TRM sums its losses over the batch; ours are batch means (a learning rate that does not depend on the batch)
        batch_size = len(batch["inputs"])
        torch.testing.assert_close(out.loss.double() * batch_size, tensors[f"{mode}.{k}.loss"][0], atol=1e-4,
                                   rtol=1e-5)
        ours = {name: (float(total), float(count)) for name, (total, count) in out.metrics.items()}
        assert ours["exact_accuracy"] == (sums["exact_accuracy"], sums["count"])
        assert ours["steps"] == (sums["steps"], sums["count"])
        assert ours["q_halt_accuracy"] == (sums["q_halt_accuracy"], sums["count"])
        assert ours["cell_accuracy"][0] == pytest.approx(sums["accuracy"], abs=1e-5)
        assert ours["lm_loss"][0] == pytest.approx(sums["lm_loss"], rel=1e-5)
        assert ours["q_halt_loss"][0] == pytest.approx(sums["q_halt_loss"], rel=TOLERANCE["rtol"])
    if mode == "train":  # the fixtures are only worth this if rows halted at different steps and were refilled
        halted = [tensors[f"train.{k}.halted"] for k in range(len(record["modes"]["train"]))]
        assert any(0 < int(h.sum()) < len(h) for h in halted)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_a_conversion_one_weight_off_by_a_thousandth_is_caught(variant, mode):
    tensors, record, state = fixture(variant)
    model = convert(state, config_from_trm(record["config"]))
    with torch.no_grad():
        model.model.cell.blocks[1].channel_mlp.down_proj.weight.mul_(1.001)
    caught = [not torch.allclose(getattr(out, name), tensors[f"{mode}.{k}.{name}"], **TOLERANCE)
              for k, (_, out, _) in enumerate(supervision_steps(model, tensors, record, mode)) for name in OUTPUTS]
    assert any(caught)


def test_fixtures_name_the_trm_commit_they_came_from():
    for variant in VARIANTS:
        assert len(json.loads((FIXTURES / f"{variant}.json").read_text())["trm_commit"]) == 40


@pytest.mark.parametrize("prefix", ["", "_orig_mod."])
def test_compiled_and_plain_key_prefixes_and_bfloat16_weights_convert(prefix):
    _, record, state = fixture("attention")
    config = config_from_trm(record["config"])
    converted = convert_state_dict({f"{prefix}{k}": v.bfloat16() for k, v in state.items()}, config)
    assert all(t.dtype == torch.float32 for t in converted.values())
    assert torch.equal(converted["model.c_init"], state["model.inner.H_init"].bfloat16().float())


def test_foreign_or_incomplete_checkpoints_are_one_line_errors_naming_the_key():
    _, record, state = fixture("mlp")
    config = config_from_trm(record["config"])
    with pytest.raises(ValueError, match="unknown key in the TRM checkpoint: model.inner.extra.weight"):
        convert_state_dict({**state, "model.inner.extra.weight": torch.zeros(1)}, config)
    partial = {k: v for k, v in state.items() if "lm_head" not in k}
    with pytest.raises(ValueError, match="has no lm_head.weight"):
        convert_state_dict(partial, config)
    wrong = {**state, "model.inner.lm_head.weight": torch.zeros(3, 3)}
    with pytest.raises(ValueError, match=r"model.inner.lm_head.weight: shape \(3, 3\)"):
        convert_state_dict(wrong, config)
    with pytest.raises(ValueError, match="pass the dataset's dataset.json"):
        config_from_trm({k: v for k, v in record["config"].items() if k != "seq_len"})


def test_the_conversion_script_writes_a_folder_the_auto_classes_load(tmp_path, capsys):
    import yaml
    from conftest import load_example

    from modeling_lstm_trm import AutoModelForPuzzleSolving

    main = load_example("convert_trm_checkpoint").main

    _, record, state = fixture("mlp")
    torch.save({f"_orig_mod.{k}": v for k, v in state.items()}, tmp_path / "step_10")
    arch = {k: v for k, v in record["config"].items() if k not in ("seq_len", "vocab_size", "num_puzzle_identifiers")}
    arch["loss"] = {"loss_type": "stablemax_cross_entropy"}
    (tmp_path / "all_config.yaml").write_text(yaml.safe_dump({"arch": arch}))
    meta = {k: record["config"][k] for k in ("seq_len", "vocab_size", "num_puzzle_identifiers")}
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    out = main(["--checkpoint", str(tmp_path / "step_10"), "--config", str(tmp_path / "all_config.yaml"),
                "--dataset_json", str(tmp_path / "dataset.json"), "--output_dir", str(tmp_path / "hf")])
    loaded = AutoModelForPuzzleSolving.from_pretrained(out).eval()
    assert loaded.config.recurrence == "trm" and loaded.config.puzzle_emb_len == 4
    x = torch.randint(0, 6, (2, 16))
    expected = convert(state, config_from_trm(record["config"]))
    assert torch.equal(loaded(x).logits, expected(x).logits)
    with pytest.raises(SystemExit):  # an existing folder is never written unasked
        main(["--checkpoint", str(tmp_path / "step_10"), "--config", str(tmp_path / "all_config.yaml"),
              "--dataset_json", str(tmp_path / "dataset.json"), "--output_dir", str(tmp_path / "hf")])
    assert "is not empty" in capsys.readouterr().err


def test_a_converted_sudoku_model_reads_our_tokens_and_solves_and_evaluates(tmp_path):
    """TRM numbers Sudoku cells pad 0, blank 1, digits 2-10; ours blank 0, digits 1-9. The mlp fixture has TRM's 4x4
    Sudoku vocabulary (6 tokens on 16 cells), so `--task sudoku` turns it into a model of our 4x4 task."""
    import yaml
    from conftest import PUZZLE_4X4, load_example

    from modeling_lstm_trm.tasks import get_task

    main = load_example("convert_trm_checkpoint").main
    _, record, state = fixture("mlp")
    trm_ids = convert(state, config_from_trm(record["config"]))
    ours, _ = get_task("sudoku").from_trm(convert(state, config_from_trm(record["config"])))
    x = torch.randint(0, 5, (3, 16), generator=torch.Generator().manual_seed(4))
    ids = torch.zeros(3, dtype=torch.long)
    torch.testing.assert_close(ours(x, puzzle_identifiers=ids).logits,
                               trm_ids(x + 1, puzzle_identifiers=ids).logits[..., 1:], atol=1e-6, rtol=0)

    torch.save(state, tmp_path / "step_1")
    (tmp_path / "all_config.yaml").write_text(yaml.safe_dump({"arch": record["config"]}))
    out = main(["--checkpoint", str(tmp_path / "step_1"), "--config", str(tmp_path / "all_config.yaml"),
                "--task", "sudoku", "--output_dir", str(tmp_path / "hf")])
    reports = load_example("solve").main(["--model", str(out), PUZZLE_4X4, "--num_trajectories", "2"])
    assert len(reports) == 1 and len(reports[0]["solution"].replace("\n", "")) >= 16
    results = load_example("evaluate_model").main(["--model", str(out), "--grid_size", "4", "--num_puzzles", "4",
                                                   "--output_dir", str(tmp_path / "eval")])
    assert results["puzzles"] == 4 and 0 <= results["exact_accuracy"] <= 1
    from modeling_lstm_trm.models.lstm_trm import LSTMTRMConfig, LSTMTRMForPuzzleSolving

    def network(vocab_size, seq_len):
        return LSTMTRMForPuzzleSolving(LSTMTRMConfig(vocab_size=vocab_size, seq_len=seq_len, hidden_size=8,
                                                     puzzle_emb_ndim=0))

    with pytest.raises(ValueError, match="a TRM sudoku model has 6 tokens on a square grid; this one has 7 tokens"):
        get_task("sudoku").from_trm(network(7, 16))
    maze, write = get_task("maze").from_trm(network(6, 25))
    write(tmp_path / "maze")
    assert maze.config.task == "maze" and len(AutoTokenizer.from_pretrained(tmp_path / "maze")) == 7


TRM_NAMES = [  # ours -> TRM's (MLP variant), written out here independently of the converter's map
    (r"model\.embed_tokens\.weight", "embed_tokens.embedding_weight"), (r"lm_head\.weight", "lm_head.weight"),
    (r"q_head\.(weight|bias)", r"q_head.\1"), (r"model\.puzzle_emb\.weight", "puzzle_emb.weights"),
    (r"model\.c_init", "H_init"), (r"model\.h_init", "L_init"),
    (r"model\.cell\.blocks\.(\d+)\.token_mixer\.(\w+)\.weight", r"L_level.layers.\1.mlp_t.\2.weight"),
    (r"model\.cell\.blocks\.(\d+)\.channel_mlp\.(\w+)\.weight", r"L_level.layers.\1.mlp.\2.weight"),
]


def trm_names(state: dict) -> dict:
    """Our state dict as TRM's compiled pretrain.py saves it."""
    out = {}
    for name, tensor in state.items():
        pattern, replacement = next((p, r) for p, r in TRM_NAMES if re.fullmatch(p, name))
        out["_orig_mod.model.inner." + re.sub(pattern, replacement, name)] = tensor
    return out


def trm_transform(grid, colours: str, transform: int):
    """TRM's own augmentation, from its definition (dataset/common.py, build_arc_dataset.py): colours first, then
    identity, 1-3 quarter turns, flip left-right, flip up-down, transpose, anti-transpose."""
    import numpy as np

    grid = np.asarray([int(c) for c in colours])[grid]
    return [grid, np.rot90(grid, 1), np.rot90(grid, 2), np.rot90(grid, 3), np.fliplr(grid), np.flipud(grid), grid.T,
            np.fliplr(np.rot90(grid, 1))][transform]


def test_a_converted_arc_model_votes_over_the_versions_of_trms_identifiers(tmp_path):
    """TRM's ARC folder (identifiers.json, test_puzzles.json) gives the converted model its task versions, each
    identifier the same grid transform as TRM's, and our evaluator scores the folder's test puzzles."""
    import numpy as np
    import yaml
    from conftest import load_example

    from modeling_lstm_trm import LSTMTRMForPuzzleSolving
    from modeling_lstm_trm.tasks.arc.arc_dataset import load_trm_folder, versions_from_trm

    main = load_example("convert_trm_checkpoint").main

    trm = tmp_path / "trm_arc"
    trm.mkdir()
    pairs = {"train": [{"input": [[1, 2], [3, 0]], "output": [[2, 1], [0, 3]]}],
             "test": [{"input": [[3, 1], [0, 2]], "output": [[1, 3], [2, 0]]}]}
    (trm / "test_puzzles.json").write_text(json.dumps({"aaaa": pairs, "bbbb": pairs}))
    identifiers = ["<blank>", "aaaa", "aaaa|||t4|||0213456789", "aaaa|||t7|||0123456789", "cccc",
                   "bbbb", "bbbb|||t1|||0987654321"]
    (trm / "identifiers.json").write_text(json.dumps(identifiers))
    tasks, _ = load_trm_folder(trm)
    versions = versions_from_trm(identifiers, tasks, "identifiers.json")
    grid = np.random.default_rng(0).integers(0, 10, (3, 4))
    for task_id in ("aaaa", "bbbb"):
        for identifier, augmentation in versions.versions(task_id):
            name = identifiers[identifier].split("|||")
            expected = grid if len(name) == 1 else trm_transform(grid, name[2], int(name[1][1:]))
            assert np.array_equal(augmentation.apply(grid), expected), identifiers[identifier]

    _, record, _ = fixture("mlp")
    arch = {k: v for k, v in record["config"].items() if k not in ("seq_len", "vocab_size", "num_puzzle_identifiers")}
    meta = {"seq_len": 36, "vocab_size": 12, "num_puzzle_identifiers": len(identifiers)}
    torch.manual_seed(0)
    ours = LSTMTRMForPuzzleSolving(config_from_trm({**arch, **meta}))
    torch.save(trm_names(ours.state_dict()), tmp_path / "step_1")
    (tmp_path / "all_config.yaml").write_text(yaml.safe_dump({"arch": arch}))
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    out = main(["--checkpoint", str(tmp_path / "step_1"), "--config", str(tmp_path / "all_config.yaml"),
                "--dataset_json", str(tmp_path / "dataset.json"), "--task", "arc", "--data_dir", str(trm),
                "--output_dir", str(tmp_path / "hf")])
    saved = json.loads((out / "arc_versions.json").read_text())
    assert saved["canvas_size"] == 6 and saved["tasks"]["aaaa"]["first_identifier"] == 1
    assert saved["tasks"]["bbbb"]["augmentations"] == ["t0c0123456789", "t1c0987654321"]
    results = load_example("evaluate_model").main(["--model", str(out), "--data_dir", str(trm),
                                                    "--output_dir", str(tmp_path / "scores")])
    assert results["tasks"] == 2 and 0 <= results["pass@1"] <= results["pass@2"] <= 1
    submission = json.loads((tmp_path / "scores" / "submission_trm_test.json").read_text())
    assert sorted(submission) == ["aaaa", "bbbb"]
    with pytest.raises(ValueError, match="not one run starting with the task as it is"):
        versions_from_trm(["<blank>", "aaaa|||t1|||0123456789", "aaaa"], tasks, "identifiers.json")
