"""vjm application layer: VideoJobManager, configuration, CLI, HTTP API."""
