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

import re
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


class TokenStreams(torch.utils.data.Dataset):
    """Chunks of S parallel streams, time-major. Items: `input_ids` (T), `shift_labels` (T, the next tokens),
    `reset_mask` (T, True where a document starts), and `stream` / `chunk` indices."""

    def __init__(self, tokens: np.ndarray, doc_starts: np.ndarray, num_streams: int, chunk_len: int):
        tokens, doc_starts = np.asarray(tokens, dtype=np.int64), np.asarray(doc_starts, dtype=bool)
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

    def __len__(self) -> int:
        return self.num_chunks * self.num_streams

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        chunk, stream = divmod(index, self.num_streams)
        start = stream * self.stream_len + chunk * self.chunk_len
        end = start + self.chunk_len
        return {
            "input_ids": torch.from_numpy(self.tokens[start:end]),
            "shift_labels": torch.from_numpy(self.tokens[start + 1:end + 1]),
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
