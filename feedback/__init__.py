"""Progress updates and satisfaction surveys — arrives with issue 6."""
