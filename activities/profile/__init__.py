"""Profile activities: tags and attributes."""

from activities.profile.tag import Tag
from engine.nodes.base import NodeType

NODE_TYPES: list[type[NodeType]] = [Tag]
