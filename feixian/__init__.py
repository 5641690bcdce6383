"""feixian."""
