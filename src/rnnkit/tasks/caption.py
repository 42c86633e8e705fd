"""One-to-many: an image in, its words out. A strip of 1-4 handwritten digits (UCI optdigits,
8×8 pixels each, side by side) is captioned with the digits' English words: "three one four".

Images never cross splits: the strips for training and dev are built from the UCI training
part (3,823 images; every fifth image is kept for dev), the test strips from the UCI test
part (1,797 images by other writers), so every test image is one the model has never seen.
Strips are drawn from a fixed seed: 20,000 train, 1,000 dev, 2,000 test.
Baseline (one-to-one): a feed-forward classifier of single 8×8 digits, told where each digit
starts (which the captioner is not), its captions scored the same way.
"""

import gzip
import random

import numpy as np
import torch
import torch.nn.functional as F

from rnnkit.data.tokens import TokenVocabulary
from rnnkit.errors import UsageError
from rnnkit.models.captioner import ImageEncoder
from rnnkit.tasks.base import Splits, asset
from rnnkit.tasks.encoder_decoder import EncoderDecoderTask

DATA_SEED = 8
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SIZES = {"train": 20_000, "dev": 1_000, "test": 2_000}
MAX_DIGITS = 4


def read_images() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Images (N, 8, 8) uint8 and labels (N,) of the train, dev and test image pools."""
    train = np.loadtxt(asset("digits", "optdigits_tra.csv"), delimiter=",", dtype=np.uint8)
    with gzip.open(asset("digits", "digits.csv.gz"), "rt") as file:
        test = np.loadtxt(file, delimiter=",", dtype=np.uint8)
    dev_rows = np.arange(len(train)) % 5 == 4
    pools = {"train": train[~dev_rows], "dev": train[dev_rows], "test": test}
    return {k: (v[:, :64].reshape(-1, 8, 8), v[:, 64]) for k, v in pools.items()}


def strip(images: np.ndarray, labels: np.ndarray, picks: list[int]):
    """One example: an (8, 8·n) image tensor and its caption as one reference."""
    image = torch.from_numpy(np.concatenate([images[i] for i in picks], axis=1))
    return image, [[WORDS[labels[i]] for i in picks]]


def make_strips() -> Splits:
    rng = random.Random(DATA_SEED)
    pools = read_images()
    parts = {}
    for name, size in SIZES.items():
        images, labels = pools[name]
        parts[name] = [
            strip(images, labels, [rng.randrange(len(images)) for _ in range(rng.randint(1, 4))])
            for _ in range(size)
        ]
    return Splits(parts["train"], parts["dev"], parts["test"])


class Caption(EncoderDecoderTask):
    name = "caption"
    max_output = 12

    def load_splits(self, config):
        return make_strips()

    def vocabularies(self, train, config):
        return {"target": TokenVocabulary(("<pad>", "<unk>", "<s>", "</s>", *WORDS))}

    def source_length(self, example) -> int:
        return example[0].shape[1]

    def make_encoder(self, config, vocabularies):
        return ImageEncoder(32, config.hidden_size // 2, config.cell, config.dropout)

    def source_batch(self, sources, vocabularies):
        widths = torch.tensor([s.shape[1] for s in sources])
        images = torch.zeros(len(sources), 8, int(widths.max()))
        for row, image in enumerate(sources):
            images[row, :, : image.shape[1]] = image.float()
        return images, widths

    def baseline(self, splits, vocabularies, config):
        """One-to-one: an MLP on each 8×8 digit, told where the digits start."""
        torch.manual_seed(config.seed)
        pools = read_images()
        x = torch.from_numpy(pools["train"][0]).float().flatten(1) / 16
        y = torch.from_numpy(pools["train"][1]).long()
        model = torch.nn.Sequential(
            torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(300):  # full batch: 3,058 images
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        exact = 0
        with torch.no_grad():
            for image, references in splits.test:
                digits = image.float().view(8, -1, 8).permute(1, 0, 2).flatten(1) / 16
                guess = [WORDS[i] for i in model(digits).argmax(-1).tolist()]
                exact += guess == references[0]
        return {"name": "per-digit MLP with known digit positions", "exact_match": exact / len(
            splits.test)}  # fmt: skip

    def parse(self, text, vocabularies, limit):
        """The digits to draw: a strip of held-out test images of those digits is captioned."""
        digits = text.strip()
        if not digits or not digits.isdigit() or not digits.isascii():
            raise UsageError(
                f"give the digits to draw as a number such as 314, got {text!r}: a strip of "
                "held-out test images of those digits is captioned"
            )
        if 8 * len(digits) > limit:
            raise UsageError(
                f"{len(digits)} digits is too wide: this model handles at most {limit // 8} "
                f"(twice the {MAX_DIGITS} it was trained on)"
            )
        images, labels = read_images()["test"]
        rng = random.Random(digits)
        picks = [rng.choice(np.flatnonzero(labels == int(d)).tolist()) for d in digits]
        return strip(images, labels, picks)

    def source_labels(self, example):
        return [str(column) for column in range(example[0].shape[1])]

    def source_image(self, example):
        return example[0].numpy()

    @torch.no_grad()
    def predict(self, model, example, vocabularies, config):
        shades = " .:-=+*#%@"
        art = "\n".join(
            "".join(shades[min(9, int(v) * 10 // 17)] for v in row) for row in example[0]
        )
        return f"{art}\n{super().predict(model, example, vocabularies, config)}"


TASK = Caption()
