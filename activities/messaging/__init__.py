"""Messaging activities: send a message through a channel."""

from activities.messaging.send_message import SendMessage
from engine.nodes.base import NodeType

NODE_TYPES: list[type[NodeType]] = [SendMessage]
