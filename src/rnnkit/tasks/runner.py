"""Train, evaluate and predict with any task: the epochs, the run directory, the checkpoints.

    RUN/task.json          which task, its configuration, its vocabularies, its input limit
    RUN/metrics.csv        step, epoch, train_loss, val_loss (dev, at each epoch's end), lr, ...
    RUN/loss.png           the loss curve
    RUN/checkpoints/       atomic, checksummed checkpoints (training/checkpoint.py); best.json
    RUN/test_metrics.json  the best checkpoint on the test split, and the baseline

Every epoch: shuffled batches, AdamW with warm-up then cosine decay (training/schedule.py;
fitted to --time-budget when one is given), gradient clipping, a non-finite loss or gradient
skipped before it touches the weights; then the dev split is scored, a checkpoint saved, and the
best one (by the task's main metric on dev) recorded. At the end the best checkpoint is scored
on the test split. Ctrl-C or SIGTERM stops after the current step and saves.
"""

import csv
import json
import math
import time
from pathlib import Path

import torch

from rnnkit.data.tokens import TokenVocabulary
from rnnkit.errors import UsageError
from rnnkit.tasks.base import Task
from rnnkit.tasks.config import TaskConfig
from rnnkit.training import checkpoint
from rnnkit.training.loop import MAX_SKIPPED_IN_A_ROW
from rnnkit.training.plot import write_loss_curve
from rnnkit.training.run import load_weights
from rnnkit.training.schedule import learning_rate
from rnnkit.training.signals import stop_on_signals

METRICS = ["step", "epoch", "train_loss", "val_loss", "lr", "grad_norm", "dev_metric"]
INPUT_LIMIT_FACTOR = 2  # inputs up to twice the longest training input are accepted


