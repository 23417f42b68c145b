"""The kinds of service organisations offer and tasks ask for: a code list, like the case
categories."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceType:
    key: str
    name_zh: str
    name_en: str

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_zh


SERVICE_TYPES: tuple[ServiceType, ...] = (
    ServiceType("cleaning", "保洁", "cleaning"),
    ServiceType("elder_care", "养老服务", "elder care"),
    ServiceType("mediation", "矛盾调解", "mediation"),
    ServiceType("patrol", "巡查", "patrol"),
    ServiceType("event_support", "活动保障", "event support"),
    ServiceType("visit", "走访", "follow-up visits"),
    ServiceType("other", "其他", "other"),
)
BY_KEY = {s.key: s for s in SERVICE_TYPES}


def service_name(key: str, lang: str) -> str:
    """The name of a service type in the page's language; an unknown key as it is."""
    return BY_KEY[key].name(lang) if key in BY_KEY else key
