"""Text tokenizers for the nested LM, trained on the training split: character-level, word-level and byte-level BPE.

Each builder returns a `PreTrainedTokenizerFast` with `<bos>`, `<eos>`, `<pad>` and `<unk>` set; `save_pretrained`
writes a standard `tokenizer.json` that `AutoTokenizer.from_pretrained` loads with no custom code. The LM pipeline
ends every document with `<eos>`, so a reset of the carried state always follows an end-of-document token.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"}
TOKENIZER_KINDS = ("char", "word", "bpe")


def _wrap(tokenizer: Tokenizer, model_max_length: int | None) -> PreTrainedTokenizerFast:
    kwargs = {"model_max_length": model_max_length} if model_max_length else {}
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, clean_up_tokenization_spaces=False, **SPECIAL_TOKENS,
                                   **kwargs)


def _special_vocab() -> dict[str, int]:
    return {token: i for i, token in enumerate(SPECIAL_TOKENS.values())}


def build_char_tokenizer(texts: Iterable[str], model_max_length: int | None = None) -> PreTrainedTokenizerFast:
    """One token per character seen in `texts` (newlines and spaces included); unseen characters become `<unk>`.
    Decoding joins the characters back exactly."""
    vocab = _special_vocab()
    for char in sorted(set().union(*(set(t) for t in texts))):
        vocab.setdefault(char, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=SPECIAL_TOKENS["unk_token"]))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    return _wrap(tokenizer, model_max_length)


def build_word_tokenizer(texts: Iterable[str], min_frequency: int = 1, max_vocab_size: int | None = None,
                         model_max_length: int | None = None) -> PreTrainedTokenizerFast:
    """Space-separated words, with the newline a token of its own so line structure survives (WikiText's `<eos>`);
    words rarer than `min_frequency` (or beyond `max_vocab_size`) become `<unk>`, which is also WikiText's own
    `<unk>`. Decoding joins tokens with single spaces."""
    counts = Counter()
    for text in texts:
        counts.update(text.replace("\n", " \n ").split(" "))
    counts.pop("", None)
    vocab = _special_vocab()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    for word, count in ranked:
        if count < min_frequency or (max_vocab_size and len(vocab) >= max_vocab_size):
            break
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=SPECIAL_TOKENS["unk_token"]))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(" +"), behavior="removed"),
        pre_tokenizers.Split("\n", behavior="isolated"),
    ])
    return _wrap(tokenizer, model_max_length)  # decoding joins tokens with single spaces


def build_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 4096,
                        model_max_length: int | None = None) -> PreTrainedTokenizerFast:
    """Byte-level BPE (GPT-2's byte alphabet, so no text is ever `<unk>`) trained on `texts`."""
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS.values()),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return _wrap(tokenizer, model_max_length)


def build_text_tokenizer(kind: str, texts: list[str], **kwargs) -> PreTrainedTokenizerFast:
    """`kind`: char, word or bpe."""
    builders = {"char": build_char_tokenizer, "word": build_word_tokenizer, "bpe": build_bpe_tokenizer}
    if kind not in builders:
        raise ValueError(f"tokenizer must be one of {TOKENIZER_KINDS}, got {kind!r}")
    return builders[kind](texts, **kwargs)
