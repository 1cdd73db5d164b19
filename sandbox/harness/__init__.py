"""The harness: runs a candidate pipeline, one child process per seed, and scores it."""
