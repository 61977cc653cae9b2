"""retailhub quality layer."""
