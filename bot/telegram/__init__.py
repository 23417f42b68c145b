"""The Telegram adapter (aiogram 3): webhook and polling into one inbox, updates translated into
the dialogue's inputs and its answers into Telegram messages. Wired in by bot/telegram/app.py."""
