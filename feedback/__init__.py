"""Progress updates and satisfaction surveys: ratings (service.record_rating) now; delivery of
progress updates arrives with issue 6."""
