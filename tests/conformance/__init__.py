"""The official MCP conformance suites against a real box, and the conformance tenant."""
