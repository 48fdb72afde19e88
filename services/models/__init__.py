"""Model registry shared by the training job (writer) and the ranking service (reader)."""
