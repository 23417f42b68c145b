"""Settings from environment variables prefixed GRIDLINK_ (and an optional .env file)."""

from datetime import time
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDLINK_", env_file=".env", extra="ignore")

    # sqlite://data/gridlink.sqlite3 or postgres://user@host:5432/db
    database_url: str = "sqlite://data/gridlink.sqlite3"
    # Empty: throttle counters live in process memory (one-process default).
    redis_url: str = ""

    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str = "http://127.0.0.1:8000"
    # Open311 Service Discovery's contact (who runs the API, a mail address or a phone);
    # empty: "the Gridlink administrators of the grid management centre".
    open311_contact: str = ""

    # Throttling: "limits" notation, separated by ";".
    throttle_new_reports: str = "5/10 minutes;20/day"

    # Merging.
    merge_radius_m: float = 100.0
    merge_window_days: float = 5.0
    merge_auto_score: float = 0.70
    merge_flag_score: float = 0.45
    repeat_window_minutes: float = 60.0
    recurrence_window_days: float = 30.0
    # A report that matches two untouched open cases equally surely merges them into one.
    merge_bridge_cases: bool = True

    # Bounds on what a submission may carry.
    max_text_chars: int = 2000
    max_photos: int = 3
    max_photo_bytes: int = 10 * 1024 * 1024
    max_photo_pixels: int = 40_000_000
    photo_max_side: int = 2560
    media_dir: Path = Path("data/media")

    # Signs CSRF tokens and web sessions. Empty: one is generated on first start and kept in
    # data/secret_key, so every process on the machine shares it. Set it when processes run
    # on several machines.
    secret_key: str = ""
    # Cookies marked Secure (set this when the portal is served over https).
    secure_cookies: bool = False
    # Map tiles for the report form and the public map, e.g.
    # https://tile.openstreetmap.org/{z}/{x}/{y}.png; empty: no map, the forms work without one.
    map_tile_url: str = ""
    map_attribution: str = ""

    # Staff login lockout.
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    # Staff console: a case still being worked on this many days after its first report is
    # overdue (a new case already after one day without being accepted or refused).
    overdue_days: float = 7.0

    # Chat dialogue (bot/dialogue): an unfinished report and the conversation's place are kept
    # this long after the person's last message (the privacy notice says so), then dropped.
    dialogue_draft_days: float = 7.0

    # Telegram bot (bot/telegram). No token: the bot is off. The webhook needs the secret too
    # (Telegram sends it back in X-Telegram-Bot-Api-Secret-Token); polling does not.
    telegram_bot_token: str = ""
    telegram_webhook_secret: str = Field("", pattern=r"^[A-Za-z0-9_-]{0,256}$")
    # A local Bot API server or the test fake (tests/fake_telegram.py).
    telegram_api_base: str = "https://api.telegram.org"
    # Flood control per Telegram user: past these limits one polite warning per
    # telegram_flood_warn, everything else is dropped.
    telegram_flood: str = "3/second;30/minute"
    telegram_flood_warn: str = "1/minute"

    # WeChat Official Account (bot/wechat). No token: the account's message server is off.
    # With an AES key the server speaks safe mode (encrypted), else plain mode.
    wechat_token: str = ""
    wechat_app_id: str = ""
    wechat_app_secret: str = ""
    wechat_aes_key: str = ""
    # WeChat's API, or the test fake (tests/fake_wechat.py).
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_http_timeout: float = 5.0
    # The template message used for progress updates outside the 48-hour reply window, and
    # what goes in its keyword fields: field=what, ";"-separated, what being code, status,
    # when or title (fields as named in the template chosen in WeChat's library).
    wechat_update_template_id: str = ""
    wechat_update_template_fields: str = (
        "character_string1=code;phrase2=status;time3=when;thing4=title")

    # Progress updates (feedback/). E-mail goes out through this SMTP server, e.g.
    # smtp://user:password@mail.example.org:587 (STARTTLS) or smtps://...:465; empty: no e-mail.
    smtp_url: str = ""
    mail_from: str = "Gridlink <noreply@gridlink.invalid>"
    # Non-urgent updates found in these Shanghai hours wait until their end ("" : never wait).
    quiet_hours: str = Field("22:00-08:00", pattern=r"^$|^\d{2}:\d{2}-\d{2}:\d{2}$")
    # Categories whose updates are sent at any hour (comma-separated keys).
    urgent_categories: str = "manhole,water_leak"
    # An update waits this long for more changes of the same case, to go out as one message.
    updates_settle_seconds: float = 15.0
    # Messages per second in all, every process together (Telegram allows about 30; a margin
    # keeps network jitter from pushing a second over), and e-mails per second.
    telegram_rate: int = 29
    wechat_rate: int = 20
    email_rate: int = 5
    # A sender holds a message it took this long at most (then another may take it).
    delivery_lease_seconds: float = 60.0
    # Tries of a message before it fails for good (spaced from 5 s up to an hour apart).
    delivery_max_attempts: int = 12
    # Finished messages (which hold chat ids and e-mail addresses) are forgotten after this.
    delivery_keep_days: float = 30.0
    # The delivery worker runs inside `gridlink serve` (the one-process default); set it to
    # false when `gridlink worker` processes do the delivering.
    worker_in_server: bool = True
    # Open tracking pages read their case's new events this often, and at once when the
    # delivery worker fans out news of it (through Redis between processes, when set).
    live_poll_seconds: float = 2.0
    # Satisfaction: the one reminder to rate, this long after asking; this many "not fixed"
    # answers reopen a resolved case.
    survey_reminder_hours: float = 24.0
    reopen_after_not_fixed: int = 2

    # Social organisations (orgs/). Members and volunteers stay signed in this long.
    member_session_days: float = 14.0
    # Base64 of 32 bytes: the master key that seals bids until their tender's deadline. Empty:
    # derived from the secret key. Set it in production and keep it out of database backups.
    bid_seal_key: str = ""
    # The OCDS ocid prefix registered with the Open Contracting Partnership (a placeholder).
    ocid_prefix: str = "ocds-000000"
    ocds_publisher_name: str = "网格联动"
    # Fewer valid bids than this at the opening: the tender fails (废标).
    tender_min_valid_bids: int = 3
    # Bidding lasts at least this long (the law asks 20 days for 公开招标, 10 for 竞争性磋商:
    # the form warns below those; 0 lets a demo use minutes).
    tender_min_bidding_days: float = 0.0
    # A bid below this share of the mean of the other valid bids is flagged abnormally low.
    abnormally_low_ratio: float = 0.80
    # Time a flagged bidder has to explain its price.
    low_bid_explain_hours: float = 48.0
    # Evaluators who must score every valid bid before the operator finalises.
    tender_min_evaluators: int = 1
    # A claim of a task must be started by the task's start plus this grace, or it is released.
    claim_start_grace_minutes: float = 30.0
    # An organisation may appeal an assessment or a suspension from bidding this long after it.
    appeal_window_days: float = 15.0


    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        if value:
            start, end = (time.fromisoformat(part) for part in value.split("-"))
            if start == end:
                raise ValueError("quiet hours must start and end at different times")
        return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
