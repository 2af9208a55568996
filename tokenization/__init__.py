"""Tokenizer builders. Each returns a `PreTrainedTokenizerFast` whose `save_pretrained` writes a standard
`tokenizer.json` that `AutoTokenizer.from_pretrained` loads with no custom code.

This folder is installed as `modeling_lstm_trm.tokenization` (a top-level `tokenization` package exists on PyPI).
"""

from .grid import build_grid_tokenizer

__all__ = ["build_grid_tokenizer"]
