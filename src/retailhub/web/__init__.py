"""retailhub web layer."""
