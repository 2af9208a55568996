"""Grid tokenizers: one token per cell. Sudoku's (`0` or `.` a blank, `1`..`N` the digits, so a token's id is the
cell's value), and any task's from its vocabulary (`build_cell_tokenizer`; each task owns its characters)."""

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


def build_cell_tokenizer(tokens, cells: int) -> PreTrainedTokenizerFast:
    """A tokenizer for grids of `cells` cells, one token per character: token k is `tokens[k]` (a string of
    characters, or a sequence whose first entry may be a named padding token such as "[PAD]"); token 0 is the padding,
    anything else is `[UNK]` (added last). Line breaks are dropped, so a grid may be written row by row."""
    vocab = {token: k for k, token in enumerate(tokens)}
    tokenizer = Tokenizer(WordLevel({**vocab, "[UNK]": len(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Replace(Regex(r"[\r\n]"), "")
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token=tokens[0],
                                   model_max_length=cells)
