"""Inbound authentication: API keys for services (OAuth 2.1 for people builds on the same
Principal). Every credential is scoped to exactly one tenant."""
