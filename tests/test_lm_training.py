"""The nested LM's training pipeline end to end: tokenizers, StatefulTrainer with carried state, levels and surprise
through Trainer, one and two processes, exact resume after SIGKILL, and the train / evaluate / generate commands."""

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_example
from safetensors.torch import load_file
from transformers import AutoTokenizer, TrainerCallback, TrainingArguments

from modeling_lstm_trm import (
    BoundaryAwareCollator,
    MultiTimescaleOptimizer,
    NestedLSTMConfig,
    NestedLSTMForCausalLM,
    NestedLSTMState,
    StatefulTrainer,
    TokenStreams,
)
from modeling_lstm_trm.tasks.text.streams import (
    encode_corpus,
    evaluate_stream,
    evaluate_token_streams,
    load_text_documents,
)
from modeling_lstm_trm.tokenization import TOKENIZER_KINDS, build_text_tokenizer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare" / "input.txt"


def corpus_text(documents=12, seed=0) -> str:
    """Small documents, each starting with a `# title` line, over a small alphabet."""
    rng = np.random.default_rng(seed)
    words = ["the", "king", "sea", "of", "a", "stone", "river", "and", "old", "night"]
    out = []
    for d in range(documents):
        out.append(f"# doc {d}\n")
        for _ in range(int(rng.integers(3, 8))):
            out.append(" ".join(rng.choice(words, size=int(rng.integers(3, 9)))) + ".\n")
    return "".join(out)


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(corpus_text())
    return path


# --- tokenizers ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", TOKENIZER_KINDS)
def test_each_tokenizer_is_a_standard_tokenizer_json_with_special_tokens(kind, tmp_path):
    text = corpus_text(4)
    options = {"vocab_size": 300} if kind == "bpe" else {}
    build_text_tokenizer(kind, [text], **options).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert "auto_map" not in config  # nothing custom to run
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token, tokenizer.unk_token) == \
        ("<bos>", "<eos>", "<pad>", "<unk>")
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.unk_token_id not in ids  # everything in the training text is in the vocabulary
    if kind == "word":
        assert tokenizer.decode(ids) == " ".join(text.replace("\n", " \n ").split(" ")).strip(" ")
    else:
        assert tokenizer.decode(ids) == text


def test_char_and_word_tokenizers_map_unseen_text_to_unk_and_bpe_never_does():
    char = build_text_tokenizer("char", ["abc\n"])
    assert char("abz")["input_ids"] == [char.convert_tokens_to_ids("a"), char.convert_tokens_to_ids("b"),
                                       char.unk_token_id]
    word = build_text_tokenizer("word", [" = Title = \n the <unk> cat \n"])
    ids = word("the <unk> dog\n")["input_ids"]
    assert ids == [word.convert_tokens_to_ids("the"), word.unk_token_id, word.unk_token_id,
                   word.convert_tokens_to_ids("\n")]  # WikiText's own <unk> is the tokenizer's <unk>
    bpe = build_text_tokenizer("bpe", ["hello world\n"], vocab_size=300)
    assert bpe.decode(bpe("héllo ☃")["input_ids"]) == "héllo ☃"
    with pytest.raises(ValueError, match="tokenizer must be one of"):
        build_text_tokenizer("sentencepiece", ["x"])


def test_text_files_become_documents_with_a_validation_split(tmp_path):
    one = tmp_path / "one.txt"
    one.write_text("x" * 900 + "y" * 100)
    train, validation = load_text_documents(train_file=str(one))
    assert train == ["x" * 900] and validation == ["y" * 100]  # a single document: last 10% of its characters
    wiki = tmp_path / "wikitext_valid.txt"
    wiki.write_text(" \n = A = \n text \n = = Sub = = \n more \n = B = \n b text \n")
    train, validation = load_text_documents(train_file=str(wiki), validation_file=str(wiki))
    assert train == validation == [" = A = \n text \n = = Sub = = \n more \n", " = B = \n b text \n"]
    with pytest.raises(ValueError, match="--train_file"):
        load_text_documents()


def test_a_dataset_folder_gives_one_document_per_row(tmp_path):
    """The --dataset_name path, offline: `load_dataset` on a local folder with train and validation splits."""
    folder = tmp_path / "my_dataset"
    folder.mkdir()
    for split, rows in (("train", ["first story.", "", "second story."]), ("validation", ["held out."])):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps({"body": r}) + "\n" for r in rows))
    train, validation = load_text_documents(dataset_name=str(folder), text_column="body")
    assert train == ["first story.", "second story."] and validation == ["held out."]


