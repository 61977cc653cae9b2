"""retailhub pipeline layer."""
