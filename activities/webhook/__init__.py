"""Webhook activities: ``action.webhook`` calls an outside URL (see docs/webhooks.md)."""

from activities.webhook.call import CallWebhook
from engine.nodes.base import NodeType

NODE_TYPES: list[type[NodeType]] = [CallWebhook]
