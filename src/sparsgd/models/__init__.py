"""sparsgd.models."""
