"""sparsgd.compress."""
