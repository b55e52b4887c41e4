"""Model backends: the interface the engine is given, and its implementations."""
