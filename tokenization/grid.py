"""The Sudoku grid tokenizer: one token per cell, `0` (or `.`) for a blank and `1`..`N` for the digits, so a token's
id is the cell's value and a grid of N x N cells is N * N tokens."""

from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast


def build_grid_tokenizer(size: int) -> PreTrainedTokenizerFast:
    """A tokenizer for N x N grids (N = `size`, at most 9). Text such as `"1.3..."` or `"1 0 3 ..."` becomes one
    id per cell; whitespace and `//` comments are dropped."""
    if size not in (4, 6, 9):
        raise ValueError(f"grid size must be 4, 6 or 9, got {size}")
    vocab = {str(d): d for d in range(size + 1)}
    vocab["[UNK]"] = size + 1  # never a model input: the model rejects ids >= size + 1 with a clear error
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex("//.*"), ""),
        normalizers.Replace(".", "0"),
        normalizers.Replace(Regex(r"\s+"), ""),
    ])
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="0", model_max_length=size * size,
    )


MAZE_CHARSET = "# SGo"  # TRM's maze charset; ids 1..5 in this order, 0 is padding


def _cell_tokenizer(vocab: dict[str, int], pad_token: str, cells: int) -> PreTrainedTokenizerFast:
    """One token per character of `vocab` (anything else `[UNK]`, added last); line breaks are dropped, so a grid may
    be written row by row."""
    tokenizer = Tokenizer(WordLevel({**vocab, "[UNK]": len(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Replace(Regex(r"[\r\n]"), "")
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token=pad_token,
                                   model_max_length=cells)


def build_maze_tokenizer(size: int) -> PreTrainedTokenizerFast:
    """A tokenizer for N x N mazes: `#` wall 1, space (open) 2, `S` 3, `G` 4, `o` (path) 5, as TRM numbers them.
    Line breaks are dropped, so a maze may be written row by row; every other character is one cell."""
    vocab = {"[PAD]": 0, **{ch: k + 1 for k, ch in enumerate(MAZE_CHARSET)}}
    return _cell_tokenizer(vocab, "[PAD]", size * size)


ARC_CHARSET = ".|0123456789"  # TRM's ARC tokens: padding 0, end-of-grid marker 1, colours 0-9 as 2-11


def build_arc_tokenizer(side: int) -> PreTrainedTokenizerFast:
    """A tokenizer for ARC canvases of `side` x `side` cells: `.` padding, `|` the end-of-grid marker, digits the
    colours (ids 0, 1, 2-11, as TRM numbers them). Line breaks are dropped, so a canvas may be written row by row."""
    return _cell_tokenizer({ch: k for k, ch in enumerate(ARC_CHARSET)}, ".", side * side)
