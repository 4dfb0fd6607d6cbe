"""Reports and alerts: the numbers come to the team (digests, static reports) and broken
tracking is noticed (instrumentation alerts). Built on the read side's statistics
(app/read/queries.py) and the drop counts the ingest pipeline saves (`drop_counts`)."""
