"""Chat channels (Telegram, WeChat) — arrives with issues 4 and 5."""
