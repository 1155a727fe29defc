"""Tideflow engine: flow model, validation, compiler, interpreter, events, persistence."""
