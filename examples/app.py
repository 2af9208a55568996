"""Watch a recursive model think: a web demo of LSTM-TRM's supervision steps (and of the nested LM's carried state).

    pip install -e ".[demo]"
    python examples/app.py --model outputs/lstm-trm-sudoku-6x6          # http://127.0.0.1:7860
    python examples/app.py --model outputs/lstm-trm-maze-cpu --port 7861
    python examples/app.py --model outputs/nested-lm-shakespeare         # a chat whose state carries across turns

Puzzle models: type a puzzle in the task's text (a Sudoku line, 0 or . a blank; a maze's rows of `# SGo`) or
generate one, press Solve, and step through every supervision step: the grid with the cells that changed at that
step marked, the Q head's halting probability per step, the final answer and whether it passes the task's check.
Everything shown comes from `pipeline("puzzle-solving")`. Language models: each reply is generated token by token
into the page, and the LSTM state after it carries into the next turn (only the new message is read).

The server listens on 127.0.0.1 unless `--host` (or `GRADIO_SERVER_NAME`, which a Space sets) says otherwise. As a
Hugging Face Space: put this file as `app.py` beside a `requirements.txt` naming `lstm-trm` (this repository) and
`gradio`, with the model as a Hub id in `LSTM_TRM_MODEL` (the Space's README front matter: `sdk: gradio`,
`app_file: app.py`).
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os

import torch

from modeling_lstm_trm.cli import ArgumentParser, run_cli
from modeling_lstm_trm.loading import LoadError, load_model, load_tokenizer, read_config

CELL_STYLE = ("table.grid{border-collapse:collapse;font:18px monospace}"
              "table.grid td{width:26px;height:26px;text-align:center;border:1px solid #bbb}"
              "td.given{font-weight:bold}td.changed{background:#ffe680}td.wall{background:#333}"
              "td.path{background:#8fb8ef}td.start{background:#2f9f5f}td.goal{background:#cf3f3f}")


class Demo:
    """The model the page talks to: a puzzle pipeline, or a language model with its tokenizer."""

    def __init__(self, name: str, trust_remote_code: bool = False):
        self.name = name
        config = read_config(name)
        self.task = config.get("task")
        self.kind = "lm" if config.get("model_type") == "nested_lstm" else "puzzle"
        if self.kind == "puzzle":
            from transformers import pipeline

            model = load_model(name, trust_remote_code=trust_remote_code)
            tokenizer = load_tokenizer(name)  # unchecked: a grid tokenizer's [UNK] is beyond the model, on purpose
            self.solver = pipeline("puzzle-solving", model=model, tokenizer=tokenizer)
        else:
            self.model = load_model(name, causal_lm=True, trust_remote_code=trust_remote_code)
            self.tokenizer = load_tokenizer(name, self.model)

    # ----- puzzles
    def generate(self, seed: int) -> str:
        """A puzzle of the model's task (one of this package's), its rows on lines of their own."""
        from modeling_lstm_trm.tasks import TASK_OF_MODEL_TYPE, get_task

        task = get_task(self.task or TASK_OF_MODEL_TYPE["lstm_trm"], import_module=False)
        side = math.isqrt(self.solver.model.config.seq_len)
        text = task.to_text(task.example_puzzles(side, 1, seed).questions[0])
        return "\n".join(text[r * side:(r + 1) * side] for r in range(side))

    def solve(self, puzzle: str, max_steps: int | None = None) -> dict:
        return self.solver(puzzle, return_trace=True, max_steps=max_steps)

    def as_read(self, puzzle: str) -> str:
        """The puzzle as the model reads it: one character per cell, in the tokenizer's characters."""
        return self.solver.to_text(self.solver.tokenizer(puzzle, add_special_tokens=False)["input_ids"])

    # ----- the language model: one turn, the state carried in and out
    @torch.no_grad()
    def reply(self, message: str, state, max_new_tokens: int = 120, temperature: float = 0.8, seed: int = 0):
        """Read the message on top of the carried state, then generate token by token (yielding the text so far
        and the state); the state after the reply is what the next turn starts from."""
        generator = torch.Generator().manual_seed(seed)
        ids = self.tokenizer(message + "\n", add_special_tokens=False, split_special_tokens=True)["input_ids"]
        out = self.model(torch.tensor([ids or [self.tokenizer.eos_token_id]]), cache=state)
        state, text, new = out.cache, "", []
        for _ in range(max_new_tokens):
            probs = torch.softmax(out.logits[0, -1] / temperature, -1)
            token = int(torch.multinomial(probs, 1, generator=generator))
            if token == self.tokenizer.eos_token_id:
                break
            new.append(token)
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            out = self.model(torch.tensor([[token]]), cache=state)
            state = out.cache
            yield text, state
        yield text, state


