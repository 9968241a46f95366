"""Stage ③, what outgoing postbacks send: ``templates`` render a request from tokens,
``presets`` build the platforms' templates, ``outbox`` enqueues the deliveries a click or a
conversion triggers, in its own transaction.
"""
