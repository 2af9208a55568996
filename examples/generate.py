"""Generate text from a saved nested LM, streamed to the terminal as it is produced.

    python examples/generate.py --model outputs/nested-lm --prompt "ROMEO:" --max_new_tokens 300

The model reads the prompt once and then carries its state: each new token costs the same, however long the text.
Sampling flags are `generate()`'s own (temperature, top_k, top_p); --greedy turns sampling off. With
`--online_levels` (as in evaluate_model.py) a copy of the model first learns from the prompt, read as a stream in
chunks of --block_size tokens, then generates; the model folder is never written.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from transformers import TextStreamer, set_seed

from modeling_lstm_trm.cli import ArgumentParserForTraining, run_cli
from modeling_lstm_trm.loading import load_model, load_tokenizer, read_config
from modeling_lstm_trm.tasks.text.streams import evaluate_stream
from modeling_lstm_trm.training.online import OnlineArguments, OnlineLearner


def main(argv: list[str] | None = None) -> str:
    parser = ArgumentParserForTraining([OnlineArguments], description=__doc__,
                                       formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a folder saved by examples/train.py --task lm (or a Hub id)")
    parser.add_argument("--prompt", default="", help="text to continue (default: start a new document)")
    parser.add_argument("--max_new_tokens", type=int, default=200)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top_k", type=int, default=50)
    parser.add_argument("--top_p", type=float, default=1.0)
    parser.add_argument("--greedy", action="store_true", help="pick the most likely token every time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trust_remote_code", action="store_true",
                        help="allow a model folder of another model type to run its own code")
    parser.add_argument("--block_size", type=int, default=64, help="chunk length when learning from the prompt")
    online, args = parser.parse_args_into_dataclasses(args=argv)
    if args.max_new_tokens < 1:
        parser.error("--max_new_tokens must be at least 1")
    if not args.greedy and (args.temperature <= 0 or args.top_k < 0 or not 0 < args.top_p <= 1):
        parser.error("sampling needs --temperature > 0, --top_k >= 0 and 0 < --top_p <= 1 (or pass --greedy)")
    if args.block_size < 1:
        parser.error("--block_size must be at least 1")
    try:
        settings = online.settings(read_config(args.model))
    except ValueError as error:
        parser.error(str(error))

    set_seed(args.seed)
    model = load_model(args.model, causal_lm=True, trust_remote_code=args.trust_remote_code)
    tokenizer = load_tokenizer(args.model, model, trust_remote_code=args.trust_remote_code)
    ids = prompt_ids(tokenizer, args.prompt)
    if not ids:  # an empty prompt starts a document: the token that ends one is what precedes a start in training
        ids = [tokenizer.eos_token_id]
    if settings and len(ids) > 1:
        model = learn_from_prompt(model, ids, settings, args.block_size)
    input_ids = torch.tensor([ids])
    streamer = TextStreamer(tokenizer, skip_prompt=False, skip_special_tokens=True)
    sampling = {} if args.greedy else {"temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p}
    with torch.no_grad():
        output = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), do_sample=not args.greedy,
                                max_new_tokens=args.max_new_tokens, streamer=streamer,
                                pad_token_id=tokenizer.pad_token_id, **sampling)
    print()
    return tokenizer.decode(output[0], skip_special_tokens=True)


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """The prompt's token ids, "<eos>" and the like read as text; a notice names what the tokenizer does not know
    (read as the unknown token, which the printed text leaves out)."""
    encoded = tokenizer(prompt, add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True)
    unknown = sorted({prompt[begin:end] for token, (begin, end) in zip(encoded["input_ids"], encoded["offset_mapping"])
                      if token == tokenizer.unk_token_id and tokenizer.unk_token_id is not None})
    if unknown:
        print(f"notice: the model's tokenizer does not know {', '.join(map(repr, unknown[:10]))} in the prompt: read "
              f"as {tokenizer.unk_token}, which the text below leaves out", file=sys.stderr, flush=True)
    return encoded["input_ids"]


def learn_from_prompt(model, ids: list[int], settings, block_size: int):
    """A copy of the model that has read the prompt as a stream, learning as it went; it then generates."""
    learner = OnlineLearner(model, settings)
    starts = np.zeros(len(ids), dtype=bool)
    starts[0] = True
    read = evaluate_stream(model, np.array(ids), starts, block_size, online=learner)
    print(f"[learned from the prompt: {read['tokens']} targets, loss {read['loss']:.3f} while reading]", flush=True)
    return learner.model


if __name__ == "__main__":
    run_cli(main)
