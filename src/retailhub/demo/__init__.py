"""retailhub demo layer."""
