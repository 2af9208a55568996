"""Language modeling as a task (`TASK`, `--task lm`): the nested LM's flags, its preset, its data and model for the
shared training pipeline (`run_training`), and its evaluation on a text file (perplexity, bits per token and
character; optionally learning while it reads)."""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoTokenizer, TrainingArguments

from ...models.nested_lstm import NestedLSTMConfig, NestedLSTMForCausalLM
from ...tokenization import TOKENIZER_KINDS, build_text_tokenizer
from ...training import MultiTimescaleOptimizer
from ...training.online import OnlineArguments
from ...training.runs import SCHEDULE_BY_TIME_HELP, Panel, TimeBudget, bf16_supported
from ..arguments import at_least
from ..task import Splits, Task
from .streams import BoundaryAwareCollator, TokenStreams, encode_corpus, evaluate_token_streams, load_text_documents

PRESETS = Path(__file__).parent / "presets"


@dataclass
class LMArguments:
    train_file: str | None = field(default=None, metadata={"help": "A text file to train on."})
    validation_file: str | None = field(default=None, metadata={
        "help": "A text file to validate on (default: the last --validation_fraction of the training text)."})
    validation_fraction: float = field(default=0.1, metadata={
        "help": "Without a validation split, the last this fraction of the training text validates (0: none)."})
    dataset_name: str | None = field(default=None, metadata={
        "help": "A Hub dataset (or a local dataset folder) instead of text files, e.g. wikitext."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "e.g. wikitext-2-raw-v1"})
    text_column: str = field(default="text", metadata={"help": "The dataset's text column."})
    document_boundary: str = field(default="auto", metadata={
        "help": "How documents are found (the state resets at each): auto, rows, none, wikitext, or a regex "
                "matching a document's first line."})
    tokenizer: str = field(default="char", metadata={"help": "char, word or bpe (trained on the training split)."})
    bpe_vocab_size: int = field(default=4096, metadata={"help": "Vocabulary size of the BPE tokenizer."})
    word_min_frequency: int = field(default=1, metadata={"help": "Rarer words become <unk> (word tokenizer)."})
    block_size: int = field(default=128, metadata={"help": "Chunk length T of truncated BPTT."})
    max_minutes: float | None = field(default=None, metadata={"help": "Stop training after this many minutes."})
    schedule_by_time: bool = field(default=False, metadata={"help": SCHEDULE_BY_TIME_HELP})
    level_lr_scale: list[float] | None = field(default=None, metadata={
        "help": "Learning-rate multiplier of each level (default 1 for all)."})
    num_threads: int | None = field(default=None, metadata={"help": "PyTorch CPU threads per process."})
    carry_state: bool = field(default=True, metadata={
        "help": "Carry the LSTM state from batch to batch (false: start every batch fresh, an ablation)."})


@dataclass
class LMModelArguments:
    hidden_size: int | None = None
    num_lstm_layers: int | None = None
    level_update_every: list[int] | None = field(default=None, metadata={
        "help": "Update period of each level in optimizer steps, e.g. 1 16 256 (1 alone: a plain LSTM LM)."})
    intermediate_size: int | None = None
    dropout: float | None = None
    surprise_weighting: bool = field(default=False, metadata={
        "help": "Weight the slow levels' accumulated gradients by each step's surprise (see README)."})


ARGUMENTS = (LMArguments, LMModelArguments)


def preset_defaults(lm_args: LMArguments, model_args: LMModelArguments) -> dict:
    """`presets/default.json`, with bf16 autocast where the hardware has native bfloat16."""
    return {**json.loads((PRESETS / "default.json").read_text()), "bf16": bf16_supported()}


def check(lm_args: LMArguments, model_args: LMModelArguments, training_args: TrainingArguments) -> None:
    if lm_args.tokenizer not in TOKENIZER_KINDS:
        raise ValueError(f"--tokenizer must be one of {', '.join(TOKENIZER_KINDS)}, got {lm_args.tokenizer!r}")
    if not (lm_args.train_file or lm_args.dataset_name):
        raise ValueError("--task lm needs --train_file FILE or --dataset_name NAME")
    for flag, path in (("train_file", lm_args.train_file), ("validation_file", lm_args.validation_file)):
        if path:
            check_text_file(path, f"--{flag}")
    at_least(lm_args.block_size, 1, "block_size")
    if not 0 <= lm_args.validation_fraction < 1:
        raise ValueError(f"--validation_fraction must be in [0, 1), got {lm_args.validation_fraction}")
    if training_args.train_sampling_strategy != "sequential" or not training_args.dataloader_drop_last:
        raise ValueError("the LM's streams need --train_sampling_strategy sequential and --dataloader_drop_last true")


