"""Stage: alerts. Alert specs evaluated on a run's output and delivered to their channels."""
