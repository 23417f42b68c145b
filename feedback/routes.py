"""Web pages of progress updates: the signed links of an e-mail (or a WeChat template) to rate a
case and to stop its updates, and the rating form of the tracking page.

A signed link stands for one person and one case (feedback.links); whoever holds it acts for
that person, so it needs no login and, for RFC 8058 one-click unsubscribing (a mail program
posting `List-Unsubscribe=One-Click` without cookies), no CSRF token either. Every other form
carries one. A link's page speaks the person's language unless the browser chose one.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse
from python_multipart.multipart import parse_options_header
from starlette.formparsers import MultiPartException, MultiPartParser

from feedback import access, links
from feedback.service import MAX_COMMENT_CHARS, record_rating
from portal.cases import public
from portal.cases.models import RATEABLE, Case, Person
from portal.cases.pages import web_reporter
from portal.cases.rating_form import NOT_FIXED, RatingForm, reporter_id
from portal.http import BodyTooLarge, read_body
from portal.i18n import LANGUAGES, _, gettext_for
from portal.intake.text import CONTROL_CHARS
from portal.web import csrf
from portal.web import lang as page_lang
from portal.web.lang import page_language
from portal.web.templating import ERROR_TITLES, render

router = APIRouter(include_in_schema=False)

# Form value of "not fixed yet" (recorded as score 1, fixed False, as the chat buttons do).
SCORES = ("1", "2", "3", "4", "5", NOT_FIXED)
# Longest token looked at (a real one is about 60 characters).
MAX_TOKEN_CHARS = 100
# A posted form: a comment of MAX_COMMENT_CHARS Chinese characters is about 9 KB %-encoded.
FORM_LIMIT = 32 * 1024
MAX_FIELDS = 20
# What is kept of a refused comment to show it again (the form allows MAX_COMMENT_CHARS).
KEEP_COMMENT_CHARS = 4000

BAD_LINK = _("This link is not valid or no longer works. Open it again from the message, and "
             "make sure the whole address was copied.")
NOT_INVOLVED = _("Only the people who reported or follow case {code} can rate it.")
NOT_RATEABLE = _("Case {code} is {status}; you can rate it once it is resolved.")
CHOOSE = _("Choose how satisfied you are, or “Not fixed yet”.")
TOO_LONG = _("The comment may have at most {n} characters; yours has {count}.")
FORM_TOO_LARGE = _("The form is too large: a comment may have at most {n} characters.")
FORM_UNREADABLE = _("The form could not be read. Go back, reload the page and send it again.")
THANKS = _("Thank you for your rating.")
THANKS_NOT_FIXED = _("Thank you for telling us that the problem is not fixed yet. Your answer "
                     "has been passed to the grid centre.")
# Pages a signed link opens are the person's own: not kept by caches, not indexed.
PRIVATE = {"Cache-Control": "private, no-store", "X-Robots-Tag": "noindex"}


# ------------------------------------------------------------------------------ plumbing


def _language(request: Request, person: Person | None) -> str:
    """The browser's own choice (?lang=, the cookie), else the person's language."""
    chosen = request.query_params.get("lang") in LANGUAGES or \
        request.cookies.get(page_lang.COOKIE) in LANGUAGES
    if chosen or person is None or person.language not in LANGUAGES:
        return page_language(request)
    return person.language


def _page(request: Request, name: str, lang: str, context: dict, *, status_code: int = 200,
          private: bool = True):
    headers = {"Content-Language": lang, **(PRIVATE if private else {})}
    return render(request, name, {"lang": lang, "other_lang": "en" if lang == "zh-CN" else
                                  "zh-CN", **context}, status_code=status_code, headers=headers)


def _refusal(request: Request, lang: str, status: int, detail: str):
    """An error page in `lang` (the person's language, which the app's handler cannot know)."""
    t = gettext_for(lang)
    return _page(request, "error.html", lang, {"title": t(ERROR_TITLES[status]),
                                               "detail": detail, "status": status},
                 status_code=status)


async def _signed(request: Request, purpose: str, token: str) -> tuple[Case, Person]:
    """The case (the one it lives on in, when merged) and the person of a signed link."""
    found = links.read(request.app.state.secret_key, purpose, token) \
        if len(token) <= MAX_TOKEN_CHARS else None
    case = person = None
    if found is not None:
        case = await public.find_case(found[0])
        person = await Person.get_or_none(id=found[1])
    if case is None or person is None:
        # A forged or damaged link, a case removed, a person who asked to be forgotten.
        raise HTTPException(404, gettext_for(page_language(request))(BAD_LINK))
    return await public.living_case(case), person


async def _fields(request: Request, lang: str) -> dict[str, list[str]]:
    """The posted form, form-encoded (browsers) or multipart (some mail programs' one-click),
    read within FORM_LIMIT."""
    t = gettext_for(lang)
    try:
        body = await read_body(request, FORM_LIMIT)
    except BodyTooLarge:
        raise HTTPException(413, t(FORM_TOO_LARGE).format(n=MAX_COMMENT_CHARS)) from None
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    try:
        if content_type == b"application/x-www-form-urlencoded":
            # Browsers send ASCII (everything else %-encoded); a stray byte is replaced.
            return parse_qs(body.decode("latin-1"), keep_blank_values=True, errors="replace",
                            max_num_fields=MAX_FIELDS)
        if content_type == b"multipart/form-data":
            # The parser takes a body without its closing boundary as an empty form.
            if b"--" + params.get(b"boundary", b"-") + b"--" not in body:
                raise ValueError("no closing boundary")
            return await _multipart(request, body)
    except (ValueError, MultiPartException):
        raise HTTPException(400, t(FORM_UNREADABLE)) from None
    raise HTTPException(415, t(FORM_UNREADABLE))


async def _multipart(request: Request, body: bytes) -> dict[str, list[str]]:
    async def stream():
        yield body

    form = await MultiPartParser(request.headers, stream(), max_files=0,
                                 max_fields=MAX_FIELDS, max_part_size=FORM_LIMIT).parse()
    try:
        fields: dict[str, list[str]] = {}
        for name, value in form.multi_items():
            fields.setdefault(name, []).append(str(value))
        return fields
    finally:
        await form.close()


def _one(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    return values[0] if values else None


def _read_rating(fields: dict[str, list[str]], form: RatingForm, lang: str
                 ) -> tuple[int, bool | None, str | None] | None:
    """(score, fixed, comment) of a posted rating; None with `form.errors` filled in."""
    t = gettext_for(lang)
    score = (_one(fields, "score") or "").strip()
    comment = CONTROL_CHARS.sub("", _one(fields, "comment") or "").strip()
    form.score = score if score in SCORES else ""
    form.comment = comment[:KEEP_COMMENT_CHARS]
    if score not in SCORES:
        form.errors["score"] = t(CHOOSE)
    if len(comment) > MAX_COMMENT_CHARS:
        form.errors["comment"] = t(TOO_LONG).format(n=MAX_COMMENT_CHARS, count=len(comment))
    if form.errors:
        return None
    if score == NOT_FIXED:
        return 1, False, comment or None
    return int(score), None, comment or None


def _case_view(case: Case, lang: str, depts) -> public.PublicCase:
    return public.public_case(case, lang, depts)


async def _rate_page(request: Request, case: Case, lang: str, form: RatingForm | None, *,
                     status_code: int = 200, thanks: str = "", private: bool = True):
    return _page(request, "feedback/rate.html", lang, {
        "case": _case_view(case, lang, await public.departments()), "rating": form,
        "thanks": thanks, "max_comment": MAX_COMMENT_CHARS,
    }, status_code=status_code, private=private)


def _not_rateable(request: Request, case: Case, lang: str):
    t = gettext_for(lang)
    return _refusal(request, lang, 409, t(NOT_RATEABLE).format(
        code=case.code, status=public.status_label(case.status, lang)))


def _thanks(lang: str, fixed: bool | None) -> str:
    return gettext_for(lang)(THANKS_NOT_FIXED if fixed is False else THANKS)


# ------------------------------------------------------------------------------ rate by link


@router.get("/rate/{token}")
async def rate_page(token: str, request: Request):
    case, person = await _signed(request, "rate", token)
    lang = _language(request, person)
    if not await access.involved(case, person.id):
        return _refusal(request, lang, 403, gettext_for(lang)(NOT_INVOLVED).format(
            code=case.code))
    previous = await access.rating_of(case, person.id)
    done = request.query_params.get("rated") == "1" and previous is not None
    thanks = _thanks(lang, previous.fixed) if done else ""
    if case.status not in RATEABLE:
        if done:
            # Rated a moment ago, and the answer sent the case back to work: say thank you.
            return await _rate_page(request, case, lang, None, thanks=thanks)
        return _not_rateable(request, case, lang)
    form = RatingForm.filled(f"/rate/{token}", previous)
    return await _rate_page(request, case, lang, form, thanks=thanks)


@router.post("/rate/{token}")
async def rate_post(token: str, request: Request):
    case, person = await _signed(request, "rate", token)
    lang = _language(request, person)
    fields = await _fields(request, lang)
    csrf.check(request, _one(fields, csrf.FIELD), lang)
    if not await access.involved(case, person.id):
        return _refusal(request, lang, 403, gettext_for(lang)(NOT_INVOLVED).format(
            code=case.code))
    if case.status not in RATEABLE:
        return _not_rateable(request, case, lang)
    form = RatingForm(action=f"/rate/{token}")
    rating = _read_rating(fields, form, lang)
    if rating is None:
        return await _rate_page(request, case, lang, form, status_code=422)
    await record_rating(case, person, *rating, channel="link",
                        reopen_after=request.app.state.settings.reopen_after_not_fixed)
    return RedirectResponse(f"/rate/{token}?rated=1", status_code=303,
                            headers=PRIVATE)


# ------------------------------------------------------------------------------ tracking page


@router.post("/cases/{code}/rating")
async def rate_on_tracking_page(code: str, request: Request):
    """The rating form of the tracking page, for the browser that reported the case."""
    lang = page_language(request)
    t = gettext_for(lang)
    case = await public.find_case(code)
    if case is None:
        raise HTTPException(404, t(_("There is no case with this number. Case numbers look "
                                     "like GL-20261128-0042.")))
    case = await public.living_case(case)
    fields = await _fields(request, lang)
    csrf.check(request, _one(fields, csrf.FIELD), lang)
    person_id = await reporter_id(web_reporter(request), case)
    if person_id is None:
        raise HTTPException(403, t(NOT_INVOLVED).format(code=case.code))
    if case.status not in RATEABLE:
        return _not_rateable(request, case, lang)
    form = RatingForm(action=f"/cases/{case.code}/rating")
    rating = _read_rating(fields, form, lang)
    if rating is None:
        return await _rate_page(request, case, lang, form, status_code=422, private=False)
    await record_rating(case, person_id, *rating, channel="web",
                        reopen_after=request.app.state.settings.reopen_after_not_fixed)
    return RedirectResponse(f"/cases/{case.code}?rated=1#rating", status_code=303)


# ------------------------------------------------------------------------------ unsubscribe


def _one_click(fields: dict[str, list[str]]) -> bool:
    """RFC 8058: exactly `List-Unsubscribe=One-Click`, as a mail program posts it."""
    return fields == {"List-Unsubscribe": ["One-Click"]}


@router.get("/unsubscribe/{token}")
async def unsubscribe_page(token: str, request: Request):
    """Asks first: mail scanners open links to check them, and must not unsubscribe anyone."""
    case, person = await _signed(request, "unsubscribe", token)
    lang = _language(request, person)
    return _page(request, "feedback/unsubscribe.html", lang, {
        "code": case.code, "action": f"/unsubscribe/{token}",
        "done": not await access.subscribed(case, person.id)})


@router.post("/unsubscribe/{token}")
async def unsubscribe(token: str, request: Request):
    case, person = await _signed(request, "unsubscribe", token)
    lang = _language(request, person)
    fields = await _fields(request, lang)
    if not _one_click(fields):
        csrf.check(request, _one(fields, csrf.FIELD), lang)
    await access.stop_updates(case, person.id)
    return _page(request, "feedback/unsubscribe.html", lang, {
        "code": case.code, "action": f"/unsubscribe/{token}", "done": True})