def check_text_file(path: str, flag: str) -> None:
    """A file to read as text: it exists, is UTF-8 and holds more than blanks (read in pieces, so any size will do)."""
    if not Path(path).is_file():
        raise ValueError(f"{flag}: no such file: {path}")
    decoder, seen_text, offset = codecs.getincrementaldecoder("utf-8")(), False, 0
    with open(path, "rb") as file:
        while piece := file.read(1 << 20):
            try:
                text = decoder.decode(piece)
            except UnicodeDecodeError as error:
                raise ValueError(f"{flag}: {path} is not UTF-8 text (byte {offset + error.start})") from None
            if "\x00" in text:
                raise ValueError(f"{flag}: {path} holds NUL bytes: a binary file, not text")
            seen_text = seen_text or bool(text.strip())
            offset += len(piece)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ValueError(f"{flag}: {path} is not UTF-8 text (it ends inside a character)") from None
    if not seen_text:
        raise ValueError(f"{flag}: {path} holds no text")


def prepare_data(lm_args: LMArguments, training_args: TrainingArguments):
    """Tokenizer and token streams. The main process trains the tokenizer (or, resuming, takes the saved one), builds
    the streams, and only then saves the tokenizer beside the model, so a run that cannot start touches no file; the
    other processes load that very file."""
    output_dir = Path(training_args.output_dir)
    resuming = training_args.resume_from_checkpoint and (output_dir / "tokenizer.json").exists()
    train_docs, val_docs = load_text_documents(
        lm_args.train_file, lm_args.validation_file, lm_args.dataset_name, lm_args.dataset_config_name,
        lm_args.text_column, lm_args.document_boundary, lm_args.validation_fraction)
    with training_args.main_process_first(desc="tokenizer"):
        if training_args.process_index == 0 and not resuming:
            options = {"bpe": {"vocab_size": lm_args.bpe_vocab_size},
                       "word": {"min_frequency": lm_args.word_min_frequency}}.get(lm_args.tokenizer, {})
            tokenizer = build_text_tokenizer(lm_args.tokenizer, train_docs, **options)
        else:
            tokenizer = AutoTokenizer.from_pretrained(output_dir)
        world, main = training_args.world_size, training_args.process_index == 0
        datasets = []
        for split, docs, batch in (("training", train_docs, training_args.per_device_train_batch_size),
                                   ("validation", val_docs, training_args.per_device_eval_batch_size)):
            if not docs:
                datasets.append(None)
                continue
            tokens, starts, chars_per_token = encode_corpus(docs, tokenizer, progress=main)
            try:
                datasets.append(TokenStreams(tokens, starts, batch * world, lm_args.block_size, chars_per_token))
            except ValueError as error:
                raise ValueError(f"the {split} text: {error} (lower --block_size or the batch size)") from None
        if main and not resuming:
            tokenizer.save_pretrained(output_dir)
    return tokenizer, train_docs, *datasets


@dataclass
class LMEvaluateArguments(OnlineArguments):
    """examples/evaluate_model.py for the nested LM: a text file read as one stream, in order (learning while it reads
    with the `--online_*` flags)."""

    file: str | None = field(default=None, metadata={"help": "A text file, read as one stream in order."})
    document_boundary: str = field(default="auto", metadata={"help": "auto, none, rows, wikitext or a regex."})
    block_size: int = field(default=512, metadata={"help": "Tokens per forward call."})

    def check(self) -> None:
        if not self.file:
            raise ValueError("the following arguments are required: --file")
        at_least(self.block_size, 1, "block_size")
        check_text_file(self.file, "--file")


