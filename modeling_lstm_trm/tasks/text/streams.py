"""Token streams for truncated backpropagation through time with a carried state.

The tokenized corpus (documents joined, each ending with an end-of-document token) is cut into S contiguous streams,
S = per-device batch x number of processes; each stream is cut into chunks of T tokens. Items are ordered
time-major (item i is chunk i // S of stream i % S), so under accelerate's normal batch sharding (sequential
sampler, per-device batch b, batch j to process j % P) process p always receives streams [p*b, (p+1)*b), in time
order, and its carried state always continues the right rows. Every input position has a target: the last position
of a chunk predicts the first token of the next chunk, so within the used part of the corpus every token after the
first is a target exactly once per epoch (fewer than S*T tokens at the very end are left over).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Iterable

import numpy as np
import torch

WIKITEXT_TITLE = re.compile(r"^ = [^=].* = $")


def split_documents(lines: Iterable[str], boundary: str | Callable[[str], bool] | None = None) -> list[str]:
    """Group lines into documents. `boundary=None`: every non-empty line is a document; "wikitext": a line
    ` = Title = ` (single `=`) starts an article; a regex string or a predicate: matching lines start a document."""
    lines = list(lines)
    if boundary is None:
        return [line for line in lines if line.strip()]
    if boundary == "wikitext":
        starts = WIKITEXT_TITLE.match
    elif isinstance(boundary, str):
        starts = re.compile(boundary).match
    else:
        starts = boundary
    documents, current = [], []
    for line in lines:
        if starts(line.rstrip("\n")) and current:
            documents.append("".join(current))
            current = []
        current.append(line if line.endswith("\n") else line + "\n")
    if current:
        documents.append("".join(current))
    return [d for d in documents if d.strip()]


def concatenate(documents: list[list[int]], eos_token_id: int | None) -> tuple[np.ndarray, np.ndarray]:
    """One token array for the corpus and a bool array marking the first token of every document."""
    pieces, starts = [], []
    for doc in documents:
        tokens = list(doc) + ([eos_token_id] if eos_token_id is not None else [])
        if not tokens:
            continue
        flags = np.zeros(len(tokens), dtype=bool)
        flags[0] = True
        pieces.append(np.asarray(tokens, dtype=np.int64))
        starts.append(flags)
    if not pieces:
        raise ValueError("no tokens: the corpus is empty")
    return np.concatenate(pieces), np.concatenate(starts)


PIECE_CHARS = 1 << 16  # documents are tokenized in pieces of about this many characters, cut after a line break
BATCH_CHARS = 1 << 21  # and this many characters go to the tokenizer at once


def _pieces(document: str):
    """The document in pieces of at most about PIECE_CHARS characters, each ending with a line break where there is
    one, else just before a space (a line longer than a piece): the tokenizers here never join tokens across a line
    break, nor across the start of a space (word: spaces separate words; BPE: a word takes the space before it), so
    the tokens are those of the whole document."""
    begin = 0
    while begin < len(document):
        end = begin + PIECE_CHARS
        if end < len(document):
            cut = document.rfind("\n", begin, end)
            if cut > begin:
                end = cut + 1
            else:
                cut = document.rfind(" ", begin + 1, end)
                end = cut if cut > begin else end
        yield document[begin:end]
        begin = end


def encode_corpus(documents: list[str], tokenizer, progress: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """Tokenize documents (each followed by the tokenizer's end-of-document token) into one array; also returns the
    document-start flags and the characters per token (for bits per character).

    Memory stays near the size of the result (int32 tokens and a byte per token): documents go to the tokenizer in
    pieces, a few MB at a time, because a fast tokenizer's encoding of one long text costs hundreds of bytes per
    character. Warns when most tokens are the unknown token (a tokenizer that does not fit the text)."""
    from tqdm.auto import tqdm

    eos, unk = tokenizer.eos_token_id, getattr(tokenizer, "unk_token_id", None)
    dtype = np.int32 if len(tokenizer) < 2 ** 31 else np.int64
    arrays, start_offsets, batch, batch_chars, count, characters = [], [], [], 0, 0, 0

    def flush():
        nonlocal batch, batch_chars, count
        if batch:
            for ids in tokenizer(batch, add_special_tokens=False, return_attention_mask=False,
                                 split_special_tokens=True)["input_ids"]:  # "<eos>" in a text is text
                arrays.append(np.asarray(ids, dtype=dtype))
                count += len(ids)
        batch, batch_chars = [], 0

    total = sum(len(d) for d in documents)
    with tqdm(total=total, unit="char", unit_scale=True, desc="tokenizing", disable=not progress) as bar:
        for document in documents:
            flush()  # the token count is exact at a document's start
            start_offsets.append(count)
            for piece in _pieces(document):
                batch.append(piece)
                batch_chars += len(piece)
                if batch_chars >= BATCH_CHARS:
                    flush()
            flush()
            if eos is not None:
                arrays.append(np.asarray([eos], dtype=dtype))
                count += 1
            characters += len(document)
            bar.update(len(document))
    if not count:
        raise ValueError("no tokens: the corpus is empty")
    tokens = np.concatenate(arrays)
    starts = np.zeros(len(tokens), dtype=bool)
    offsets = np.asarray([o for o in start_offsets if o < len(tokens)], dtype=np.int64)
    starts[offsets] = True
    if unk is not None and np.count_nonzero(tokens == unk) > 0.5 * len(tokens):
        warnings.warn(f"{np.count_nonzero(tokens == unk) / len(tokens):.0%} of the tokens are the unknown token "
                      f"{tokenizer.unk_token!r}: the tokenizer does not fit this text, so the scores mean little",
                      stacklevel=2)
    return tokens, starts, characters / len(tokens)


def auto_boundary(source: str, hub_dataset: bool = False) -> str:
    """WikiText title lines for a WikiText source; else one document per row of a Hub dataset, and one document per
    text file."""
    return "wikitext" if "wikitext" in source.lower() else ("rows" if hub_dataset else "none")


def rows_to_documents(rows: list[str], boundary: str) -> list[str]:
    """`boundary`: "rows" (each non-empty row is a document), "none" (all rows are one document), "wikitext", or a
    regex matching the first line of a document."""
    if boundary == "rows":
        return split_documents(rows, None)
    if boundary == "none":
        text = "".join(rows)
        return [text] if text.strip() else []
    return split_documents(rows, boundary)


def load_text_documents(train_file: str | None = None, validation_file: str | None = None,
                        dataset_name: str | None = None, dataset_config_name: str | None = None,
                        text_column: str = "text", boundary: str | None = "auto",
                        validation_fraction: float = 0.1) -> tuple[list[str], list[str]]:
    """Training and validation documents through `datasets`: local text files (read whole, line breaks kept) or a
    Hub dataset (a local folder works too). `boundary`: "auto" (WikiText title lines for a WikiText source, else
    one document per row for a Hub dataset and one document per file for text files), "rows", "none" (the split is
    one document), "wikitext", or a regex matching the first line of a document. Without a validation split, the
    last `validation_fraction` of the training text (of its characters when it is one document, else of its
    documents) becomes the validation set: the char-rnn / nanoGPT convention for Tiny Shakespeare; 0: none."""
    from datasets import load_dataset

    if dataset_name:
        raw = load_dataset(dataset_name, dataset_config_name)
        splits = {"train": raw["train"][text_column][:],  # [:] reads the column at once (iterating it is slow)
                  "validation": raw["validation"][text_column][:] if "validation" in raw else None}
    elif train_file:
        files = {"train": train_file, **({"validation": validation_file} if validation_file else {})}
        raw = load_dataset("text", data_files=files, keep_linebreaks=True)
        splits = {"train": raw["train"]["text"][:],
                  "validation": raw["validation"]["text"][:] if validation_file else None}
    else:
        raise ValueError("give --train_file (text) or --dataset_name (a Hub dataset or a local dataset folder)")
    if boundary == "auto":
        boundary = auto_boundary(f"{dataset_name or ''} {train_file or ''}", hub_dataset=bool(dataset_name))
    train = rows_to_documents(splits["train"], boundary)
    if not train:
        raise ValueError("the training split has no text")
    if splits["validation"] is not None:
        return train, rows_to_documents(splits["validation"], boundary)
    if validation_fraction == 0:
        return train, []
    if not 0 < validation_fraction < 1:
        raise ValueError(f"no validation split: validation_fraction must be in [0, 1), got {validation_fraction}")
    if len(train) == 1:
        cut = int(len(train[0]) * (1 - validation_fraction))
        return [train[0][:cut]], [train[0][cut:]]
    cut = max(1, min(len(train) - 1, round(len(train) * (1 - validation_fraction))))
    return train[:cut], train[cut:]


class TokenStreams(torch.utils.data.Dataset):
    """Chunks of S parallel streams, time-major. Items: `input_ids` (T), `shift_labels` (T, the next tokens),
    `reset_mask` (T, True where a document starts), and `stream` / `chunk` indices. `characters_per_token` (if
    known) lets evaluation report bits per character."""

    def __init__(self, tokens: np.ndarray, doc_starts: np.ndarray, num_streams: int, chunk_len: int,
                 characters_per_token: float | None = None):
        tokens, doc_starts = np.asarray(tokens), np.asarray(doc_starts, dtype=bool)
        if not np.issubdtype(tokens.dtype, np.integer):
            raise ValueError(f"tokens must be integers, got {tokens.dtype}")
        if tokens.shape != doc_starts.shape or tokens.ndim != 1:
            raise ValueError("tokens and doc_starts must be 1-D arrays of the same length")
        if num_streams < 1 or chunk_len < 1:
            raise ValueError(f"num_streams and chunk_len must be positive, got {num_streams}, {chunk_len}")
        self.num_chunks = (len(tokens) - 1) // (num_streams * chunk_len)
        if self.num_chunks < 1:
            raise ValueError(f"{len(tokens)} tokens are too few for {num_streams} streams of chunks of {chunk_len}")
        self.tokens, self.doc_starts = tokens, doc_starts
        self.num_streams, self.chunk_len = num_streams, chunk_len
        self.stream_len = self.num_chunks * chunk_len
        self.characters_per_token = characters_per_token

    def __len__(self) -> int:
        return self.num_chunks * self.num_streams

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        chunk, stream = divmod(index, self.num_streams)
        start = stream * self.stream_len + chunk * self.chunk_len
        end = start + self.chunk_len
        return {
            "input_ids": torch.from_numpy(self.tokens[start:end].astype(np.int64)),
            "shift_labels": torch.from_numpy(self.tokens[start + 1:end + 1].astype(np.int64)),
            "reset_mask": torch.from_numpy(self.doc_starts[start:end]),
            "stream": stream,
            "chunk": chunk,
        }


class BoundaryAwareCollator:
    """Stacks stream chunks into a batch for `NestedLSTMForCausalLM`: `input_ids`, `labels` (the Transformers
    convention, shifted inside the model), `shift_labels` (the true next tokens, which the model prefers, so the last
    position of a chunk predicts the next chunk's first token), `attention_mask`, and `reset_mask` (True where a
    document starts inside the chunk, so the model zeroes that row's state right there)."""

    def __call__(self, items: list[dict]) -> dict:
        input_ids = torch.stack([item["input_ids"] for item in items])
        shift_labels = torch.stack([item["shift_labels"] for item in items])
        reset_mask = torch.stack([item["reset_mask"] for item in items]).bool()
        return {
            "input_ids": input_ids,
            "labels": input_ids.clone(),
            "shift_labels": shift_labels,
            "attention_mask": torch.ones_like(input_ids),
            "reset_mask": reset_mask,
        }


def language_model_metrics(loss: float, characters_per_token: float | None = None) -> dict[str, float]:
    """Perplexity and bits per token (and per character, when the characters per token are known) from a mean
    cross-entropy in nats per token."""
    metrics = {"perplexity": math.exp(min(loss, 700.0)), "bits_per_token": loss / math.log(2)}
    if characters_per_token:
        metrics["bits_per_character"] = metrics["bits_per_token"] / characters_per_token
    return metrics


def evaluate_stream(model, tokens: np.ndarray, doc_starts: np.ndarray, chunk_len: int = 512,
                    progress: bool = False, characters_per_token: float | None = None, online=None,
                    return_token_losses: bool = False) -> dict:
    """Negative log-likelihood of a whole corpus read as one stream, in order, with the state carried from chunk to
    chunk and reset at document starts: every token after the first is a target. Returns the mean loss (nats per
    token), `language_model_metrics`, the number of target tokens, the reading speed, and with `return_token_losses`
    each target's loss (`token_losses`, a numpy array).

    `online`: an `OnlineLearner` (training/online.py) whose copy of the model reads instead, scoring each chunk and
    then learning from it; with its `reset="document"`, chunks also end where documents start."""
    import time

    from tqdm.auto import tqdm

    reader = online.model if online is not None else model
    device = next(reader.parameters()).device
    inputs = torch.as_tensor(tokens[:-1], dtype=torch.long, device=device).view(1, -1)
    targets = torch.as_tensor(tokens[1:], dtype=torch.long, device=device).view(1, -1)
    resets = torch.as_tensor(doc_starts[:-1], device=device).view(1, -1)
    count = inputs.shape[1]
    starts = list(range(0, count, chunk_len))
    if online is not None and online.settings.reset == "document":  # each document read in chunks from its start
        documents = sorted({0, *np.flatnonzero(np.asarray(doc_starts[:-1])).tolist()}) + [count]
        starts = [s for a, b in zip(documents, documents[1:]) for s in range(a, b, chunk_len)]
    want_surprise = return_token_losses or (online is not None and online.wants_surprise)
    state, total, token_losses = None, 0.0, []
    began = time.perf_counter()
    for start, end in tqdm(list(zip(starts, starts[1:] + [count])), desc="evaluating", disable=not progress,
                           unit="chunk"):
        if online is not None and bool(resets[0, start]):
            online.start_document()
        with torch.set_grad_enabled(online is not None):
            out = reader(input_ids=inputs[:, start:end], shift_labels=targets[:, start:end],
                         reset_mask=resets[:, start:end], cache=state, use_cache=True,
                         compute_surprise=want_surprise)
        total += float(out.loss.detach()) * (end - start)
        if return_token_losses:
            token_losses.append(out.surprise.reshape(-1).cpu())
        if online is not None:
            online.learn(out.loss, out.surprise if online.wants_surprise else None, end - start)
            state = out.cache.detach()
        else:
            state = out.cache
    loss = total / count
    seconds = time.perf_counter() - began
    results = {"loss": loss, **language_model_metrics(loss, characters_per_token), "tokens": count,
               "tokens_per_second": count / max(seconds, 1e-9)}
    if return_token_losses:
        results["token_losses"] = torch.cat(token_losses).numpy()
    return results


@torch.no_grad()
def evaluate_token_streams(model, streams: TokenStreams) -> dict[str, float]:
    """Mean negative log-likelihood of a `TokenStreams` dataset read as during training: its S streams side by side,
    chunk after chunk, the state carried from chunk to chunk and reset at document starts. Returns the loss (nats
    per token) and `language_model_metrics`. This is the validation of `StatefulTrainer` for the nested LM."""
    device = next(model.parameters()).device
    collate, state, total, count = BoundaryAwareCollator(), None, 0.0, 0
    for chunk in range(streams.num_chunks):
        batch = collate([streams[chunk * streams.num_streams + s] for s in range(streams.num_streams)])
        targets = batch["shift_labels"].to(device)
        out = model(input_ids=batch["input_ids"].to(device), shift_labels=targets,
                    reset_mask=batch["reset_mask"].to(device), cache=state, use_cache=True)
        state = out.cache
        tokens = int((targets != -100).sum())
        total, count = total + float(out.loss) * tokens, count + tokens
    loss = total / max(count, 1)
    return {"loss": loss, **language_model_metrics(loss, streams.characters_per_token)}
