"""Stage ③, how outgoing postbacks are sent: ``queue`` claims due deliveries with a lease and
records each attempt, ``sender`` sends them over HTTP, ``worker`` is the process that sweeps.
"""
