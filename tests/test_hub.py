"""Sharing on the Hub, offline: the push script's repository loads anywhere with the Auto classes, the card parses
back with the run's results, the upload is one commit of exactly those files, and bad input stops everything."""

import json
from pathlib import Path

import pytest
import torch
from conftest import load_example, train_tiny_lm
from huggingface_hub import HfApi, ModelCard


@pytest.fixture
def intercepted(monkeypatch):
    """Record every Hub call instead of making it."""
    calls = []
    monkeypatch.setenv("HF_TOKEN", "hf_test_token_not_real")
    monkeypatch.setattr(HfApi, "whoami", lambda self, **kw: {"name": "someone"})
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create_repo", repo_id, kw)))
    monkeypatch.setattr(HfApi, "create_branch",
                        lambda self, repo_id, **kw: calls.append(("create_branch", repo_id, kw)))

    def create_commit(self, repo_id, operations, **kw):
        files = {op.path_in_repo: Path(op.path_or_fileobj).read_bytes() for op in operations}
        calls.append(("create_commit", repo_id, {**kw, "files": files}))
        return type("Commit", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/0"})()

    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    return calls


LOAD_LM = """
import json, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained({repo!r}, trust_remote_code=True)
model = AutoModelForCausalLM.from_pretrained({repo!r}, trust_remote_code=True).eval()
ids = tokenizer("the old king", return_tensors="pt").input_ids
with torch.no_grad():
    logits = model(ids).logits
print(json.dumps({{"ids": ids[0].tolist(), "logits": logits[0, -1].tolist(), "class": type(model).__name__}}))
"""

LOAD_SUDOKU = """
import json, torch
from transformers import AutoTokenizer
from transformers.dynamic_module_utils import get_class_from_dynamic_module
tokenizer = AutoTokenizer.from_pretrained({repo!r}, trust_remote_code=True)
model = get_class_from_dynamic_module("modeling_lstmtrm.LSTMTRMForPuzzleSolving", {repo!r}).from_pretrained({repo!r})
ids = tokenizer("1.3.......2...4.", return_tensors="pt").input_ids
from transformers import pipeline
solved = pipeline(model={repo!r}, trust_remote_code=True)("1.3.......2...4.")  # the card's usage
print(json.dumps({{"ids": ids[0].tolist(), "predictions": model.solve(ids).predictions[0].tolist(),
                  "class": type(model).__name__, "pipeline_answer": solved["answer"]}}))
"""


def test_dry_run_repositories_load_anywhere_and_reproduce_the_outputs(trained, tmp_path, without_package):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from modeling_lstm_trm import AutoModelForPuzzleSolving

    for kind, script in (("lm", LOAD_LM), ("sudoku", LOAD_SUDOKU)):
        repo = tmp_path / kind
        load_example("push_to_hub").main(["--checkpoint", str(trained[kind]), "--repo-id", f"someone/{kind}",
                                          "--dry-run", str(repo)])
        expected = {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "README.md",
                    "training_curves.png", "eval_results.json", "training_run.json"}
        expected |= {"configuration_nested_lstm.py", "modeling_nested_lstm.py", "generation_config.json"} \
            if kind == "lm" else {"configuration_lstm_trm.py", "modeling_lstmtrm.py", "pipeline_lstm_trm.py"}
        assert expected <= {p.name for p in repo.iterdir()}, kind
        assert "auto_map" in json.loads((repo / "config.json").read_text())
        remote = json.loads(without_package(script.format(repo=str(repo))).strip().splitlines()[-1])

        tokenizer = AutoTokenizer.from_pretrained(trained[kind])
        if kind == "lm":
            model = AutoModelForCausalLM.from_pretrained(trained[kind], trust_remote_code=True).eval()
            ids = tokenizer("the old king", return_tensors="pt").input_ids
            with torch.no_grad():
                local = model(ids).logits[0, -1]
            assert remote["class"] == "NestedLSTMForCausalLM" and remote["ids"] == ids[0].tolist()
            torch.testing.assert_close(torch.tensor(remote["logits"]), local, atol=1e-5, rtol=0)
        else:
            model = AutoModelForPuzzleSolving.from_pretrained(trained[kind]).eval()
            ids = tokenizer("1.3.......2...4.", return_tensors="pt").input_ids
            assert remote["class"] == "LSTMTRMForPuzzleSolving" and remote["ids"] == ids[0].tolist()
            assert remote["predictions"] == model.solve(ids).predictions[0].tolist()
            assert remote["pipeline_answer"] == "".join(map(str, remote["predictions"]))


def test_cards_parse_back_with_valid_metadata_and_the_runs_results(trained, tmp_path):
    for kind in ("lm", "sudoku"):
        repo = tmp_path / kind
        load_example("push_to_hub").main(["--checkpoint", str(trained[kind]), "--repo-id", f"someone/{kind}",
                                          "--dry-run", str(repo)])
        card = ModelCard.load(repo / "README.md")  # parses the YAML and its model-index
        data = card.data.to_dict()
        assert data["library_name"] == "transformers" and data["license"] == "apache-2.0"
        assert "lstm-trm" in data["tags"] and data["model-index"][0]["name"] == kind
        results = json.loads((trained[kind] / "eval_results.json").read_text())
        run = json.loads((trained[kind] / "training_run.json").read_text())
        got = {(r.dataset_type, r.metric_type): r.metric_value for r in card.data.eval_results}
        if kind == "lm":
            assert data["pipeline_tag"] == "text-generation"
            folder = Path(run["dataset"]).parent.name  # the card names the file by folder and name, no local path
            assert got[(folder, "perplexity")] == results["eval_perplexity"]
            assert got[(folder, "bits_per_character")] == results["eval_bits_per_character"]
            assert got[(folder, "loss")] == results["eval_loss"]
            assert str(Path(run["dataset"]).parent.parent) not in card.content
            assert "AutoModelForCausalLM.from_pretrained(\"someone/lm\", trust_remote_code=True)" in card.text
            assert f"| optimizer steps | {run['steps']} |" in card.text and "| levels" in card.text
        else:
            assert data["pipeline_tag"] == "other" and data["widget"][0]["text"] == run["example_puzzle"]
            assert 'pipeline(model="someone/sudoku", trust_remote_code=True)' in card.text
            assert got[("generated-sudoku", "exact_accuracy")] == results["held_out"]["exact_accuracy"]
            assert got[("generated-sudoku", "cell_accuracy")] == results["held_out"]["cell_accuracy"]
            assert "model.solve(ids)" in card.text and "T cycles, n cycles" in card.text
        for section in ("## The design", "## How to use", "## Training data and procedure", "## Results",
                        "## Limitations", "## References"):
            assert section in card.text, (kind, section)


def test_push_uploads_exactly_the_dry_run_repository_in_one_commit(trained, tmp_path, intercepted):
    dry = tmp_path / "dry"
    load_example("push_to_hub").main(["--checkpoint", str(trained["lm"]), "--repo-id", "someone/lm", "--dry-run",
                                      str(dry)])
    load_example("push_to_hub").main(["--checkpoint", str(trained["lm"]), "--repo-id", "someone/lm", "--private",
                                      "--revision", "v1"])
    commits = [c for c in intercepted if c[0] == "create_commit"]
    assert len(commits) == 1
    _, repo_id, kwargs = commits[0]
    assert repo_id == "someone/lm" and kwargs["revision"] == "v1"
    assert kwargs["files"] == {p.name: p.read_bytes() for p in dry.iterdir()}
    assert ("create_repo", "someone/lm", {"private": True, "exist_ok": True}) in intercepted
    assert any(c[0] == "create_branch" and c[2]["branch"] == "v1" for c in intercepted)


def test_train_push_to_hub_uploads_the_same_repository(trained, tmp_path, intercepted):
    out = train_tiny_lm(tmp_path, "--max_steps", "3", "--eval_strategy", "no", "--push_to_hub", "true",
                        "--hub_model_id", "someone/pushed")
    commits = [c for c in intercepted if c[0] == "create_commit"]
    assert len(commits) == 1 and commits[0][1] == "someone/pushed"
    dry = tmp_path / "dry"
    load_example("push_to_hub").main(["--checkpoint", str(out), "--repo-id", "someone/pushed", "--dry-run", str(dry)])
    assert set(commits[0][2]["files"]) == {p.name for p in dry.iterdir()}
    assert commits[0][2]["files"]["README.md"] == (dry / "README.md").read_bytes()


def test_errors_say_what_to_do_and_upload_nothing(trained, tmp_path, intercepted, monkeypatch, capsys):
    push = load_example("push_to_hub").main
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text(json.dumps({"model_type": "nested_lstm"}))
    weights_only = tmp_path / "weights_only"
    weights_only.mkdir()
    (weights_only / "model.safetensors").write_bytes((trained["lm"] / "model.safetensors").read_bytes())
    cases = [
        (["--checkpoint", str(weights_only), "--repo-id", "someone/x"], "has no config.json"),
        (["--checkpoint", str(trained["lm"]), "--repo-id", "not a valid name!"], "invalid repository name"),
        (["--checkpoint", str(trained["lm"]), "--repo-id", "no-namespace"], "use USER/NAME"),
        (["--checkpoint", str(tmp_path / "missing"), "--repo-id", "someone/x"], "no such folder"),
        (["--checkpoint", str(empty), "--repo-id", "someone/x"], "no safetensors weights"),
        (["--checkpoint", str(trained["lm"]), "--repo-id", "someone/x", "--dry-run", str(empty)], "is not empty"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            push(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err, message
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr("modeling_lstm_trm.hub.get_token", lambda: None)
    with pytest.raises(SystemExit):
        push(["--checkpoint", str(trained["lm"]), "--repo-id", "someone/x"])
    assert "not logged in to the Hub: run `hf auth login`" in capsys.readouterr().err
    assert intercepted == []  # nothing reached the Hub, not even create_repo
