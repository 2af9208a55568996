"""Sharing trained models on the Hub: the model card filled from a training run, the repository assembled from a saved
folder, and its upload in one commit.

A folder saved by `examples/train.py` holds the weights, `config.json` (with `auto_map`), the model's code files, the
tokenizer, `eval_results.json` (the run's evaluation) and `training_run.json` (its data and procedure). Everything
that can be wrong with a folder, a repository name or a login is found before anything is uploaded, and reported as a
`HubError` whose message says what to do.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from huggingface_hub import CommitOperationAdd, EvalResult, HfApi, ModelCard, ModelCardData, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.utils import validate_repo_id

from .checks import first_line, non_finite
from .models.lstm_trm.pipeline_lstm_trm import CUSTOM_PIPELINES
from .training.runs import EVAL_FILE, RUN_FILE

CODE_FILES = {  # each model's folder under models/ and its Hub-flat code files
    "nested_lstm": ("nested_lstm", ("configuration_nested_lstm.py", "modeling_nested_lstm.py")),
    "lstm_trm": ("lstm_trm", ("configuration_lstm_trm.py", "modeling_lstmtrm.py", "carry_lstm_trm.py",
                              "solving_lstm_trm.py", "pipeline_lstm_trm.py")),
}
AUTO_MAP = {
    "nested_lstm": {"AutoConfig": "configuration_nested_lstm.NestedLSTMConfig",
                    "AutoModel": "modeling_nested_lstm.NestedLSTMModel",
                    "AutoModelForCausalLM": "modeling_nested_lstm.NestedLSTMForCausalLM"},
    "lstm_trm": {"AutoConfig": "configuration_lstm_trm.LSTMTRMConfig",
                 "AutoModel": "modeling_lstmtrm.LSTMTRMModel",
                 "AutoModelForPuzzleSolving": "modeling_lstmtrm.LSTMTRMForPuzzleSolving",
                 "AutoModelForTokenClassification": "modeling_lstmtrm.LSTMTRMForPuzzleSolving"},
}
# Files of a saved folder that belong in the repository (weights and code are handled on their own).
OPTIONAL_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                  "generation_config.json", "training_curves.png", EVAL_FILE, RUN_FILE)


class HubError(ValueError):
    """Something the user can fix (a folder, a name, a login); the message says how."""


# ----- the model card ------------------------------------------------------------------------------------------------

def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _parameters(folder: Path) -> str:
    """The parameter count read from the safetensors headers (tied weights are stored once)."""
    from math import prod

    from safetensors import safe_open

    total = 0
    for file in sorted(folder.glob("model*.safetensors")):
        with safe_open(str(file), "pt") as f:
            total += sum(prod(f.get_slice(name).get_shape()) for name in f.keys())
    if not total:
        return "an unknown number of"
    return f"{total / 1e6:.2f}M" if total >= 1e6 else f"{total:,}"


def build_model_card(folder: str | Path, repo_id: str | None = None, task_card: dict | None = None) -> ModelCard:
    """The model card of a saved folder: Hub metadata (with `model-index` holding the run's evaluation results,
    values exactly as in `eval_results.json`) and the sections of the template in `hub_cards/`. A puzzle model's
    task text is the run's (`training_run.json`'s `card`, written by its task); `task_card` stands in for it in a
    folder written before runs recorded it."""
    folder = Path(folder)
    config = _read_json(folder / "config.json")
    run, results = _read_json(folder / RUN_FILE), _read_json(folder / EVAL_FILE)
    builders = {"nested_lstm": _nested_lm_card, "lstm_trm": _lstm_trm_card}
    if config.get("model_type") not in builders:
        raise HubError(f"{folder}/config.json is not a model of this package (model_type "
                       f"{config.get('model_type')!r}); give the folder written by examples/train.py")
    repo_id = repo_id or run.get("hub_model_id") or folder.resolve().name
    if config["model_type"] == "lstm_trm":
        run = {**run, "card": run.get("card") or task_card}
    card_data, template, values = builders[config["model_type"]](folder, config, run, results, repo_id)
    template_text = (resources.files("modeling_lstm_trm.hub_cards") / template).read_text()
    return ModelCard.from_template(card_data, template_str=template_text, repo_id=repo_id,
                                   model_name=repo_id.split("/")[-1], parameters=_parameters(folder), **values)


def _nested_lm_card(folder, config, run, results, repo_id):
    hub_dataset = run.get("dataset_is_hub", False)
    dataset = run.get("dataset") or "a text corpus"
    if not hub_dataset and run.get("dataset"):  # a local file: its folder and name, not the machine's path
        dataset = "/".join(Path(dataset).parts[-2:])
    dataset_type = dataset.split("/")[0] if "/" in dataset else "text"
    split = run.get("validation", "validation")
    metrics = [("perplexity", "Perplexity", "eval_perplexity"), ("bits_per_token", "Bits per token",
                                                                  "eval_bits_per_token"),
               ("bits_per_character", "Bits per character", "eval_bits_per_character"),
               ("loss", "Cross-entropy (nats per token)", "eval_loss")]
    eval_results = [
        EvalResult(task_type="text-generation", task_name="Causal language modeling", dataset_type=dataset_type,
                   dataset_name=dataset, dataset_split=split,
                   dataset_config=run.get("dataset_config"), metric_type=metric, metric_name=name,
                   metric_value=results[key])
        for metric, name, key in metrics if key in results
    ]
    card_data = ModelCardData(
        library_name="transformers", pipeline_tag="text-generation", license="apache-2.0",
        tags=["lstm-trm", "nested-lstm", "recurrent", "custom_code"],
        datasets=[dataset] if hub_dataset else None, base_model=run.get("base_model"),
        model_name=repo_id.split("/")[-1], eval_results=eval_results or None,
    )
    periods = config.get("level_update_every", [1])
    training_rows = [
        ("data", f"{dataset}" + (f" ({run['dataset_config']})" if run.get("dataset_config") else "")),
        ("validation", split),
        ("tokenizer", f"{run.get('tokenizer', '?')}-level, {config.get('vocab_size')} tokens"),
        ("model", f"hidden {config.get('hidden_size')}, {config.get('num_lstm_layers')} LSTM layer(s), feed-forward "
                  f"width {config.get('intermediate_size')}, dropout {config.get('dropout')}"),
        ("levels (update every k optimizer steps)", ", ".join(map(str, periods))),
        ("surprise weighting", "on" if config.get("surprise_weighting") else "off"),
    ] + _procedure_rows(run)
    result_rows = [(name, f"{results[key]:.4f}") for _, name, key in metrics if key in results]
    values = dict(dataset_description=run.get("dataset_description", dataset), periods=", ".join(map(str, periods)),
                  prompt=run.get("example_prompt", "\n"), tokenizer=run.get("tokenizer", "trained"),
                  training_rows=training_rows, result_rows=result_rows)
    return card_data, "nested_lm.md", values


def _lstm_trm_card(folder, config, run, results, repo_id):
    task = run.get("card")
    if not isinstance(task, dict) or not all(isinstance(task.get(key), str) for key in CARD_FIELDS):
        raise HubError(f"{folder}/{RUN_FILE} does not describe the model's task for its card (a run of an older "
                       "version, or a task without card text): train it again, or push it with the package that "
                       "trained it")
    size = task.get("size") or round(config.get("seq_len", 81) ** 0.5)
    source = (run.get("data") or {}).get("source") or f"generated, {run.get('givens', '?')} givens"
    title = task["title"]
    first, first_label = task["first"]
    second, second_label = task["second"]
    eval_results, result_rows = [], []
    for name, scores in results.items():
        if not isinstance(scores, dict) or first not in scores:
            continue
        generated = name == "held_out"  # the run's own test split: generated, or the dataset it was given
        own_type = f"generated-{task['tag']}" if source.startswith("generated") else f"{task['tag']}-dataset"
        dataset_type = own_type if generated else name
        dataset_name = f"{title} ({source})" if generated else name
        for metric, label in ((first, first_label), (second, second_label)):
            eval_results.append(EvalResult(
                task_type=task["task_type"], task_name=task["task_name"], dataset_type=dataset_type,
                dataset_name=dataset_name, dataset_split="held-out" if generated else "test", metric_type=metric,
                metric_name=label, metric_value=scores[metric]))
        count = scores.get(task.get("count_key", "puzzles"), "?")
        steps = scores.get("mean_steps")
        result_rows.append((f"{dataset_name} ({count} {task['unit']})", f"{scores[first]:.4f}",
                            f"{scores[second]:.4f}", "-" if steps is None else f"{steps:.2f}"))
    example = run.get("example_puzzle") or "." * (size * size)
    card_data = ModelCardData(
        library_name="transformers", license="apache-2.0", base_model=run.get("base_model"),
        pipeline_tag="other",  # the Hub has no puzzle-solving task; the card shows the pipeline that runs it
        widget=[{"text": example, "example_title": "a held-out puzzle"}],
        tags=["lstm-trm", "recursive-reasoning", "tiny-recursive-model", "puzzle-solving", task["tag"],
              "custom_code"],
        model_name=repo_id.split("/")[-1], eval_results=eval_results or None,
    )
    training_rows = [
        ("data", f"{run.get('train_puzzles', '?')} {title} ({source}), augmented on the fly by {task['augmentation']}"),
        ("recurrence / mixer", f"{config.get('recurrence')} / {config.get('mixer')}"),
        ("hidden size, layers", f"{config.get('hidden_size')}, {config.get('num_layers')}"),
        ("T cycles, n cycles, halt_max_steps",
         f"{config.get('T_cycles')}, {config.get('n_cycles')}, {config.get('halt_max_steps')}"),
        ("EMA decay", run.get("ema_decay", "?")),
    ] + _procedure_rows(run)
    values = dict(size=size, source=source, title=title, T_cycles=config.get("T_cycles"),
                  n_cycles=config.get("n_cycles"), halt_max_steps=config.get("halt_max_steps"),
                  example_puzzle=example, training_rows=training_rows, result_rows=result_rows,
                  grid_note=("its conv mixer reads square grids of any side (accuracy away from the trained side is "
                             "not promised)" if config.get("mixer") == "conv"
                             else f"it takes only grids of {size * size} cells"),
                  first_label=first_label, second_label=second_label, input_hint=task["input_hint"],
                  limitations=task["limitations"])
    return card_data, "lstm_trm.md", values


CARD_FIELDS = ("title", "task_type", "task_name", "tag", "unit", "input_hint", "augmentation", "limitations")


def _procedure_rows(run: dict) -> list[tuple[str, str]]:
    return [
        ("optimizer steps", run.get("steps", "?")),
        ("batch", f"{run.get('per_device_batch_size', '?')} per device x {run.get('processes', '?')} process(es) x "
                  f"{run.get('gradient_accumulation_steps', 1)} accumulation step(s)"),
        ("optimizer, learning rate, schedule", f"{run.get('optimizer', 'AdamW')}, {run.get('learning_rate', '?')}, "
                                               f"{run.get('lr_scheduler', '?')} with {run.get('warmup_steps', 0)} "
                                               "warm-up steps"),
        ("training time", f"{run.get('train_minutes', '?')} minutes on {run.get('device', '?')}"),
    ]


# ----- the repository ------------------------------------------------------------------------------------------------

def check_repo_id(repo_id: str) -> None:
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise HubError(f"invalid repository name {repo_id!r}: use USER/NAME with letters, digits, '-', '_' and '.' "
                       f"({first_line(error)})") from None
    if repo_id.count("/") != 1:
        raise HubError(f"invalid repository name {repo_id!r}: use USER/NAME, e.g. your-name/nested-lm-shakespeare")


def _check_weights_finite(files: list[Path]) -> None:
    """A model with NaN or infinite weights is never uploaded; a corrupted file is named."""
    from safetensors.torch import load_file

    for file in files:
        if file.suffix != ".safetensors":
            continue
        try:
            tensors = load_file(str(file))
        except Exception as error:  # noqa: BLE001
            raise HubError(f"{file} is truncated or corrupted ({first_line(error)})") from None
        broken = non_finite(tensors.items())
        if broken:
            raise HubError(f"{file} holds NaN or infinite weights ({broken[0]}, ...): the training diverged; not "
                           "uploading it")


def check_login(token: str | None = None) -> None:
    """Before a long run that ends in an upload: a token, accepted by the Hub."""
    token = token or get_token()
    if not token:
        raise HubError("not logged in to the Hub: run `hf auth login` (or set HF_TOKEN), or drop --push_to_hub")
    try:
        HfApi(token=token).whoami()
    except HfHubHTTPError as error:
        status = getattr(error.response, "status_code", None)
        raise HubError(f"the Hub refused the token (HTTP {status}): log in again with `hf auth login`") from None
    except Exception as error:  # noqa: BLE001  (no network, proxy, DNS: one line)
        raise HubError(f"could not reach the Hub to check the login ({first_line(error)})") from None


def assemble_repository(checkpoint: str | Path, out: str | Path, repo_id: str | None = None,
                        task_card: dict | None = None) -> list[str]:
    """Write the Hub repository of a saved folder into `out`: weights, config (with `auto_map`), code files,
    tokenizer, generation config, the card as README.md, the plot, the run's JSON files. Returns the file names.
    `task_card`: see `build_model_card`."""
    checkpoint, out = Path(checkpoint), Path(out)
    if not checkpoint.is_dir():
        raise HubError(f"no such folder: {checkpoint} (give the --output_dir of examples/train.py)")
    if not (checkpoint / "config.json").exists():
        raise HubError(f"{checkpoint} has no config.json: give the folder written by examples/train.py")
    weights = sorted(checkpoint.glob("model*.safetensors")) + sorted(checkpoint.glob("model.safetensors.index.json"))
    if not any(w.suffix == ".safetensors" for w in weights):
        raise HubError(f"{checkpoint} has no safetensors weights (model.safetensors): was training finished and the "
                       "model saved?")
    if not (checkpoint / "tokenizer.json").is_file():
        kind = ("a training checkpoint (weights and optimizer state)" if checkpoint.name.startswith("checkpoint-")
                else "not a finished run's folder")
        raise HubError(f"{checkpoint} has no tokenizer.json: it is {kind}; give the --output_dir of a finished "
                       "examples/train.py run, which holds the tokenizer, results and card as well")
    config = json.loads((checkpoint / "config.json").read_text())
    _check_weights_finite(weights)
    model_type = config.get("model_type")
    if model_type not in CODE_FILES:
        raise HubError(f"{checkpoint}/config.json has model_type {model_type!r}, not a model of this package")
    if repo_id is not None:
        check_repo_id(repo_id)
    card = build_model_card(checkpoint, repo_id, task_card)
    if out.exists() and any(out.iterdir()):
        raise HubError(f"{out} is not empty: give a new folder, so that it holds exactly the repository")

    out.mkdir(parents=True, exist_ok=True)
    for file in weights:
        shutil.copy2(file, out / file.name)
    config["auto_map"] = {**config.get("auto_map", {}), **AUTO_MAP[model_type]}
    if model_type == "lstm_trm":  # pipeline(model=REPO, trust_remote_code=True), also for folders saved before it
        config["custom_pipelines"] = CUSTOM_PIPELINES
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    model_folder, code_files = CODE_FILES[model_type]
    package = Path(__file__).resolve().parent / "models" / model_folder
    for name in code_files:  # the folder's own copy, else this package's
        shutil.copy2(checkpoint / name if (checkpoint / name).exists() else package / name, out / name)
    for name in OPTIONAL_FILES:
        if (checkpoint / name).exists():
            shutil.copy2(checkpoint / name, out / name)
    if model_type == "nested_lstm" and not (out / "generation_config.json").exists():
        from transformers import GenerationConfig, PretrainedConfig

        GenerationConfig.from_model_config(PretrainedConfig(**config)).save_pretrained(out)
    card.save(out / "README.md")
    return sorted(p.name for p in out.iterdir() if p.is_file())


def push_checkpoint(checkpoint: str | Path, repo_id: str, private: bool = False, revision: str | None = None,
                    token: str | None = None, commit_message: str | None = None, task_card: dict | None = None) -> str:
    """Assemble the repository of `checkpoint` and upload it to `repo_id` in one commit; returns the commit's URL.
    Nothing is uploaded unless the folder, the name and the login are all good."""
    check_repo_id(repo_id)
    with tempfile.TemporaryDirectory() as tmp:
        files = assemble_repository(checkpoint, tmp, repo_id, task_card)
        token = token or get_token()
        if not token:
            raise HubError("not logged in to the Hub: run `hf auth login` (or set HF_TOKEN), or use --dry-run OUT")
        api = HfApi(token=token)
        operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(Path(tmp) / name)) for name in files]
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            commit = api.create_commit(repo_id, operations=operations, revision=revision,
                                       commit_message=commit_message or f"Upload {Path(checkpoint).name} with lstm-trm")
        except HfHubHTTPError as error:
            status = getattr(error.response, "status_code", None)
            if status in (401, 403):
                raise HubError(f"the Hub refused the token for {repo_id} (HTTP {status}): log in again with "
                               "`hf auth login` using a token with write access to that namespace") from None
            raise HubError(f"upload to {repo_id} failed: {first_line(error)}") from None
        return commit.commit_url
