"""Built-in Tideflow activities, grouped by domain (messaging, profile, tickets, settlement, ...)."""
