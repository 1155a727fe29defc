"""Journeys: the running and finished instances of flows (API and pages)."""
