"""smcp-box: a self-hosted appliance that hosts many tenants' MCP servers as wasm modules."""

__version__ = "0.1.0"