# --- StatefulTrainer with the nested LM ----------------------------------------------------------------------------

def lm_trainer(tmp_path, levels=(1, 3), surprise=False, steps=7, accumulation=1, lr=1e-2, **overrides):
    torch.manual_seed(0)
    tokenizer = build_text_tokenizer("char", [corpus_text()])
    tokens, starts, chars = encode_corpus([corpus_text()], tokenizer)
    config = NestedLSTMConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=8,
                              level_update_every=list(levels), surprise_weighting=surprise)
    model = NestedLSTMForCausalLM(config)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=steps, per_device_train_batch_size=2,
                             per_device_eval_batch_size=2, gradient_accumulation_steps=accumulation,
                             dataloader_drop_last=True, train_sampling_strategy="sequential", report_to="none",
                             logging_steps=1, save_strategy="no", disable_tqdm=True, max_grad_norm=1.0,
                             learning_rate=lr, lr_scheduler_type="linear", **overrides)
    optimizer = MultiTimescaleOptimizer.from_model(model, torch.optim.AdamW, lr=lr)
    return StatefulTrainer(model=model, args=args, train_dataset=TokenStreams(tokens, starts, 2, 8, chars),
                           eval_dataset=TokenStreams(tokens, starts, 2, 8, chars),
                           data_collator=BoundaryAwareCollator(), optimizers=(optimizer, None),
                           evaluate_fn=evaluate_token_streams)  # as the LM task does


def test_the_trainer_feeds_each_batch_the_detached_state_of_the_previous_one(tmp_path):
    trainer = lm_trainer(tmp_path, steps=4, lr=0.0)  # weights stay put, so a step's state can be replayed
    seen = []
    trainer.model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(dict(kwargs)), with_kwargs=True)
    trainer.train()
    assert seen[0]["cache"] is None  # a fresh state at the start of the epoch
    for step in range(1, 4):
        state = seen[step]["cache"]
        assert isinstance(state, NestedLSTMState) and not state.h[0].requires_grad and state.batch_size == 2
        inputs = {k: seen[step - 1][k] for k in ("input_ids", "reset_mask", "cache")}
        with torch.no_grad():
            replay = trainer.model(**inputs).cache
        torch.testing.assert_close(replay.h[0], state.h[0])
        torch.testing.assert_close(replay.c[0], state.c[0])


def _clone(tensor):
    return None if tensor is None else tensor.clone()


