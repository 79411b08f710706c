"""The servers the suite measures side by side, each run as a subprocess on a loopback port."""
