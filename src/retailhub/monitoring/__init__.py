"""retailhub monitoring layer."""
