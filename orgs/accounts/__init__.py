"""Member and volunteer accounts: sign-in, sessions, linking chat identities."""
