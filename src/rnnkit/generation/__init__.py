"""Generating sequences from trained models.

sampling.py   the language model: temperature, top-k, top-p, priming, seeds, streamed
decoding.py   the encoder–decoder tasks: greedy decoding and batched beam search
"""