def test_level_parameters_change_only_on_their_steps_through_trainer(tmp_path):
    trainer = lm_trainer(tmp_path, levels=(1, 3), steps=7, accumulation=2)
    snapshots = []

    class Snapshot(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            slow = trainer.model.level_parameters()[1]
            snapshots.append((state.global_step, [p.detach().clone() for p in slow],
                              [_clone(trainer.optimizer.optimizer.accumulated_gradient(p)) for p in slow]))

    trainer.add_callback(Snapshot())
    before = [p.detach().clone() for p in trainer.model.level_parameters()[1]]
    trainer.train()
    previous = before
    for step, params, accumulated in snapshots:
        changed = any(not torch.equal(a, b) for a, b in zip(previous, params))
        assert changed == (step % 3 == 0), step
        if step % 3:  # between its steps the slow level's accumulated gradient exists and grows
            assert all(g is not None for g in accumulated)
        previous = params
    norms = [sum(float(g.norm()) for g in acc) for step, _, acc in snapshots if step % 3]
    assert norms[1] > norms[0]  # steps 1 -> 2


def test_surprise_is_the_step_mean_nll_over_its_micro_batches(tmp_path):
    trainer = lm_trainer(tmp_path, levels=(1, 2), surprise=True, steps=1, accumulation=2)
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    optimizer = trainer.optimizer.optimizer
    reference = NestedLSTMForCausalLM(trainer.model.config)
    reference.load_state_dict(start)
    collate, data = BoundaryAwareCollator(), trainer.train_dataset
    state, total = None, 0.0
    with torch.no_grad():
        for batch in range(2):
            inputs = collate([data[2 * batch], data[2 * batch + 1]])
            out = reference(**inputs, cache=state)
            state, total = out.cache, total + float(out.loss)
    assert optimizer.running_surprise == pytest.approx(total / 2, rel=1e-5)


def test_evaluation_reports_perplexity_and_bits_and_resets_its_state(tmp_path):
    trainer = lm_trainer(tmp_path, steps=2)
    trainer.train()
    first, second = trainer.evaluate(), trainer.evaluate()
    assert first["eval_loss"] == pytest.approx(second["eval_loss"], rel=1e-6)  # each evaluation starts fresh
    assert first["eval_perplexity"] == pytest.approx(math.exp(first["eval_loss"]), rel=1e-6)
    assert first["eval_bits_per_token"] == pytest.approx(first["eval_loss"] / math.log(2), rel=1e-6)
    assert first["eval_bits_per_character"] == pytest.approx(
        first["eval_bits_per_token"] / trainer.eval_dataset.characters_per_token, rel=1e-6)
    trainer.evaluate_fn = None  # Trainer's own loss loop over the same streams, state carried: the same loss
    assert trainer.evaluate()["eval_loss"] == pytest.approx(first["eval_loss"], rel=1e-5)


def test_stream_evaluation_equals_one_call_over_the_whole_text():
    torch.manual_seed(0)
    model = NestedLSTMForCausalLM(NestedLSTMConfig(vocab_size=20, hidden_size=8, level_update_every=[1, 4])).eval()
    tokens = np.random.default_rng(0).integers(0, 20, 50)
    starts = np.zeros(50, dtype=bool)
    starts[[0, 17, 33]] = True
    chunked = evaluate_stream(model, tokens, starts, chunk_len=7)
    x = torch.as_tensor(tokens)[None]
    with torch.no_grad():
        whole = model(x[:, :-1], shift_labels=x[:, 1:], reset_mask=torch.as_tensor(starts[:-1])[None])
    assert chunked["tokens"] == 49
    assert chunked["loss"] == pytest.approx(float(whole.loss), rel=1e-5)


# --- examples/train.py --task lm, evaluate.py, generate.py ------------------------------------------------------------

def lm_argv(text_file, out, *extra):
    return ["--task", "lm", "--train_file", str(text_file), "--tokenizer", "char", "--output_dir", str(out),
            "--hidden_size", "32", "--level_update_every", "1", "4", "--block_size", "16",
            "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "2", "--max_steps", "20",
            "--logging_steps", "1", "--eval_steps", "10", "--save_steps", "10", "--disable_tqdm", "true",
            "--learning_rate", "1e-2", "--warmup_steps", "0", *extra]


def test_train_evaluate_and_generate_commands(text_file, tmp_path, without_package, capsys):
    out = tmp_path / "lm"
    train = subprocess.run([sys.executable, str(EXAMPLES / "train.py"), *lm_argv(text_file, out)],
                           capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-3000:]
    for name in ["model.safetensors", "config.json", "modeling_nested_lstm.py", "configuration_nested_lstm.py",
                 "tokenizer.json", "generation_config.json", "eval_results.json", "training_curves.png",
                 "trainer_state.json"]:
        assert (out / name).exists(), name
    results = json.loads((out / "eval_results.json").read_text())
    assert json.loads((out / "config.json").read_text())["use_cache"] is True  # Trainer's use_cache=False not kept
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    losses = [e["loss"] for e in history if "loss" in e]
    assert len(losses) == 20 and losses[-1] < losses[0]
    assert results["eval_perplexity"] == pytest.approx(math.exp(results["eval_loss"]), rel=1e-4)

    printed = without_package(f"""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        model = AutoModelForCausalLM.from_pretrained({str(out)!r}, trust_remote_code=True)
        tokenizer = AutoTokenizer.from_pretrained({str(out)!r})
        ids = tokenizer("the king", return_tensors="pt")["input_ids"]
        print(type(model).__name__, model.generate(ids, max_new_tokens=5, do_sample=False).shape)
    """)
    assert "NestedLSTMForCausalLM torch.Size([1, 13])" in printed

    capsys.readouterr()  # evaluate and generate in this process: the train command above was the subprocess
    load_example("evaluate_model").main(["--model", str(out), "--file", str(text_file)])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["tokens"] == len(text_file.read_text()) and last["perplexity"] > 1  # chars + <eos> - 1
    load_example("generate").main(["--model", str(out), "--prompt", "the ", "--max_new_tokens", "30"])
    generated = capsys.readouterr().out
    assert generated.startswith("the ") and len(generated.strip()) > 10


def test_train_command_reads_a_dataset_folder_shaped_like_wikitext(tmp_path):
    """The README's `--dataset_name wikitext --dataset_config_name wikitext-2-v1` command, offline: a local folder of
    the same shape (one row per line, train and validation splits); WikiText titles start the documents."""
    import importlib.util

    folder = tmp_path / "wikitext-like"
    folder.mkdir()
    for split, titles in (("train", "ABCDEFGH"), ("validation", "XY")):
        rows = [line for t in titles for line in (f" = {t} = \n", " the king and the sea . \n", " old night . \n")]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps({"text": r}) + "\n" for r in rows))
    spec = importlib.util.spec_from_file_location("example_train_lm", EXAMPLES / "train.py")
    train = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = train
    spec.loader.exec_module(train)
    out = tmp_path / "lm"
    results = train.main(["--task", "lm", "--dataset_name", str(folder), "--tokenizer", "word", "--output_dir",
                          str(out), "--hidden_size", "16", "--level_update_every", "1", "--block_size", "4",
                          "--per_device_train_batch_size", "2", "--per_device_eval_batch_size", "2", "--max_steps",
                          "3", "--disable_tqdm", "true", "--eval_strategy", "no", "--save_strategy", "no"])
    assert results["eval_perplexity"] == pytest.approx(math.exp(results["eval_loss"]), rel=1e-4)
    run = json.loads((out / "training_run.json").read_text())
    assert run["dataset"] == str(folder) and run["validation"] == "validation split"
    vocabulary = AutoTokenizer.from_pretrained(out).get_vocab()
    assert {"king", "A", "H", "\n"} <= set(vocabulary) and "X" not in vocabulary  # from the train split only


