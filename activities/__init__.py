"""Built-in Tideflow activities, grouped by domain (messaging, profile, tickets, settlement, ...)."""

from activities import outbound_images as _outbound_images

# images connectors fetch by URL go through the engine's SSRF guard (connectors cannot import the engine)
_outbound_images.install()
