"""sparsgd.sync."""
