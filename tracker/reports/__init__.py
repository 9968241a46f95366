"""Stage ④, the read path: ``queries`` aggregates clicks and conversions for the stats API
and the report pages.
"""
