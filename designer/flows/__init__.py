"""Flows: the JSON API, the flow list and new-flow pages, and the canvas editor."""
