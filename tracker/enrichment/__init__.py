"""Click enrichment: GeoIP lookups and user-agent parsing."""
