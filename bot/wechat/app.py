"""The WeChat channel in the web app: built in create_app when a token is set, run by the
lifespan (inbox pruning; on shutdown, deliveries in progress finished, the API session and the
dialogue store closed)."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from bot import lifecycle
from portal.intake.throttle import Throttle
from portal.settings import Settings
from portal.web.routing import add_routes

log = logging.getLogger("gridlink.wechat")


def attach(app: FastAPI, settings: Settings, throttle: Throttle) -> None:
    if not settings.wechat_token:
        app.state.wechat = None
        return
    # wechatpy is loaded only when the account is on.
    from bot.wechat.channel import WeChatChannel
    from bot.wechat.routes import router

    app.state.wechat = WeChatChannel.build(settings, throttle)
    add_routes(app, router)


def running(app: FastAPI):
    channel = app.state.wechat
    if channel is not None:
        log.info("WeChat Official Account message server on /bot/wechat (%s mode).",
                 channel.codec.mode)
    return lifecycle.running(channel, log,
                             "WeChat Official Account is off: GRIDLINK_WECHAT_TOKEN is not set.")
