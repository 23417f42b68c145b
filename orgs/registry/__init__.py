"""Organisations: registration, verification, pre-job training and data-processing agreements."""
