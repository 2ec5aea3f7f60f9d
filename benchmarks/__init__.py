"""Benchmarks: pipeworks' sports sync against two hand-written yardsticks (see README.md)."""
