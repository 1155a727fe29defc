"""Events in: the ingestion API (``POST /api/events``) and the signed inbound webhooks (``/hooks/<id>``)."""
