"""Claimable tasks: places claimed first come, first served."""