def grid_html(question: str, answer: str, previous: str, side: int, task: str | None) -> str:
    """The grid after a step as an HTML table: givens bold, the cells that changed at this step marked; a maze in
    its colours."""
    rows = []
    for r in range(side):
        cells = []
        for c in range(side):
            k = r * side + c
            classes = ["changed"] if answer[k] != previous[k] else []
            if task == "maze":
                classes += [{"#": "wall", "o": "path", "S": "start", "G": "goal"}.get(answer[k], "")]
            elif question[k] != answer[k] or question[k] not in ".0":  # a given: the puzzle's own, kept
                classes.append("given" if question[k] == answer[k] else "")
            shown = "" if task == "maze" else html.escape(answer[k])
            cells.append(f'<td class="{" ".join(c for c in classes if c)}" data-cell="{k}">{shown}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<style>{CELL_STYLE}</style><table class="grid" id="grid-table">{"".join(rows)}</table>'


def build_app(demo: Demo):
    import gradio as gr
    import pandas as pd

    def solve(puzzle: str):
        try:
            result = demo.solve(puzzle)
        except (ValueError, LoadError) as error:
            return (f"**Not solved:** {html.escape(str(error))}", "", "", "", "", None, gr.update(visible=False),
                    "", "", None)
        question, side = demo.as_read(puzzle), len(result["grid"])
        rows = "\n".join("".join(row) for row in result["grid"])
        verdict = {True: "passes the task's check", False: "does NOT pass the task's check",
                   None: "no check for this task"}[result["valid"]]
        halting = ", ".join(f"{k + 1}: {p:.4f}" for k, p in enumerate(result["halting_probability"]))
        plot = pd.DataFrame({"supervision step": list(range(1, result["steps"] + 1)),
                             "halting probability": result["halting_probability"]})
        record = {"question": question, "trace": result["trace"], "side": side}
        step = gr.update(visible=True, minimum=1, maximum=result["steps"], value=result["steps"], step=1)
        shown = show_step(result["steps"], record)
        return ("", rows, verdict, str(result["steps"]), halting, plot, step, *shown, record)

    def show_step(step, record):
        if not record:
            return "", ""
        trace, k = record["trace"], int(step) - 1
        previous = record["question"] if k == 0 else trace[k - 1]
        return grid_html(record["question"], trace[k], previous, record["side"], demo.task), trace[k]

    with gr.Blocks(title="lstm-trm: watch it think") as app:
        gr.Markdown(f"## Watch it think\nModel: `{demo.name}` ({demo.task or demo.kind})")
        if demo.kind == "puzzle":
            record = gr.State(None)
            with gr.Row():
                puzzle = gr.Textbox(label="puzzle", lines=4, elem_id="puzzle",
                                    placeholder="the task's text: a Sudoku line (0 or . a blank), a maze's rows")
                with gr.Column():
                    generate = gr.Button("Generate a puzzle", elem_id="generate")
                    seed = gr.Number(value=0, precision=0, label="seed", elem_id="seed")
                    solve_button = gr.Button("Solve", variant="primary", elem_id="solve")
            message = gr.Markdown(elem_id="message")
            with gr.Row():
                answer = gr.Textbox(label="answer", lines=4, elem_id="answer")
                verdict = gr.Textbox(label="check", elem_id="verdict")
                steps = gr.Textbox(label="supervision steps used", elem_id="steps")
            with gr.Row():
                with gr.Column():
                    grid = gr.HTML(elem_id="grid")
                    step = gr.Slider(1, 2, value=1, step=1, label="supervision step (marked: the cells that "
                                     "changed at this step)", visible=False, elem_id="step")
                    with gr.Row():
                        previous = gr.Button("previous step", elem_id="previous")
                        following = gr.Button("next step", elem_id="next")
                    step_answer = gr.Textbox(label="the answer after this step", elem_id="step_answer")
                with gr.Column():
                    plot = gr.LinePlot(x="supervision step", y="halting probability", y_lim=[0, 1],
                                       label="the Q head's halting probability", elem_id="halting_plot")
                    halting = gr.Textbox(label="halting probability per step", elem_id="halting")

            def generate_puzzle(seed_value):
                try:
                    return demo.generate(int(seed_value or 0)), ""
                except (ValueError, NotImplementedError) as error:  # a task of the user's: no generator named here
                    return "", f"**No puzzle generated:** {html.escape(str(error))}"

            generate.click(generate_puzzle, [seed], [puzzle, message])
            solve_button.click(solve, [puzzle], [message, answer, verdict, steps, halting, plot, step, grid,
                                                 step_answer, record])
            step.change(show_step, [step, record], [grid, step_answer])
            previous.click(lambda s: max(1, int(s) - 1), [step], [step])
            following.click(lambda s, r: min(len(r["trace"]) if r else 1, int(s) + 1), [step, record], [step])
        else:
            chat = gr.Chatbot(label="the nested LM", elem_id="chat")
            state = gr.State(None)
            text = gr.Textbox(label="message", elem_id="chat_message")

            def respond(message_text, history, carried):
                history = (history or []) + [{"role": "user", "content": message_text},
                                             {"role": "assistant", "content": ""}]
                for reply, after in demo.reply(message_text, carried):
                    history[-1]["content"] = reply
                    yield history, after, ""

            text.submit(respond, [text, chat, state], [chat, state, text])
    return app


def main(argv: list[str] | None = None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("LSTM_TRM_MODEL"),
                        help="a folder saved by examples/train.py, or a Hub id (default: $LSTM_TRM_MODEL)")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="the address to listen on (default: $GRADIO_SERVER_NAME, which a Space sets, else this "
                        "machine only)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--trust_remote_code", action="store_true",
                        help="allow a model folder of another model type to run its own code")
    args = parser.parse_args(argv)
    if not args.model:
        parser.error("give --model (a folder or a Hub id), or set LSTM_TRM_MODEL")
    try:
        import gradio  # noqa: F401
    except ImportError:
        parser.error("the demo needs gradio: pip install -e \".[demo]\"")
    demo = Demo(args.model, args.trust_remote_code)
    app = build_app(demo)
    print(json.dumps({"url": f"http://{args.host}:{args.port}", "model": args.model, "kind": demo.kind}), flush=True)
    app.launch(server_name=args.host, server_port=args.port, show_error=False)
    return app


if __name__ == "__main__":
    run_cli(main)
