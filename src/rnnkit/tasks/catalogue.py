"""The tasks' names, shapes, flags and defaults, without importing torch (the command line is
built from this table; the task files hold the data, models and metrics)."""

from dataclasses import dataclass, field

from rnnkit.tasks.config import COMMON_FIELDS, DECODER_FIELDS, ENCODER_FIELDS


@dataclass(frozen=True)
class TaskInfo:
    shape: str
    summary: str
    fields: tuple[str, ...]  # the TaskConfig fields that apply (they become flags)
    defaults: dict = field(default_factory=dict)  # this task's defaults for those fields
    example: str = ""  # an input to try (the explorer's first input)


CATALOGUE = {
    "sentiment": TaskInfo(
        "many-to-one",
        "sentence sentiment (UCI labelled sentences): a biLSTM over packed batches",
        COMMON_FIELDS + ENCODER_FIELDS + ("min_count", "pretrained", "lexicon", "pooling"),
        {
            "embedding_size": 64,
            "hidden_size": 64,
            "dropout": 0.3,
            "batch_size": 16,
            "lr": 3e-3,
            "weight_decay": 0.01,
            "max_epochs": 15,
            "min_count": 2,
            "lexicon": True,
            "pooling": "concat",
        },
        example="a gripping , beautifully acted film",
    ),
    "english": TaskInfo(
        "many-to-many (language model)",
        "a bidirectional word language model of bundled English text: pre-training for "
        "sentiment (--pretrained)",
        (*COMMON_FIELDS, "cell", "embedding_size", "hidden_size", "dropout", "min_count"),
        {
            "embedding_size": 64,
            "hidden_size": 64,
            "dropout": 0.3,
            "batch_size": 64,
            "lr": 3e-3,
            "weight_decay": 0.01,
            "max_epochs": 4,
            "min_count": 2,
        },
        example="the food was",
    ),
    "pos": TaskInfo(
        "many-to-many (synchronous)",
        "part-of-speech tagging (UD English EWT): a biLSTM tag at every word",
        COMMON_FIELDS + ENCODER_FIELDS + ("min_count",),
        {
            "embedding_size": 100,
            "hidden_size": 128,
            "dropout": 0.3,
            "batch_size": 32,
            "lr": 3e-3,
            "max_epochs": 8,
            "min_count": 2,
        },
        example="The cat sat on the mat .",
    ),
    "translate": TaskInfo(
        "many-to-many (encoder–decoder)",
        "English -> French (Tatoeba, <= 5 words): attention, teacher forcing, beam search",
        COMMON_FIELDS + ENCODER_FIELDS + DECODER_FIELDS + ("min_count",),
        {
            "cell": "gru",
            "embedding_size": 128,
            "hidden_size": 256,
            "dropout": 0.2,
            "attention_size": 128,
            "batch_size": 64,
            "lr": 3e-3,
            "max_epochs": 4,
            "time_budget": 9.0,  # under the 10-minute promise; max_epochs ends a faster machine
            "min_count": 2,
            "beam_width": 5,
        },
        example="i am happy .",
    ),
    "dates": TaskInfo(
        "many-to-many (encoder–decoder)",
        "date normalisation (generated): characters in, ISO 8601 out, with attention",
        COMMON_FIELDS + ENCODER_FIELDS + DECODER_FIELDS,
        {
            "cell": "gru",
            "embedding_size": 32,
            "hidden_size": 64,
            "dropout": 0.1,
            "attention_size": 64,
            "batch_size": 64,
            "lr": 5e-3,
            "min_lr": 2.5e-4,
            "max_epochs": 2,
        },
        example="the 3rd of march 1994",
    ),
    "caption": TaskInfo(
        "one-to-many",
        "captioning strips of handwritten digits (UCI optdigits) with their words",
        (*COMMON_FIELDS, "cell", "embedding_size", "hidden_size", "dropout", *DECODER_FIELDS),
        {
            "cell": "gru",
            "embedding_size": 32,
            "hidden_size": 128,
            "dropout": 0.2,
            "attention_size": 64,
            "batch_size": 64,
            "lr": 3e-3,
            "max_epochs": 8,
        },
        example="314",
    ),
}

ATTENTION_TASKS = ("translate", "dates", "caption")
"""The tasks whose decoder attends over the input (`rnnkit task NAME attention`)."""
