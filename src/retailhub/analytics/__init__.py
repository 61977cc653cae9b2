"""retailhub analytics layer."""
