"""Helpers the generated contract tests (generated/tests/test_<table>.py) call."""
