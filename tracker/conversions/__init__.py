"""Stage ②, conversions: ``/postback`` and ``/api/v1/events`` become ``Conversion`` rows.

``routes`` is the edge, ``claims`` reads what the sender claims, ``contracts`` says how the
two doors differ, ``record`` attributes, deduplicates and writes in one transaction.
"""
