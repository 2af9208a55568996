"""Tokenizer builders. Each returns a `PreTrainedTokenizerFast` whose `save_pretrained` writes a standard
`tokenizer.json` that `AutoTokenizer.from_pretrained` loads with no custom code.

This folder is installed as `modeling_lstm_trm.tokenization` (a top-level `tokenization` package exists on PyPI).
"""

from .grid import build_cell_tokenizer, build_grid_tokenizer
from .text import (
    SPECIAL_TOKENS,
    TOKENIZER_KINDS,
    build_bpe_tokenizer,
    build_char_tokenizer,
    build_text_tokenizer,
    build_word_tokenizer,
)

__all__ = [
    "SPECIAL_TOKENS",
    "build_cell_tokenizer",
    "TOKENIZER_KINDS",
    "build_bpe_tokenizer",
    "build_char_tokenizer",
    "build_grid_tokenizer",
    "build_text_tokenizer",
    "build_word_tokenizer",
]
