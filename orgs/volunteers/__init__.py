"""Volunteers: registration, discoveries, points and the leaderboard."""
