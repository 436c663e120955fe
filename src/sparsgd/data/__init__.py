"""sparsgd.data."""
