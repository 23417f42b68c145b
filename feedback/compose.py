"""What a progress update says: the case, what changed (every event the message carries), what
happens next, and the tracking page; in the person's language."""

from __future__ import annotations

from feedback.channels import Notice
from portal.cases import public
from portal.cases.models import Case, CaseEvent, Status
from portal.cases.service import SHANGHAI
from portal.i18n import _, gettext_for

# Longest message body: Telegram takes 4096 characters, a WeChat text about 2000 bytes.
MAX_BODY_CHARS = 1500
MAX_NOTE_CHARS = 300

NEXT_STEP = {
    Status.NEW: _("The grid centre will look at it soon."),
    Status.ACCEPTED: _("The grid centre will pass it to the department responsible."),
    Status.DISPATCHED: _("The department responsible will deal with it. You will hear when it "
                         "is done."),
    Status.IN_PROGRESS: _("The work is under way. You will hear when it is done."),
    Status.RESOLVED: _("Please tell us whether the problem is fixed and how satisfied you are."),
    Status.CLOSED: _("The case is closed. Thank you for reporting it."),
    Status.REJECTED: _("If you think this is wrong, you can report the problem again with "
                       "more details."),
    Status.MERGED: _("You will hear about that case from now on."),
}


def cut(text: str, limit: int = MAX_BODY_CHARS) -> str:
    """`text` at most `limit` characters, an ellipsis marking what was cut."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def compose(case: Case, events: list[CaseEvent], language: str, *, base_url: str,
            ask_rating: bool, reminder: bool = False, departments: dict | None = None,
            rate_url: str = "", unsubscribe_url: str = "") -> Notice | None:
    """None when there is nothing public to tell (the events were withdrawn)."""
    t = gettext_for(language)
    category = public.category_name(case.category, language)
    lines = []
    for entry in public.timeline(events, language, departments or {}):
        lines.append(f"· {entry.title}")
        if entry.note:
            lines.append(f"  {cut(entry.note, MAX_NOTE_CHARS)}")
    if not lines and not reminder:
        return None
    status = public.status_label(case.status, language)
    url = public.case_url(base_url, case.code)
    if reminder:
        title = t(_("Case {code}: how did it go?")).format(code=case.code)
        head = t(_("Case {code} ({category}) was resolved. You have not rated it yet: is the "
                   "problem fixed, and how satisfied are you?")).format(code=case.code,
                                                                         category=category)
        body = head
    else:
        title = t(_("Case {code}: {status}")).format(code=case.code, status=status)
        head = t(_("News of case {code} ({category}):")).format(code=case.code,
                                                                category=category)
        body = cut("\n".join([head, *lines]))
        step = NEXT_STEP.get(case.status)
        if step and (case.status != Status.RESOLVED or ask_rating):
            body += "\n" + t(step)
    body += "\n" + t(_("Details: {url}")).format(url=url)
    latest = max((e.created_at for e in events), default=case.updated_at)
    return Notice(case_code=case.code, language=language, title=title, body=body, url=url,
                  status=status, when=f"{latest.astimezone(SHANGHAI):%Y-%m-%d %H:%M}",
                  ask_rating=ask_rating, rate_url=rate_url if ask_rating else "",
                  unsubscribe_url=unsubscribe_url)
