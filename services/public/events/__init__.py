"""EventService: impressions, clicks and conversions into a durable landing log."""
