"""sparsgd.sim."""
