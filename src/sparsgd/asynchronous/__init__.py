"""sparsgd.asynchronous."""
