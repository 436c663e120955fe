"""sparsgd.experiments."""
