"""Tideflow: the composition root (CLI and embedded stack) wiring engine, activities and designer."""

__version__ = "0.1.0"
