"""Assessment of contracted organisations: scores, grades, consequences, elimination, appeals."""
