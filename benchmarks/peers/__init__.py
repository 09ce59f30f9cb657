"""Peer implementations the benchmarks compare the toolkit with (each run in its own process)."""
