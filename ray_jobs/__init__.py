"""Ray jobs (training the CTR model, submitted to a local or remote Ray cluster). Built in issue #4."""
