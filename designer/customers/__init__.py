"""Customers: profiles, identities, tags, the message archive and tag rules (API and pages)."""
