"""Tickets: the JSON API and the agent console (queue, ticket, supervisor view, satisfaction survey)."""