def train(task: Task, config: TaskConfig, out: Path, log=print, progress: bool = False) -> dict:
    """Train `task` into the run directory `out`; returns the test metrics (also written to
    test_metrics.json), or, when stopped by a signal, {"stopped_by", "exit_code", "steps"}."""
    from tqdm import tqdm

    config.validate()
    out = Path(out)
    if checkpoint.complete_checkpoints(out):
        raise UsageError(f"{out} already holds a trained run; choose a new directory with --out")
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    splits = task.load_splits(config)
    if config.train_examples:
        splits.train = splits.train[: config.train_examples]
    if config.eval_examples:
        splits.dev = splits.dev[: config.eval_examples]
        splits.test = splits.test[: config.eval_examples]
    vocabularies = task.vocabularies(splits.train, config)
    model = task.build_model(config, vocabularies)
    limit = INPUT_LIMIT_FACTOR * max(task.source_length(e) for e in splits.train)
    out.mkdir(parents=True, exist_ok=True)
    (out / "task.json").write_text(
        json.dumps(
            {
                "task": task.name,
                "config": config.to_json(),
                "vocabularies": {k: v.to_json() for k, v in vocabularies.items()},
                "input_limit": limit,
            },
            indent=1,
        )
    )
    parameters = sum(p.numel() for p in model.parameters())
    log(
        f"{task.name} ({task.shape}): {splits.sizes()} examples; {parameters:,} parameters; "
        f"into {out}"
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    generator = torch.Generator().manual_seed(config.seed)
    steps_per_epoch = math.ceil(len(splits.train) / config.batch_size)
    total_steps = config.max_epochs * steps_per_epoch
    budget = 60 * config.time_budget
    step, skipped, train_seconds, best, best_path = 0, 0, 0.0, None, None
    started = time.perf_counter()
    stopped_by = "max_epochs"
    metrics_file = (out / "metrics.csv").open("w", newline="")
    metrics = csv.writer(metrics_file)
    metrics.writerow(METRICS)
    announce = lambda name: log(f"\n{name}: stopping after this step (again to abort)")  # noqa: E731
    with stop_on_signals(announce) as stop, metrics_file:
        for epoch in range(1, config.max_epochs + 1):
            model.train()
            bar = tqdm(
                task.batches(splits.train, vocabularies, config.batch_size, generator),
                total=steps_per_epoch,
                desc=f"epoch {epoch}",
                disable=not progress,
                leave=False,
            )
            last_row = None
            for batch in bar:
                spent = time.perf_counter() - started
                done = max(step / total_steps, spent / budget if budget else 0.0)
                lr = learning_rate(step, done, config.lr, config.lr / 20, config.warmup_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                ratio = config.teacher_forcing
                if config.scheduled_sampling:  # linearly from 1 down to the final ratio
                    ratio = 1.0 - min(1.0, done) * (1.0 - config.teacher_forcing)
                loss = task.loss(model, batch, config, ratio, generator)
                optimizer.zero_grad(set_to_none=True)
                norm = None
                if torch.isfinite(loss):
                    loss.backward()
                    grads = [p.grad for p in model.parameters() if p.grad is not None]
                    norm = torch.nn.utils.get_total_norm(grads)
                if norm is None or not torch.isfinite(norm):
                    skipped += 1
                    log(f"non-finite loss or gradient at step {step}: step skipped")
                    optimizer.zero_grad(set_to_none=True)
                    if skipped > MAX_SKIPPED_IN_A_ROW:
                        raise UsageError(
                            f"{skipped} non-finite steps in a row at step {step}; lower --lr"
                        )
                    continue
                skipped = 0
                if config.clip_norm > 0:
                    torch.nn.utils.clip_grads_with_norm_(model.parameters(), config.clip_norm, norm)
                optimizer.step()
                step += 1
                last_row = [step, epoch, f"{loss.item():.6f}", "", f"{lr:.6g}", f"{norm:.4f}", ""]
                metrics.writerow(last_row)
                bar.set_postfix(loss=f"{loss.item():.3f}")
                out_of_time = budget and time.perf_counter() - started >= budget
                if stop or out_of_time:
                    stopped_by = stop.name if stop else "time_budget"
                    break
            bar.close()
            train_seconds = time.perf_counter() - started
            if stop and last_row is None:
                break
            dev = task.evaluate(model, splits.dev, vocabularies, config, beam=False)
            metrics.writerow(
                [step, epoch, "", f"{dev['loss']:.6f}", "", "", f"{dev[task.metric]:.6f}"]
            )  # fmt: skip
            metrics_file.flush()
            path = checkpoint.save_checkpoint(
                out,
                step,
                tensors={"model": model.state_dict()},
                documents={"trainer": {"step": step, "epoch": epoch, "dev": dev}},
            )
            if best is None or dev[task.metric] > best:
                best, best_path = dev[task.metric], path
                checkpoint.mark_best(out, path, {"step": step, "epoch": epoch, "dev": dev})
            checkpoint.rotate(out, keep=1, best=best_path)
            log(
                f"epoch {epoch} | step {step} | train loss {last_row[2] if last_row else '-'} | "
                f"dev loss {dev['loss']:.4f} | dev {task.metric} {dev[task.metric]:.4f} | "
                f"{time.perf_counter() - started:.0f} s"
            )
            if stopped_by != "max_epochs":
                break
    try:
        write_loss_curve(out / "metrics.csv", out / "loss.png", ylabel="loss (nats per token)")
    except OSError as error:
        log(f"warning: could not draw {out / 'loss.png'}: {error}")
    if stop:
        saved = f"the best checkpoint so far is {best_path}" if best_path else "nothing was saved"
        log(f"{stopped_by}: stopped at step {step}; {saved}")
        return {"stopped_by": stopped_by, "exit_code": stop.exit_code, "steps": step}
    model, saved = load_run(out, task, warn=log)[:2]
    results = {
        "task": task.name,
        "checkpoint": saved.name,
        "test": task.evaluate(model, splits.test, vocabularies, config),
        "dev": json.loads((saved / "trainer.json").read_text())["dev"],
        "baseline": task.baseline(splits, vocabularies, config),
        "examples": {"train": len(splits.train), "dev": len(splits.dev), "test": len(splits.test)},
        "parameters": parameters,
        "steps": step,
        "train_seconds": round(train_seconds, 1),
        "stopped_by": stopped_by,
        "exit_code": 0,
    }
    (out / "test_metrics.json").write_text(json.dumps(results, indent=1))
    log(f"test: {_show(results['test'])}")
    if results["baseline"]:
        log(f"baseline: {_show(results['baseline'])}")
    return results


def read_task_run(run_dir: Path, task: Task) -> tuple[TaskConfig, dict, int]:
    """(config, vocabularies, input limit) of a task run; clear errors for anything else."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UsageError(
            f"{run_dir}: no such run directory; train one with "
            f"`rnnkit task {task.name} train --out {run_dir}`"
        )
    document_path = run_dir / "task.json"
    if not document_path.is_file():
        kind = "a language-model run" if (run_dir / "vocab.json").is_file() else "not a task run"
        raise UsageError(
            f"{run_dir} is {kind} (it has no task.json); give the --out directory of "
            f"`rnnkit task {task.name} train`"
        )
    try:
        document = json.loads(document_path.read_text())
        saved_task = document["task"]
        config = TaskConfig.from_json(document["config"])
        vocabularies = {
            k: TokenVocabulary.from_json(v) for k, v in document["vocabularies"].items()
        }
        limit = int(document["input_limit"])
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError(f"{document_path} is corrupted ({error})") from None
    if saved_task != task.name:
        raise UsageError(
            f"{run_dir} holds a {saved_task} run, not {task.name}; use "
            f"`rnnkit task {saved_task} ...` with it"
        )
    return config, vocabularies, limit


def load_run(run_dir: Path, task: Task, which: str = "best", warn=print, **decoding):
    """(model in eval mode, checkpoint path, config, vocabularies, input limit) of a task run.

    `decoding` may override beam_width and length_penalty (None: the run's own setting)."""
    config, vocabularies, limit = read_task_run(run_dir, task)
    for name, value in decoding.items():
        if value is not None:
            setattr(config, name, value)
    config.validate()
    path, tensors, _ = checkpoint.load_chosen(Path(run_dir), which, warn)
    model = task.build_model(config, vocabularies)
    load_weights(model, tensors["model"], path)
    model.eval()
    return model, path, config, vocabularies, limit


def evaluate_run(
    run_dir: Path,
    task: Task,
    split: str = "test",
    which: str = "best",
    examples: int | None = None,
    warn=print,
    **decoding,
) -> dict:
    """Score a trained run on `split` (its first `examples` only, when given) again; `decoding`
    may change beam_width and length_penalty."""
    model, path, config, vocabularies, _ = load_run(run_dir, task, which, warn, **decoding)
    splits = task.load_splits(config)
    chosen = {"train": splits.train, "dev": splits.dev, "test": splits.test}[split][:examples]
    return {"task": task.name, "checkpoint": path.name, "split": split,
            split: task.evaluate(model, chosen, vocabularies, config)}  # fmt: skip


def predict_run(run_dir: Path, task: Task, texts: list[str], which="best", warn=print, **decoding):
    """The task's prediction for each input text (a list of strings)."""
    model, _, config, vocabularies, limit = load_run(run_dir, task, which, warn, **decoding)
    examples = [task.parse(text, vocabularies, limit) for text in texts]
    return [task.predict(model, example, vocabularies, config) for example in examples]


def _show(metrics: dict) -> str:
    return ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
    )
