"""sparsgd.comm."""
