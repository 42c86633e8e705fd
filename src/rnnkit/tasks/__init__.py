"""Each shape of RNN problem as a task: its data, its model, its metrics (`rnnkit task`).

sentiment   many-to-one                    UCI sentiment sentences -> positive / negative
english     many-to-many, language model   bundled English text, each word from either side
                                           (pre-training for sentiment)
pos         many-to-many, synchronous      UD English EWT words -> part-of-speech tags
translate   many-to-many, encoder–decoder  Tatoeba English -> French, with attention
dates       many-to-many, encoder–decoder  "3rd of March 2021" -> "2021-03-03" (generated)
caption     one-to-many                    a strip of optdigits images -> "three one four"
"""

import importlib

TASKS = ("sentiment", "english", "pos", "translate", "dates", "caption")


def get_task(name: str):
    """The Task object of `name` (its module is imported on first use)."""
    from rnnkit.errors import UsageError

    if name not in TASKS:
        raise UsageError(f"unknown task {name!r}; the tasks are {', '.join(TASKS)}")
    return importlib.import_module(f"rnnkit.tasks.{name}").TASK
