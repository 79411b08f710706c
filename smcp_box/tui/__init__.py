"""The Textual admin app (``smcp-box tui``). It talks only to the admin API."""
