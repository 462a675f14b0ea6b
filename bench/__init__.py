"""Benchmarks for pushhub. Run from the repository root, e.g. `python -m bench.fanout`.

Each benchmark drives a real server in its own process from a separate load process, over
loopback only, and bounds every wait.
"""
