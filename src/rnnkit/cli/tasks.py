"""`rnnkit task NAME train|eval|predict|attention`: parsers and runners (no torch at import)."""

import json
import sys
from pathlib import Path

from rnnkit.cli.common import add_checkpoint_choice, log, positive_int
from rnnkit.config_fields import add_arguments
from rnnkit.tasks.catalogue import ATTENTION_TASKS, CATALOGUE


def add_commands(commands) -> None:
    from rnnkit.tasks.config import TaskConfig

    task = commands.add_parser(
        "task",
        help="train, score and use a model of each RNN shape on real data",
        description="Each shape of RNN problem as a task on bundled data: "
        + "; ".join(f"{name} ({info.shape})" for name, info in CATALOGUE.items())
        + ".",
    )
    names = task.add_subparsers(dest="task_name", metavar="NAME", required=True)
    for name, info in CATALOGUE.items():
        one = names.add_parser(name, help=f"{info.shape}: {info.summary}", description=info.summary)
        actions = one.add_subparsers(dest="task_action", metavar="ACTION", required=True)
        train = actions.add_parser(
            "train", help="train, then score on the test split", description=info.summary
        )
        train.add_argument(
            "--out", type=Path, default=None, help=f"run directory (default: runs/{name})"
        )
        train.add_argument(
            "--resume",
            type=Path,
            metavar="RUN_DIR",
            default=None,
            help="continue this stopped run exactly where its last checkpoint left it (its "
            "saved settings, unless given again)",
        )
        add_arguments(train, TaskConfig, info.fields, info.defaults)
        evaluate = actions.add_parser("eval", help="score a trained run again")
        evaluate.add_argument("run_dir", type=Path, metavar="RUN_DIR")
        evaluate.add_argument("--split", choices=("dev", "test", "train"), default="test")
        evaluate.add_argument(
            "--examples", type=positive_int, default=None, help="score only the first N"
        )
        add_checkpoint_choice(evaluate)
        predict = actions.add_parser(
            "predict",
            help="the model's answer for each --text (or each line of standard input)",
        )
        predict.add_argument("run_dir", type=Path, metavar="RUN_DIR")
        predict.add_argument(
            "--text",
            action="append",
            default=None,
            help="digits to draw and caption (e.g. 314)" if name == "caption" else "input text",
        )
        add_checkpoint_choice(predict)
        decoding = [evaluate, predict]
        if name in ATTENTION_TASKS:
            attention = actions.add_parser(
                "attention", help="draw the attention alignment of one input as a PNG heat map"
            )
            attention.add_argument("run_dir", type=Path, metavar="RUN_DIR")
            attention.add_argument(
                "--text",
                required=True,
                help="digits to draw (e.g. 314)" if name == "caption" else "input text",
            )
            attention.add_argument(
                "--out", type=Path, default=Path("attention.png"), help="PNG file"
            )
            add_checkpoint_choice(attention)
            decoding.append(attention)
        for parser in decoding if "beam_width" in info.fields else []:
            add_arguments(parser, TaskConfig, ("beam_width", "length_penalty"), info.defaults)


def run_task(args) -> int:
    from rnnkit.tasks import get_task, runner

    task = get_task(args.task_name)
    decoding = {
        "beam_width": getattr(args, "beam_width", None),
        "length_penalty": getattr(args, "length_penalty", None),
    }
    if args.task_action == "train":
        return train_task(task, args)
    if args.task_action == "eval":
        result = runner.evaluate_run(
            args.run_dir, task, args.split, args.checkpoint, args.examples, warn=log, **decoding
        )
        print(json.dumps(result, indent=1))
        return 0
    if args.task_action == "predict":
        if args.text is not None:
            texts = args.text
        else:  # one input per non-blank line of standard input
            texts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
        for output in runner.predict_run(
            args.run_dir, task, texts, args.checkpoint, warn=log, **decoding
        ):
            print(output, flush=True)
        return 0
    from rnnkit.inside.alignment import draw_attention

    model, _, config, vocabularies, limit = runner.load_run(
        args.run_dir, task, args.checkpoint, log, **decoding
    )
    example = task.parse(args.text, vocabularies, limit)
    output, weights = task.translate(model, example, vocabularies, config)
    if weights is None:
        from rnnkit.errors import UsageError

        raise UsageError(f"{args.run_dir} was trained with --attention none: it has no alignment")
    draw_attention(
        task.source_labels(example),
        task.attention_rows(output, weights),
        weights,
        args.out,
        title=task.show(output),
        image=task.source_image(example),
    )
    print(f"{task.show(output)}\nwrote {args.out}")
    return 0


def train_task(task, args) -> int:
    from rnnkit.tasks import training
    from rnnkit.training.settings import resume_target

    given = {name: getattr(args, name) for name in CATALOGUE[args.task_name].fields}
    if resume_target(args.resume, args.out) is not None:
        out = args.resume
        config = training.resumed_config(out, task, given, log)
    else:
        out = args.out or Path("runs") / args.task_name
        config = task.config(**given)
    result = training.train(
        task, config, out, log=log, progress=sys.stderr.isatty(), resume=args.resume is not None
    )
    if result["exit_code"] == 0 and (out / "test_metrics.json").is_file():
        print(f"results: {out / 'test_metrics.json'}")
    return result["exit_code"]


COMMANDS = {"task": run_task}
