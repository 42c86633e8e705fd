"""What every training run is configured with, the character model's (training/config.py) and
every task's (tasks/config.py): the fields they share, one validation, one warm-up rule, one
way to continue a saved run with settings given again, and one refusal to start over a run.

A subclass adds its own fields and may give a shared field another default by declaring it
again; ``structure_fields`` names what a resumed run cannot change (it would be another model
or other batches).
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Self

from rnnkit.cell_names import checked_cell_spec
from rnnkit.config_fields import check_fields, from_document, option
from rnnkit.errors import UsageError

WARMUP_SHARE = 0.1  # the warm-up is at most this share of a run counted in steps


@dataclass
class RunSettings:
    lr: float = option(3e-3, "peak learning rate (AdamW, warm-up then cosine)", minimum=0.0)
    min_lr: float = option(3e-4, "learning rate at the end of the cosine decay", minimum=0.0)
    warmup_steps: int = option(
        100, "linear warm-up steps (at most a tenth of a run counted in steps)", minimum=0
    )
    weight_decay: float = option(
        0.0, "AdamW weight decay (on weight matrices; never on biases)", minimum=0.0
    )
    clip_norm: float = option(
        1.0, "clip gradients to this global norm (0: no clipping)", minimum=0.0
    )
    ema_decay: float = option(
        0.0,
        "evaluate, keep the best of and use an exponential moving average of the weights with "
        "this decay per step, e.g. 0.999 (0: the raw weights)",
        minimum=0.0,
        maximum=0.99999,
    )
    nonfinite: str = option(
        "skip",
        "on a NaN/inf loss or gradient: skip the step, roll back to the last checkpoint with "
        "half the learning rate, or abort",
        ("skip", "rollback", "abort"),
    )
    seed: int = option(1337, "random seed (weights, dropout)")
    device: str = option(
        "auto", "where to train (auto: a CUDA GPU when there is one)", ("auto", "cpu", "cuda")
    )
    threads: int = option(0, "CPU threads for torch (0: torch's default)", minimum=0)

    structure_fields: ClassVar[tuple[str, ...]] = ()

    def validate(self) -> None:
        check_fields(self)
        if hasattr(self, "cell"):
            self.cell = checked_cell_spec(self.cell)
        if self.min_lr > self.lr:
            raise UsageError(
                f"--min-lr ({self.min_lr:g}) must not exceed --lr ({self.lr:g}); give a lower "
                "--min-lr with a low --lr"
            )

    def warmup_for(self, step_limit: int | None) -> int:
        """The warm-up a run of `step_limit` steps uses: --warmup-steps, but at most a tenth of
        the run, so that a short run reaches its peak learning rate. None: the run's length is
        not counted in steps (a time budget alone ends it), and the warm-up stays as given."""
        if step_limit is None:
            return self.warmup_steps
        return min(self.warmup_steps, max(1, int(WARMUP_SHARE * step_limit)))

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict, where: str) -> Self:
        return from_document(cls, data, where)

    def resumed(self, run_dir: Path, given: dict, log) -> Self:
        """These (saved) settings with the `given` ones (not None) over them; a change of a
        structure field is refused, any other change said in the log."""
        changes = {k: v for k, v in given.items() if v is not None and getattr(self, k) != v}
        refused = [k for k in changes if k in self.structure_fields]
        if refused:
            what = "; ".join(f"{k} {getattr(self, k)!r} -> {changes[k]!r}" for k in refused)
            raise UsageError(
                f"cannot resume {run_dir} with {what}: it would be another model or other "
                "batches. Resume without these flags, or start a new run with --out"
            )
        if changes:
            log("resuming with changed settings: " + "; ".join(
                f"{k} -> {v!r}" for k, v in changes.items()
            ))  # fmt: skip
        config = dataclasses.replace(self, **changes)
        config.validate()
        return config


def refuse_started_run(run_dir: Path, kind: str) -> None:
    """A new run may not start where a run has saved a checkpoint (it would be overwritten);
    one stopped before its first checkpoint has nothing to lose and may start again."""
    from rnnkit.training.checkpoint import complete_checkpoints  # torch: not for --help

    if complete_checkpoints(run_dir):
        raise UsageError(
            f"{run_dir} already holds a {kind}; continue it with --resume {run_dir}, or "
            "choose a new directory with --out"
        )


def resume_target(resume: Path | None, out: Path | None) -> Path | None:
    """The run directory of a `--resume` command line; an error for --resume with another
    --out."""
    if resume is not None and out is not None and out != resume:
        raise UsageError("give either --resume RUN_DIR or --out DIR, not both")
    return resume
