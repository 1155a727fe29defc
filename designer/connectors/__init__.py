"""Connector configuration: the JSON API and the settings page (admins only)."""
