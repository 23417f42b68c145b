"""Gridlink server: settings, database, the case domain, web and APIs."""
