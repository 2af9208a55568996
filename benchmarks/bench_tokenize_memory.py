"""Peak memory and time of preparing a large text for LM training (issue 13): read through `datasets`, train the
tokenizer, tokenize into the token array that `TokenStreams` reads. The target is at most 2 GB for a 100 MB file.

    python benchmarks/bench_tokenize_memory.py                      # Tiny Shakespeare repeated to 100 MB, char
    python benchmarks/bench_tokenize_memory.py --megabytes 100 --tokenizer word --file my_corpus.txt
"""

import argparse
import resource
import tempfile
import time
from pathlib import Path

from modeling_lstm_trm.tasks.text.streams import TokenStreams, encode_corpus, load_text_documents
from modeling_lstm_trm.tokenization import build_text_tokenizer

SHAKESPEARE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "tinyshakespeare" / "input.txt"
TARGET_GB = 2.0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", default=str(SHAKESPEARE), help="a text file, repeated up to --megabytes")
    parser.add_argument("--megabytes", type=float, default=100)
    parser.add_argument("--tokenizer", default="char", choices=["char", "word", "bpe"])
    args = parser.parse_args()
    text = Path(args.file).read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text(text * max(1, round(args.megabytes * 1e6 / len(text.encode()))), encoding="utf-8")
        del text
        size_mb = corpus.stat().st_size / 1e6
        start = time.perf_counter()
        train, _ = load_text_documents(str(corpus), validation_fraction=0.1)
        loaded = time.perf_counter()
        tokenizer = build_text_tokenizer(args.tokenizer, train)
        built = time.perf_counter()
        tokens, starts, chars_per_token = encode_corpus(train, tokenizer, progress=True)
        TokenStreams(tokens, starts, 32, 128, chars_per_token)
        done = time.perf_counter()
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux
    print(f"{size_mb:.0f} MB of text, {args.tokenizer} tokenizer: {len(tokens):,} tokens; read {loaded - start:.1f} s, "
          f"tokenizer {built - loaded:.1f} s, tokenize {done - built:.1f} s; peak memory {peak_gb:.2f} GB "
          f"({peak_gb / TARGET_GB:.2f} of the {TARGET_GB:.0f} GB target)")


if __name__ == "__main__":
    main()
