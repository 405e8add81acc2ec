"""API fuzzing (issue 8): schemathesis over every service, as every role."""