def test_train_command_rejects_bad_input_with_a_message(text_file, tmp_path, capsys):
    """Flags are checked before any data is read or anything is written."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("example_train_flags", EXAMPLES / "train.py")
    train = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = train
    spec.loader.exec_module(train)
    for extra, message in ((["--tokenizer", "spm"], "--tokenizer must be one of"),
                           (["--train_file", str(tmp_path / "missing.txt")], "no such file"),
                           (["--schedule_by_time", "true"], "--schedule_by_time needs --max_minutes"),
                           (["--task", "chess"], "--task chess: not one of sudoku, lm")):
        with pytest.raises(SystemExit) as exit_info:
            train.main(lm_argv(text_file, tmp_path / "x") + extra)
        assert exit_info.value.code != 0 and message in capsys.readouterr().err
        assert not (tmp_path / "x").exists()


def test_killed_and_resumed_lm_training_continues_identically(text_file, tmp_path, run_train):
    def argv(out, *extra):
        return lm_argv(text_file, out, "--max_steps", "24", "--save_steps", "12", "--eval_steps", "1000",
                       "--surprise_weighting", "true", "--dropout", "0.1", *extra)

    load_example("train").main(argv(tmp_path / "straight"))  # in-process: one import less
    killed = run_train(argv(tmp_path / "killed"), kill_at=17)
    assert killed.returncode == -9 and (tmp_path / "killed" / "checkpoint-12").exists()
    saved = load_file(tmp_path / "killed" / "checkpoint-12" / "carried_state-rank0.safetensors")
    assert set(saved) and all(t.abs().sum() > 0 for t in saved.values())
    checkpoint = tmp_path / "killed" / "checkpoint-12"
    resumed = run_train(argv(tmp_path / "killed", "--resume_from_checkpoint", str(checkpoint)))
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    def losses(folder):
        history = json.loads((folder / "trainer_state.json").read_text())["log_history"]
        return {e["step"]: e["loss"] for e in history if "loss" in e}

    a, b = losses(tmp_path / "straight"), losses(tmp_path / "killed")
    for step in range(13, 25):
        assert abs(a[step] - b[step]) <= 1e-5, (step, a[step], b[step])
    final_a = load_file(tmp_path / "straight" / "model.safetensors")
    final_b = load_file(tmp_path / "killed" / "model.safetensors")
    for name in final_a:
        torch.testing.assert_close(final_a[name], final_b[name], atol=1e-6, rtol=0)


# --- two processes (accelerate launch --multi_gpu on CPU: two processes talking over gloo) -------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(script_and_args: list[str], processes: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if processes == 1:
        command = [sys.executable, *script_and_args]
    else:
        command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
                   str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                   "--main_process_port", str(free_port()), *script_and_args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


RECORD_STREAMS = """
import json, sys
import numpy as np
from transformers import TrainingArguments
from modeling_lstm_trm import BoundaryAwareCollator, NestedLSTMConfig, NestedLSTMForCausalLM, StatefulTrainer
from modeling_lstm_trm.tasks.text.streams import TokenStreams

