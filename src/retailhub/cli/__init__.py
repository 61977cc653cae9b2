"""retailhub cli layer."""
