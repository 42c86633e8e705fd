"""Text into ids (text.py) and ids into training batches (batches.py)."""