class TextTask(Task):
    arguments = ARGUMENTS
    evaluate_arguments = LMEvaluateArguments
    model_type = "nested_lstm"
    language_model = True

    preset_defaults = staticmethod(preset_defaults)
    check = staticmethod(check)

    # ----- training (`run_training`'s hooks)
    def load(self, task_args, training_args: TrainingArguments, is_main: bool) -> Splits:
        lm_args = task_args[0]
        tokenizer, train_docs, train_dataset, eval_dataset = prepare_data(lm_args, training_args)
        if eval_dataset is None:
            training_args.eval_strategy = "no"
        return Splits(train_dataset, eval_dataset, {"example_prompt": train_docs[0][:40].split("\n")[0] or "\n"},
                      tokenizer)

    def build_model(self, splits: Splits, task_args, training_args: TrainingArguments, is_main: bool):
        lm_args, model_args = task_args
        tokenizer = splits.tokenizer
        settings = {k: v for k, v in vars(model_args).items() if v is not None}
        config = NestedLSTMConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, **settings)
        model = NestedLSTMForCausalLM(config)
        if is_main:
            train = splits.train
            print(f"Nested LM: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, levels updating "
                  f"every {config.level_update_every} steps, surprise weighting "
                  f"{'on' if config.surprise_weighting else 'off'}; {lm_args.tokenizer} tokenizer ({len(tokenizer)} "
                  f"tokens); {len(train.tokens):,} training tokens in {train.num_streams} streams of "
                  f"{train.num_chunks} chunks of {lm_args.block_size}", flush=True)
        return model

    def trainer_arguments(self, model, splits: Splits, task_args, training_args: TrainingArguments,
                          budget: TimeBudget | None, started: float) -> dict:
        lm_args = task_args[0]
        optimizer = MultiTimescaleOptimizer.from_model(
            model, torch.optim.AdamW, level_lr_scale=lm_args.level_lr_scale, lr=training_args.learning_rate,
            weight_decay=training_args.weight_decay, betas=(training_args.adam_beta1, training_args.adam_beta2),
            eps=training_args.adam_epsilon)
        return dict(train_dataset=splits.train, eval_dataset=splits.test, data_collator=BoundaryAwareCollator(),
                    optimizers=(optimizer, None), processing_class=splits.tokenizer,
                    evaluate_fn=evaluate_token_streams, carry_state=lm_args.carry_state)

    def evaluate_run(self, trainer, splits: Splits, task_args) -> dict:
        if splits.test is None:
            return {}
        return {k: round(v, 6) for k, v in trainer.evaluate().items() if isinstance(v, float)}

    def run_record(self, splits: Splits, model, task_args) -> dict:
        lm_args = task_args[0]
        validation = lm_args.validation_file or ("validation split" if lm_args.dataset_name else
                                                 f"last {lm_args.validation_fraction:.0%} of the training text")
        return dict(task=self.name, dataset=lm_args.dataset_name or lm_args.train_file,
                    dataset_is_hub=bool(lm_args.dataset_name), dataset_config=lm_args.dataset_config_name,
                    tokenizer=lm_args.tokenizer, validation=validation, block_size=lm_args.block_size,
                    example_prompt=splits.info["example_prompt"])

    def panels(self) -> list[Panel]:
        return [Panel("cross-entropy (nats per token)", {"loss": "training loss", "eval_loss": "validation loss"},
                      markers={"eval_loss"})]

    def report(self, results: dict, splits: Splits, model, output_dir: Path) -> None:
        summary = ", ".join(f"{k.removeprefix('eval_')} {v:.4f}" for k, v in results.items()
                            if k in ("eval_loss", "eval_perplexity", "eval_bits_per_character"))
        print(f"\nValidation: {summary or 'none'}. Model and tokenizer saved in {output_dir.resolve()} "
              f"({results['train_minutes']} minutes)", flush=True)
        print(f"Generate: python examples/generate.py --model {output_dir} --prompt 'Hello'", flush=True)

    # ----- evaluation: a text file read as one stream, the state carried across chunks, learning on request
    def evaluation_data(self, options: LMEvaluateArguments, args, model):
        from .streams import auto_boundary, rows_to_documents

        options.settings(model.config.to_dict())  # the --online_* flags fit this model: checked before any work
        text = Path(options.file).read_text(encoding="utf-8")
        boundary = auto_boundary(options.file) if options.document_boundary == "auto" else options.document_boundary
        return None, rows_to_documents(text.splitlines(keepends=True), boundary)

    def evaluation_scores(self, model, documents: list[str], options, args) -> dict:
        from ...loading import load_tokenizer
        from ...training.online import OnlineLearner
        from .streams import evaluate_stream

        settings = options.settings(model.config.to_dict())
        tokenizer = load_tokenizer(args.model, model, trust_remote_code=args.trust_remote_code)
        tokens, starts, chars_per_token = encode_corpus(documents, tokenizer)
        online = OnlineLearner(model, settings) if settings else None
        results = evaluate_stream(model, tokens, starts, options.block_size, progress=True,
                                  characters_per_token=chars_per_token, online=online)
        results.update(file=str(options.file), documents=len(documents),
                       characters=sum(len(d) for d in documents))
        if settings:
            results["online"] = {k: v for k, v in vars(settings).items() if k != "extra"}
        return results

    def evaluation_report(self, name, data, results, options, path) -> dict:
        print(f"{Path(results['file']).name}: perplexity {results['perplexity']:.3f}, {results['bits_per_token']:.4f} "
              f"bits per token, {results['bits_per_character']:.4f} bits per character over {results['tokens']:,} "
              "tokens")
        return results


TASK = TextTask()
