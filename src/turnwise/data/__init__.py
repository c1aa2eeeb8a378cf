"""Conversation data: one schema, readers and writers for the formats people already have."""

from turnwise.data.schema import Conversation, PreferencePair, validate_messages

__all__ = ["Conversation", "PreferencePair", "validate_messages"]
