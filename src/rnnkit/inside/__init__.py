"""Tools that show what happens inside a recurrent network (SPEC.md §5)."""
