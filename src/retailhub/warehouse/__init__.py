"""retailhub warehouse layer."""
