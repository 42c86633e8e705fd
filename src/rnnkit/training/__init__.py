"""Training: the configuration, the loop, checkpoints and evaluation."""