out, per_device = sys.argv[1], int(sys.argv[2])
args = TrainingArguments(output_dir=out, per_device_train_batch_size=per_device, dataloader_drop_last=True,
                         train_sampling_strategy="sequential", report_to="none", remove_unused_columns=False,
                         use_cpu=True)
tokens = np.arange(1000) % 50
starts = tokens == 0
data = TokenStreams(tokens, starts, per_device * args.world_size, 8)

def collate(items):
    batch = BoundaryAwareCollator()(items)
    batch["position"] = [[item["stream"], item["chunk"]] for item in items]
    return batch

model = NestedLSTMForCausalLM(NestedLSTMConfig(vocab_size=50, hidden_size=8))
trainer = StatefulTrainer(model=model, args=args, train_dataset=data, data_collator=collate)
batches = [batch["position"] for batch in trainer.get_train_dataloader()]
with open(f"{out}/rank{args.process_index}.json", "w") as f:
    json.dump({"batches": batches, "streams": data.num_streams}, f)
"""


@pytest.mark.parametrize("processes", [1, 2])
def test_every_process_continues_its_own_streams(processes, tmp_path):
    script = tmp_path / "record_streams.py"
    script.write_text(RECORD_STREAMS)
    per_device = 3
    run = launch([str(script), str(tmp_path), str(per_device)], processes)
    assert run.returncode == 0, run.stderr[-3000:]
    seen = set()
    for rank in range(processes):
        record = json.loads((tmp_path / f"rank{rank}.json").read_text())
        batches = record["batches"]
        assert record["streams"] == per_device * processes and len(batches) > 5
        assert [s for s, _ in batches[0]] == list(range(rank * per_device, (rank + 1) * per_device))
        for previous, batch in zip(batches, batches[1:]):
            assert batch == [[s, c + 1] for s, c in previous]  # every row continues the same row's stream
        seen |= {tuple(p) for batch in batches for p in batch}
    total_chunks = (1000 - 1) // (per_device * processes * 8)
    assert seen == {(s, c) for s in range(per_device * processes) for c in range(total_chunks)}


def test_two_processes_reproduce_one_process_with_twice_the_batch(text_file, tmp_path):
    def argv(out, per_device):
        return [str(EXAMPLES / "train.py"), *lm_argv(text_file, out, "--per_device_train_batch_size", str(per_device),
                                                     "--eval_strategy", "no", "--save_strategy", "no",
                                                     "--surprise_weighting", "true", "--num_threads", "1",
                                                     "--bf16", "false")]  # bf16 rounding: 6e-4 apart, not 1e-4

    one = launch(argv(tmp_path / "one", 4), processes=1)
    assert one.returncode == 0, one.stderr[-3000:]
    two = launch(argv(tmp_path / "two", 2), processes=2)
    assert two.returncode == 0, two.stderr[-3000:]

    def losses(folder):
        history = json.loads((folder / "trainer_state.json").read_text())["log_history"]
        return [e["loss"] for e in history if "loss" in e]

    a, b = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(a) == len(b) == 20
    assert max(abs(x - y) for x, y in zip(a, b)) <= 1e-4, (a, b)
    wa, wb = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], atol=1e-4, rtol=0)


@pytest.mark.skipif(not SHAKESPEARE.exists(), reason="needs ../shared/data/tinyshakespeare")
def test_tiny_shakespeare_readme_command_runs_a_few_steps(tmp_path):
    out = tmp_path / "shakespeare"
    run = subprocess.run([sys.executable, str(EXAMPLES / "train.py"), "--task", "lm", "--train_file",
                          str(SHAKESPEARE), "--tokenizer", "char", "--output_dir", str(out), "--max_steps", "5",
                          "--eval_steps", "5", "--disable_tqdm", "true", "--per_device_eval_batch_size", "32",
                          "--validation_fraction", "0.01"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads((out / "eval_results.json").read_text())
    assert len(AutoTokenizer.from_pretrained(out)) == 65 + 4  # Tiny Shakespeare has 65 distinct characters
    assert results["eval_bits_per_character"] == pytest.approx(results["eval_bits_per_token"], rel=0.01)
