"""WeChat's API for the Official Account: customer-service and template messages, media
downloads and the custom menu, through wechatpy.

wechatpy's client is synchronous (requests): every call runs in a thread of the client's own pool, with
GRIDLINK_WECHAT_HTTP_TIMEOUT, against GRIDLINK_WECHAT_API_BASE, with the access token shared by
all processes (bot/wechat/tokens.py). A call refused for its token (40001, 42001, 40014) gets a
fresh token and is made once more. Failures raise WeChatApiError, whose text never carries the
access token or the app secret (request URLs do, so network errors are reported by kind only).

Create one WeChatApi per app (it holds an HTTP session) and `close()` it at shutdown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import requests
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from bot.wechat.tokens import SharedToken, TokenStore, TokenUnavailable
from portal.settings import Settings

log = logging.getLogger("gridlink.wechat")

# Invalid credential, expired token, invalid token.
TOKEN_ERRORS = frozenset({40001, 42001, 40014})
# Our own codes, for failures WeChat did not number.
NETWORK = -1
TOO_LARGE = -2
NOT_AN_IMAGE = -3
NO_TOKEN = -4
# Calls to WeChat at once per process: their own threads, so that a slow WeChat (each call may
# take the whole timeout) does not hold up other work sent to threads (photo re-encoding).
THREADS = 8

T = TypeVar("T")


class WeChatApiError(Exception):
    def __init__(self, errcode: int, errmsg: str):
        self.errcode, self.errmsg = errcode, errmsg
        super().__init__(f"WeChat API error {errcode}: {errmsg}")


class _Client(WeChatClient):
    """wechatpy's client on our API base, whose token is the one its calling thread was given
    (our token is shared, so wechatpy's own fetching and retrying are off)."""

    def __init__(self, settings: Settings):
        super().__init__(settings.wechat_app_id, settings.wechat_app_secret,
                         timeout=settings.wechat_http_timeout, auto_retry=False)
        self.API_BASE_URL = settings.wechat_api_base.rstrip("/") + "/cgi-bin/"
        self._local = threading.local()

    @property
    def access_token(self) -> str:
        return self._local.token


class WeChatApi:
    def __init__(self, settings: Settings, store: TokenStore):
        self.settings = settings
        self.base = settings.wechat_api_base.rstrip("/")
        self.timeout = settings.wechat_http_timeout
        self.store = store
        self.token = SharedToken(store, settings.wechat_app_id, self._fetch_token)
        self._client = _Client(settings)
        self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="wechat-api")

    async def close(self) -> None:
        """Close the HTTP session, its threads and the token store."""
        self._pool.shutdown(wait=False)
        self._client._http.close()
        await self.store.close()

    async def _in_thread(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, call, *args)

    # The API.

    async def send_text(self, openid: str, text: str) -> None:
        """A customer-service text message (within 48 hours of the person's last message)."""
        await self._call(lambda token: self._wechatpy(
            token, lambda c: c.message.send_text(openid, text)))

    async def send_template(self, openid: str, template_id: str, data: dict,
                            url: str | None = None) -> int | None:
        """A template message; `data` is {field: value} or {field: {"value": …}}. Its msgid."""
        fields = {k: v if isinstance(v, dict) else {"value": str(v)} for k, v in data.items()}
        result = await self._call(lambda token: self._wechatpy(
            token, lambda c: c.message.send_template(openid, template_id, fields, url=url)))
        return result.get("msgid")

    async def create_menu(self, menu: dict) -> None:
        await self._call(lambda token: self._wechatpy(token, lambda c: c.menu.create(menu)))

    async def download_media(self, media_id: str, max_bytes: int) -> bytes:
        """A temporary medium's bytes (what a user's image message points to). Refuses
        anything that is not an image and anything over `max_bytes`, while streaming."""
        return await self._call(lambda token: self._download(token, media_id, max_bytes))

    # Calls.

    async def _call(self, call: Callable[[str], T]) -> T:
        token = await self._token()
        try:
            return await self._in_thread(call, token)
        except WeChatApiError as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
            log.info("WeChat refused the access token (%s); fetching a new one", exc.errcode)
        return await self._in_thread(call, await self._token(rejected=token))

    async def _token(self, rejected: str | None = None) -> str:
        try:
            return await self.token.get(rejected)
        except TokenUnavailable:
            raise WeChatApiError(NO_TOKEN, "no access token: its refresh did not finish in time"
                                 ) from None

    def _wechatpy(self, token: str, call: Callable[[_Client], Any]) -> Any:
        self._client._local.token = token
        try:
            result = call(self._client)
        except WeChatClientException as exc:
            if exc.errcode is None:
                status = exc.response.status_code if exc.response is not None else "?"
                raise WeChatApiError(NETWORK, f"HTTP {status}") from None
            raise self._error(exc.errcode, exc.errmsg) from None
        except requests.RequestException as exc:
            raise WeChatApiError(NETWORK, f"network error ({type(exc).__name__})") from None
        # wechatpy hands back the raw response when the answer is not JSON.
        if not isinstance(result, dict):
            raise WeChatApiError(NETWORK, "the answer is not JSON")
        return result

    def _error(self, errcode: Any, errmsg: Any) -> WeChatApiError:
        text = str(errmsg or "")[:300]
        for secret in (self.settings.wechat_app_secret, getattr(self._client._local, "token", "")):
            if secret:
                text = text.replace(secret, "***")
        try:
            code = int(errcode)
        except (TypeError, ValueError):
            code = NETWORK
        return WeChatApiError(code, text)

    def _check(self, body: dict) -> dict:
        if body.get("errcode"):
            raise self._error(body["errcode"], body.get("errmsg"))
        return body

    def _download(self, token: str, media_id: str, max_bytes: int) -> bytes:
        self._client._local.token = token
        try:
            with self._client._http.get(f"{self.base}/cgi-bin/media/get",
                                        params={"access_token": token, "media_id": media_id},
                                        stream=True, timeout=self.timeout) as res:
                if res.status_code != 200:
                    raise WeChatApiError(NETWORK, f"HTTP {res.status_code}")
                ctype = res.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if ctype in ("application/json", "text/plain"):
                    # Errors come back as a small JSON body.
                    try:
                        body = json.loads(res.raw.read(64 * 1024, decode_content=True))
                    except ValueError:
                        body = {}
                    self._check(body if isinstance(body, dict) else {})
                    raise WeChatApiError(NOT_AN_IMAGE, "not an image (a JSON answer)")
                if not ctype.startswith("image/"):
                    raise WeChatApiError(NOT_AN_IMAGE, f"not an image ({ctype[:60] or 'no type'})")
                declared = res.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise WeChatApiError(TOO_LARGE, f"larger than {max_bytes} bytes")
                data = bytearray()
                for chunk in res.iter_content(64 * 1024):
                    data += chunk
                    if len(data) > max_bytes:
                        raise WeChatApiError(TOO_LARGE, f"larger than {max_bytes} bytes")
                return bytes(data)
        except requests.RequestException as exc:
            raise WeChatApiError(NETWORK, f"network error ({type(exc).__name__})") from None

    # The token.

    async def _fetch_token(self, force: bool) -> tuple[str, int]:
        return await self._in_thread(self._fetch_token_sync, force)

    def _fetch_token_sync(self, force: bool) -> tuple[str, int]:
        """POST /cgi-bin/stable_token: unlike /cgi-bin/token it answers the token still valid
        (so no other holder loses theirs) unless `force` asks for a new one."""
        s = self.settings
        log.info("Fetching the WeChat access token%s", " (forced)" if force else "")
        try:
            res = self._client._http.post(
                f"{self.base}/cgi-bin/stable_token", timeout=self.timeout,
                json={"grant_type": "client_credential", "appid": s.wechat_app_id,
                      "secret": s.wechat_app_secret, "force_refresh": force})
            if res.status_code == 404:
                # An API server without the stable token (a proxy, an old fake).
                res = self._client._http.get(
                    f"{self.base}/cgi-bin/token", timeout=self.timeout,
                    params={"grant_type": "client_credential", "appid": s.wechat_app_id,
                            "secret": s.wechat_app_secret})
            if res.status_code != 200:
                raise WeChatApiError(NETWORK, f"HTTP {res.status_code}")
            body = res.json()
        except requests.RequestException as exc:
            raise WeChatApiError(NETWORK, f"network error ({type(exc).__name__})") from None
        except ValueError:
            raise WeChatApiError(NETWORK, "token answer is not JSON") from None
        if not isinstance(body, dict):
            raise WeChatApiError(NETWORK, "token answer is not an object")
        self._check(body)
        if not body.get("access_token"):
            raise WeChatApiError(NETWORK, "token answer without a token")
        return str(body["access_token"]), int(body.get("expires_in") or 7200)
