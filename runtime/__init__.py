"""omnigraph's runtime: payloads, ports, nodes, the graph language and its validator, executors, tracing.

The spec and validation layers import no model code and no torch, so checking a graph is instant.
"""
