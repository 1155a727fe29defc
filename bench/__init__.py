"""Benchmarks for the targets of DESIGN.md §7, run with ``python -m bench`` (``make bench``).

Each benchmark prints numbers and compares them with its target; nothing here asserts timing.
Where a target is a ratio, the baseline is measured in the same run, on the same Temporal dev
server and the same worker. See docs/benchmarks.md for what each one does and the numbers measured.
"""
