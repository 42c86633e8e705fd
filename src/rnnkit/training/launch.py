"""One way to train any job (the character model's, every task's): start the processes (one,
or torchrun's), build the job, say when its warm-up was shortened, run the one trainer, stop.

    train_job(make_job, device, out, resume, log, progress) -> (job, TrainResult, is_main)

`make_job(log, ranks)` builds the job (training/language_model.py, tasks/training.py) once the
process group is up, so that each rank builds its own share; the log of ranks other than 0 is
quiet. What a product does with the result (the tasks score the best checkpoint on the test
split) happens after the process group is gone, on rank 0.
"""

from pathlib import Path

from rnnkit.training import distributed
from rnnkit.training.trainer import Trainer, TrainResult, quiet


def train_job(make_job, device: str, out: Path, resume: bool, log, progress: bool):
    ranks = distributed.start(device)
    trainer = None
    try:
        log = log if ranks.is_main else quiet
        job = make_job(log, ranks)
        trainer = Trainer(job, Path(out), resume, log, ranks)
        asked, warmup = job.config.warmup_steps, job.settings.warmup
        if warmup < asked:
            log(
                f"warm-up: {warmup} steps instead of --warmup-steps {asked}: at most a tenth "
                f"of this run's {job.settings.step_limit} steps, so that it reaches its peak "
                "learning rate"
            )
        result: TrainResult = trainer.run(progress=progress and ranks.is_main)
        return job, result, ranks.is_main
    finally:
        del trainer  # it holds tensors of the process group: free them first
        distributed.stop()
