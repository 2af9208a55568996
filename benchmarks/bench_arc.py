"""LSTM-TRM on ARC-AGI (issue 15), what a CPU can show.

`--only cost`: what TRM's ARC-AGI-1 data costs here. The 800 tasks of ARC-AGI-1 (training and evaluation) with
--num_augmentations versions each: seconds and peak memory to build the versions, the identifiers and training pairs,
how fast the on-the-fly dataset draws encoded, translated items, and what would be on disk: nothing for the dataset
(computed on the fly; a pre-encoded copy, as TRM writes, would weigh the figure printed), `arc_versions.json`, and the
puzzle-embedding table (float32, its EMA copy in checkpoints, no optimizer state).

`--only smoke`: the smoke preset (`examples/train.py --task arc --preset smoke`), its demonstration-pair accuracy
against training time (`benchmarks/figures/arc_smoke_curve.png`) beside a baseline that copies the input, and its
evaluation output (pass@1, pass@2, the time it took).

    python benchmarks/bench_arc.py --data_dir ../shared/data/arc --out runs/arc
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cost(args) -> dict:
    from modeling_lstm_trm.tasks.arc.arc_dataset import ArcTrainingPairs, build_versions, save_versions, training_pairs
    from modeling_lstm_trm.tasks.arc.task import ArcArguments, load_tasks

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    tasks, test_ids, _ = load_tasks(ArcArguments(data_dir=args.data_dir, train_splits=["training", "evaluation"],
                                                 test_split="evaluation"), is_main=False)
    loaded = time.perf_counter()
    versions = build_versions(tasks, args.num_augmentations, seed=0)
    built = time.perf_counter()
    pairs = training_pairs(tasks, held_out=set(test_ids))
    examples = sum(len(pairs[t]) * len(versions.augmentations[t]) for t in tasks)
    dataset = ArcTrainingPairs(versions, pairs, side=30, length=10**9)
    draw_start = time.perf_counter()
    for i in range(args.draws):
        dataset[i]
    draw_seconds = time.perf_counter() - draw_start
    Path(args.out).mkdir(parents=True, exist_ok=True)
    save_versions(versions, args.out, 30)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    table = versions.num_identifiers * 512 * 4
    row = {"tasks": len(tasks), "num_augmentations": args.num_augmentations,
           "puzzle_identifiers": versions.num_identifiers, "versions_per_task_mean": round(
               (versions.num_identifiers - 1) / len(tasks), 1),
           "load_seconds": round(loaded - started, 2), "augment_seconds": round(built - loaded, 1),
           "peak_rss_mib": round(rss_after, 1), "rss_growth_mib": round(rss_after - rss_before, 1),
           "training_examples_all_versions": examples, "pre_encoded_dataset_gib": round(examples * 2 * 900 / 2**30, 2),
           "items_per_second_on_the_fly": round(args.draws / draw_seconds),
           "versions_file_mib": round((Path(args.out) / "arc_versions.json").stat().st_size / 2**20, 1),
           "puzzle_embedding_mib_float32": round(table / 2**20), "checkpoint_embedding_mib_with_ema": round(
               2 * table / 2**20)}
    print(json.dumps(row, indent=2))
    (Path(args.out) / "cost.json").write_text(json.dumps(row, indent=2))
    return row


def copy_baseline(data_dir: str, preset_flags: dict) -> float:
    """Cell accuracy, on the smoke tasks' demonstration pairs, of answering with the input (where shapes allow)."""
    from modeling_lstm_trm.tasks.arc.arc_dataset import encode_pair
    from modeling_lstm_trm.tasks.arc.task import ArcArguments, load_tasks

    args = ArcArguments(data_dir=data_dir, train_splits=preset_flags["train_splits"],
                        test_split=preset_flags["test_split"], max_tasks=preset_flags["max_tasks"],
                        canvas_size=preset_flags["canvas_size"])
    tasks, test_ids, _ = load_tasks(args, is_main=False)
    right = total = 0
    for t in test_ids:
        for question, answer in tasks[t].train:
            x, y = encode_pair(question, answer, args.canvas_size)
            known = y >= 0
            right += int(((x == y) & known).sum())
            total += int(known.sum())
    return right / total


def smoke(args) -> None:
    from modeling_lstm_trm.tasks.arc.task import ArcArguments, ModelArguments, preset_defaults

    out = Path(args.out) / "smoke"
    command = [sys.executable, str(ROOT / "examples" / "train.py"), "--task", "arc", "--preset", "smoke",
               "--data_dir", args.data_dir, "--output_dir", str(out), "--overwrite_output_dir", "--disable_tqdm",
               "true", *args.train_args]
    started = time.monotonic()
    subprocess.run(command, check=True, env=os.environ)
    minutes = (time.monotonic() - started) / 60
    run = json.loads((out / "training_run.json").read_text())
    results = json.loads((out / "eval_results.json").read_text())
    baseline = copy_baseline(args.data_dir, preset_defaults(ArcArguments(), ModelArguments()))
    curve = [(e["eval_minutes"], e["eval_demo_exact_accuracy"], e["eval_demo_cell_accuracy"], e["eval_pass@2"])
             for e in run["evaluations"] if "eval_demo_exact_accuracy" in e]
    print("\n| minutes | demonstration pairs exact | cells | pass@2 |\n|---|---|---|---|")
    for minute, exact, cells, pass2 in curve:
        print(f"| {minute} | {exact:.3f} | {cells:.3f} | {pass2:.3f} |")
    held = results["held_out"]
    print(f"\nfinal (EMA): demonstration pairs exact {held['demo_exact_accuracy']:.3f}, cells "
          f"{held['demo_cell_accuracy']:.3f} (copying the input: {baseline:.3f}); pass@1 {held['pass@1']:.3f}, "
          f"pass@2 {held['pass@2']:.3f} on {held['tasks']} tasks; {results['train_steps']} steps, whole job "
          f"{minutes:.1f} minutes")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    minutes_axis = [c[0] for c in curve]
    ax.plot(minutes_axis, [c[2] for c in curve], "o-", label="demonstration pairs, cells (EMA)")
    ax.plot(minutes_axis, [c[1] for c in curve], "o-", label="demonstration pairs, exact (EMA)")
    ax.plot(minutes_axis, [c[3] for c in curve], "o-", label="test inputs, pass@2 (EMA)")
    ax.axhline(baseline, color="grey", linestyle="--", label="copy the input (cells)")
    ax.set_xlabel("minutes of training (2-core CPU)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"ARC smoke preset ({held['tasks']} tasks)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    figure = ROOT / "benchmarks" / "figures" / "arc_smoke_curve.png"
    fig.savefig(figure, dpi=110)
    print(f"curve drawn in {figure}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="folder with the ARC Prize files")
    parser.add_argument("--out", required=True)
    parser.add_argument("--only", choices=["cost", "smoke"])
    parser.add_argument("--num_augmentations", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=5000, help="dataset items drawn to time the on-the-fly encoding")
    parser.add_argument("train_args", nargs="*", help="after --: more flags for the smoke run")
    args = parser.parse_args()
    if args.only in (None, "cost"):
        cost(args)
    if args.only in (None, "smoke"):
        smoke(args)


if __name__ == "__main__":
    main()
