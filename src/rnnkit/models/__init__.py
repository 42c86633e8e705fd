"""Models built on rnnkit's layers."""
