"""retailhub sources layer."""
