"""Profile activities: tags and attributes (plus the event hooks that maintain them, see docs/profiles.md)."""

from activities.profile.tag import Tag
from activities.profile.update_profile import UpdateProfile
from engine.nodes.base import NodeType

NODE_TYPES: list[type[NodeType]] = [Tag, UpdateProfile]
