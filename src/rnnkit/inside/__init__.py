"""Seeing inside a recurrent network: gradient flow, long-range problems, cells, heat maps."""
