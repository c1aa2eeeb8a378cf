"""Conversation data: one schema, readers and writers for the formats people already have."""

from turnwise.data.formats import FORMATS, convert_file, detect_format, read_records, write_records
from turnwise.data.schema import Conversation, PreferencePair, validate_messages

__all__ = [
    "FORMATS",
    "Conversation",
    "PreferencePair",
    "convert_file",
    "detect_format",
    "read_records",
    "validate_messages",
    "write_records",
]
