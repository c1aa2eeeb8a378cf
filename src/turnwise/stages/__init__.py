"""Pipeline stages: each a pure core (records in, records out) driven by a thin CLI command."""
