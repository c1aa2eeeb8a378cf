"""Offline helpers for tests and the quickstart: tiny models built locally, no hub download needed."""
