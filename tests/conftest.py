"""Shared test setup: the tests folder is importable (for toy_nodes), and torch computes with one thread per
process (set before torch is imported, so the processes tests start inherit it): the tests' tensors are small,
and on a shared 2-core machine a second spinning thread per process made them up to 9x slower (measured:
code2wav + common tests 335 s with torch's default, 38 s with one thread, at load 10)."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
