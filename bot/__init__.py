"""Chat channels: one channel-agnostic dialogue (bot/dialogue) and thin platform adapters
(bot/telegram with aiogram 3, bot/wechat with wechatpy)."""
