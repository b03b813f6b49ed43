"""LISTEN/NOTIFY consumers: the projector, the stuck-job detector, subscriptions."""
