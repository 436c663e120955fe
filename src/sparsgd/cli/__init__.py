"""sparsgd.cli."""
