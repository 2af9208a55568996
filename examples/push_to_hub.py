"""Share a trained model on the Hub: one command, one commit.

    python examples/push_to_hub.py --checkpoint outputs/nested-lm --repo-id your-name/nested-lm-shakespeare
    python examples/push_to_hub.py --checkpoint outputs/lstm-trm-sudoku-6x6 --repo-id your-name/lstm-trm-6x6 --private
    python examples/push_to_hub.py --checkpoint outputs/nested-lm --repo-id your-name/x --dry-run hub_repo/

The repository holds the safetensors weights, `config.json` with `auto_map`, the configuration and modeling files
(so `AutoModel.from_pretrained(repo, trust_remote_code=True)` works with no package installed), the tokenizer, the
generation config (language model), the training plot, the run's JSON files and the model card as README.md, filled
from the run. `--dry-run OUT` writes exactly that repository to the folder OUT and uploads nothing.
"""

from __future__ import annotations

import argparse

from modeling_lstm_trm.cli import ArgumentParser, run_cli, task_card_of_older_folder
from modeling_lstm_trm.hub import HubError, assemble_repository, check_repo_id, push_checkpoint


def main(argv: list[str] | None = None) -> str:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a folder written by examples/train.py")
    parser.add_argument("--repo-id", required=True, help="USER/NAME on the Hub")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--revision", help="a branch to commit to (created if missing; default main)")
    parser.add_argument("--commit-message", help="default: 'Upload <folder> with lstm-trm'")
    parser.add_argument("--dry-run", metavar="OUT", help="write the repository into OUT instead of uploading it")
    args = parser.parse_args(argv)
    try:
        check_repo_id(args.repo_id)
        task_card = task_card_of_older_folder(args.checkpoint)
        if args.dry_run:
            files = assemble_repository(args.checkpoint, args.dry_run, args.repo_id, task_card)
            print(f"Wrote the repository of {args.repo_id} to {args.dry_run} ({len(files)} files: {', '.join(files)})")
            return args.dry_run
        url = push_checkpoint(args.checkpoint, args.repo_id, private=args.private, revision=args.revision,
                              commit_message=args.commit_message, task_card=task_card)
    except HubError as error:
        parser.exit(2, f"{parser.prog}: error: {error}\n")
    print(f"Pushed {args.checkpoint} to https://huggingface.co/{args.repo_id} in one commit: {url}")
    return url


if __name__ == "__main__":
    run_cli(main)
