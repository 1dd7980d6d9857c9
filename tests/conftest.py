"""Shared test setup: the tests folder is importable (for toy_nodes)."""
