"""Progress updates by e-mail through a real local SMTP server (aiosmtpd), sent by the real
delivery worker, and the signed pages the mails link to (rating a case, stopping its updates)
together with the rating form of the tracking page; on SQLite and PostgreSQL.

The mail reader's browser is an httpx client on the app (ASGI); it follows the links of the
mails the SMTP server received."""

from __future__ import annotations

import re
import uuid
from email.message import EmailMessage

import httpx
import pytest

from feedback import links
from feedback.models import Delivery, Rating, Unreachable
from feedback.routes import (
    BAD_LINK,
    CHOOSE,
    FORM_TOO_LARGE,
    NOT_INVOLVED,
    THANKS,
    THANKS_NOT_FIXED,
    TOO_LONG,
)
from portal.app import create_app
from portal.cases.models import Case, Person, Status, Subscription
from portal.cases.service import add_note, change_status, subscribe
from portal.i18n import gettext_for
from portal.intake.service import person_for, submit
from portal.intake.submission import Submission
from portal.settings import Settings
from tests import smtp
from tests.smtp import Mailbox
from tests.updates import settled, until

mailbox = smtp.mailbox  # the local SMTP server, a fixture

HTML = {"Accept": "text/html"}
BASE = "http://testserver"
REPORTER = "zhang.wei@example.org"
FOLLOWER = "fan@example.org"
TEXT = "南京东路100号门口路灯晚上不亮，已经三天了"
ADDRESS = "黄浦区南京东路100号"
SQUARE = (31.2304, 121.4737)


# ---------------------------------------------------------------------------- the SMTP server


@pytest.fixture
def mail_settings(settings: Settings, mailbox: Mailbox) -> Settings:
    return settings.model_copy(update={
        "smtp_url": f"smtp://127.0.0.1:{mailbox.port}",
        "mail_from": "Gridlink <noreply@gridlink.example.org>",
        "updates_settle_seconds": 0.0, "quiet_hours": "", "email_rate": 1000,
        "public_base_url": BASE})


@pytest.fixture
async def worker(mail_settings: Settings):
    from portal.delivery import build_worker

    w = build_worker(mail_settings)
    yield w
    await w.close()


@pytest.fixture
def site(mail_settings: Settings):
    app = create_app(mail_settings, manage_db=False)
    app.state.throttle.namespace = f"test-{uuid.uuid4().hex}"
    return app


def browser(app) -> httpx.AsyncClient:
    """A browser of its own: its own cookies (language, CSRF, reporter)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


@pytest.fixture
async def web(site):
    async with browser(site) as c:
        yield c


# ---------------------------------------------------------------------------- helpers


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


async def report_on_the_web(client: httpx.AsyncClient, contact: str = "", **fields) -> str:
    """Fill in the report form as a resident does; the case code."""
    page = await client.get("/report", headers=HTML)
    form = {name: re.search(rf'name="{name}" value="([^"]*)"', page.text).group(1)
            for name in ("csrf_token", "form_id")}
    response = await client.post("/report", headers=HTML, data={
        **form, "category": "street_light", "description": TEXT, "address": ADDRESS,
        "lat": "", "lng": "", "contact": contact, **fields},
        files=[("media", ("none", b"", "application/octet-stream"))])
    assert response.status_code == 303, text_of(response.text)[:300]
    receipt = await client.get(response.headers["location"], headers=HTML)
    return re.search(r"GL-\d{8}-\d{4}", receipt.text).group(0)


async def follow_by_mail(client: httpx.AsyncClient, code: str, address: str) -> None:
    page = await client.get(f"/cases/{code}", headers=HTML)
    response = await client.post(f"/cases/{code}/follow", headers=HTML,
                                 data={"csrf_token": csrf_of(page.text), "email": address})
    assert response.status_code == 303


async def resolve(case: Case) -> None:
    for status in (Status.ACCEPTED, Status.DISPATCHED, Status.IN_PROGRESS, Status.RESOLVED):
        await change_status(case.id, status, actor="op",
                            public_note="路灯已更换" if status == Status.RESOLVED else None)


def link(message: EmailMessage, kind: str) -> str | None:
    """The path of the mail's rate or unsubscribe link."""
    found = re.search(rf"{re.escape(BASE)}(/{kind}/\S+)", message.get_content())
    return found.group(1) if found else None


async def rate(client: httpx.AsyncClient, path: str, **data) -> httpx.Response:
    page = await client.get(path, headers=HTML)
    assert page.status_code == 200, text_of(page.text)[:300]
    return await client.post(path, headers=HTML, data={"csrf_token": csrf_of(page.text),
                                                       **data})


# ---------------------------------------------------------------------------- by mail, end to end


async def test_a_resolution_reaches_a_web_reporter_and_a_follower_by_mail_once_in_their_language(
        site, web, mailbox, worker):
    code = await report_on_the_web(web, contact=REPORTER)
    async with browser(site) as fan:
        await fan.get("/lang/en")
        await follow_by_mail(fan, code, FOLLOWER)
    case = await Case.get(code=code)
    worker.start()
    await resolve(case)
    await until(lambda: any("resolved" in m["Subject"].lower() for m in mailbox.to(FOLLOWER))
                and any("已处置" in m["Subject"] for m in mailbox.to(REPORTER)))
    await until(settled)

    # Each change reached each of them in exactly one message.
    for address in (REPORTER, FOLLOWER):
        told = [e for d in await Delivery.filter(address=address, status="sent")
                for e in d.event_ids]
        assert len(told) == len(set(told)) == 4, address
        assert len(mailbox.to(address)) == len(await Delivery.filter(address=address))
    zh, en = mailbox.to(REPORTER)[-1], mailbox.to(FOLLOWER)[-1]
    assert code in zh["Subject"] and zh["Content-Language"] == "zh-CN"
    assert "Resolved" in en["Subject"] and en["Content-Language"] == "en"
    assert "路灯已更换" in zh.get_content() and f"{BASE}/cases/{code}" in zh.get_content()
    assert zh["From"] == "Gridlink <noreply@gridlink.example.org>" and zh["To"] == REPORTER
    # The reporter is asked to rate; everyone can stop the updates, also from the mail program
    # (RFC 8058), whose header holds the link as written.
    assert link(zh, "rate") and not link(en, "rate")
    for message, raw in ((zh, mailbox.raw(REPORTER)[-1]), (en, mailbox.raw(FOLLOWER)[-1])):
        stop = link(message, "unsubscribe")
        assert message["List-Unsubscribe"] == f"<{BASE}{stop}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert f"List-Unsubscribe: <{BASE}{stop}>\r\n".encode() in raw

    # The reporter opens the rate link in a browser that never saw the site: their language.
    rate_path = link(zh, "rate")
    async with browser(site) as reader:
        page = await reader.get(rate_path, headers=HTML)
        assert page.status_code == 200 and page.headers["content-language"] == "zh-CN"
        assert '<html lang="zh-CN">' in page.text and "no-store" in page.headers["cache-control"]
        text = text_of(page.text)
        assert code in text and "已处置" in text and "路灯故障" in text and "南京东路" in text
        for private in (REPORTER, FOLLOWER, "web:browser"):
            assert private not in page.text, private
        done = await rate(reader, rate_path, score="2", comment="灯亮了，但是很暗")
        assert done.status_code == 303
        thanks = await reader.get(done.headers["location"], headers=HTML)
        assert gettext_for("zh-CN")(THANKS) in thanks.text
        assert 'value="2" checked' in thanks.text and "灯亮了，但是很暗" in thanks.text
        # A change of mind replaces the rating.
        assert (await rate(reader, rate_path, score="5", comment="")).status_code == 303
    reporter = await Person.get(email=REPORTER)
    [rating] = await Rating.filter(case_id=case.id)
    assert (rating.person_id, rating.score, rating.fixed, rating.comment, rating.channel) == (
        reporter.id, 5, None, None, "link")

    # The follower's mail program unsubscribes with one click: no cookies, no CSRF token.
    async with browser(site) as mail_program:
        response = await mail_program.post(link(en, "unsubscribe"),
                                           data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
        again = await mail_program.post(link(en, "unsubscribe"),
                                        data={"List-Unsubscribe": "One-Click"})
        assert again.status_code == 200
    follower = await Person.get(email=FOLLOWER)
    assert not await Subscription.exists(case_id=case.id, person_id=follower.id)
    before = {a: len(mailbox.to(a)) for a in (REPORTER, FOLLOWER)}
    await change_status(case.id, Status.CLOSED, actor="op")
    await until(lambda: len(mailbox.to(REPORTER)) > before[REPORTER])
    await until(settled)
    assert len(mailbox.to(FOLLOWER)) == before[FOLLOWER]

    # The reporter stops the updates on the page of the link, which asks first.
    stop = link(mailbox.to(REPORTER)[-1], "unsubscribe")
    async with browser(site) as reader:
        ask = await reader.get(stop, headers=HTML)
        assert ask.status_code == 200 and f'action="{stop}"' in ask.text
        assert await Subscription.exists(case_id=case.id, person_id=reporter.id)
        done = await reader.post(stop, headers=HTML, data={"csrf_token": csrf_of(ask.text)})
        assert done.status_code == 200 and 'action="' not in done.text.split("<main")[1]
    assert not await Subscription.exists(case_id=case.id, person_id=reporter.id)
    before = {a: len(mailbox.to(a)) for a in (REPORTER, FOLLOWER)}
    await add_note(case.id, actor="op", public_note="已回访", internal_note=None)
    await until(settled)
    assert {a: len(mailbox.to(a)) for a in (REPORTER, FOLLOWER)} == before


async def test_an_address_the_server_refuses_for_good_is_not_tried_again(mail_settings, mailbox,
                                                                          worker):
    gone, fine = "gone@example.org", "fine@example.org"
    mailbox.refuse[gone] = ("550 5.1.1 <gone@example.org>: Recipient address rejected", None)
    receipt = await submit(Submission(
        reporter=f"web:browser:{'a' * 40}", channel="web", text=TEXT, category="street_light",
        lat=SQUARE[0], lng=SQUARE[1], email=gone), throttle=None, settings=mail_settings)
    case = await Case.get(code=receipt.case_code)
    person = await person_for(f"web:{fine}", "en", email=fine)
    from tortoise import connections

    await subscribe(case, person, f"web:{fine}", connections.get("default"), reason="follower")
    worker.start()
    await change_status(case.id, Status.ACCEPTED, actor="op")
    await until(lambda: mailbox.to(fine))
    await until(lambda: Unreachable.exists(address=gone))
    await until(settled)
    assert not mailbox.to(gone) and mailbox.asked[gone] == 1
    [dropped] = await Delivery.filter(address=gone)
    assert dropped.status == "dropped" and "550" in dropped.error

    # The address would take mail now; it is not tried again.
    mailbox.refuse.clear()
    await change_status(case.id, Status.DISPATCHED, actor="op")
    await until(lambda: len(mailbox.to(fine)) == 2)
    await until(settled)
    assert not mailbox.to(gone) and mailbox.asked[gone] == 1
    assert await Delivery.filter(address=gone).count() == 1


async def test_a_recipient_the_server_asks_to_try_later_gets_the_mail_once(mail_settings,
                                                                          mailbox, worker):
    busy = "busy@example.org"
    mailbox.refuse[busy] = ("451 4.7.1 Greylisted, please try again later", 1)
    receipt = await submit(Submission(
        reporter=f"web:browser:{'b' * 40}", channel="web", text=TEXT, category="street_light",
        lat=SQUARE[0], lng=SQUARE[1], email=busy, language="en"),
        throttle=None, settings=mail_settings)
    case = await Case.get(code=receipt.case_code)
    worker.start()
    await change_status(case.id, Status.ACCEPTED, actor="op")
    # Tried again after the backoff (5 s, give or take a fifth).
    await until(lambda: mailbox.to(busy), seconds=30)
    await until(settled)
    assert mailbox.asked[busy] == 2 and len(mailbox.to(busy)) == 1
    [delivery] = await Delivery.filter(address=busy)
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert not await Unreachable.exists(address=busy)
    assert "Accepted" in mailbox.to(busy)[0]["Subject"]


# ---------------------------------------------------------------------------- the signed pages


async def resolved_case(client: httpx.AsyncClient, contact: str = REPORTER) -> Case:
    code = await report_on_the_web(client, contact=contact)
    case = await Case.get(code=code)
    await resolve(case)
    return await Case.get(id=case.id)


async def person_of(address: str) -> Person:
    return await Person.get(email=address)


def signed(site, purpose: str, case: Case, person_id: int) -> str:
    return f"/{purpose}/{links.token(site.state.secret_key, purpose, case.code, person_id)}"


async def test_forged_or_damaged_links_are_not_found(site, web):
    case = await resolved_case(web)
    person = await person_of(REPORTER)
    good = links.token(site.state.secret_key, "rate", case.code, person.id)
    code, pid, sig = good.split(".")
    other_sig = links.token(site.state.secret_key, "rate", case.code, person.id + 1)
    tokens = ["x", f"{code}.{pid}.{'0' * 32}", f"{code}.{person.id + 1}.{sig}",
              f"{code}.{pid}.{sig.upper()}", f"{code}.{pid}.{sig[:-1]}", good + "0",
              f"GL-20991231-0001.{pid}.{sig}", other_sig[:-1] + "x", "A" * 5000, "%00", "<b>",
              f"{code}.{'9' * 19}.{sig}", f"{code}.{pid}.{sig}\u200b",
              links.token(site.state.secret_key, "unsubscribe", case.code, person.id),
              # Genuine, but for a case and a person that do not exist.
              links.token(site.state.secret_key, "rate", "GL-20991231-0001", person.id),
              links.token(site.state.secret_key, "rate", case.code, 10**12)]
    page = await web.get(f"/rate/{good}", headers=HTML)
    token = csrf_of(page.text)
    for bad in tokens:
        for response in (await web.get(f"/rate/{bad}", headers=HTML),
                         await web.post(f"/rate/{bad}", headers=HTML,
                                        data={"csrf_token": token, "score": "1"})):
            assert response.status_code == 404, (bad, response.status_code)
            assert gettext_for("zh-CN")(BAD_LINK) in response.text
    for bad in tokens[:-3] + [good]:
        for response in (await web.get(f"/unsubscribe/{bad}", headers=HTML),
                         await web.post(f"/unsubscribe/{bad}",
                                        data={"List-Unsubscribe": "One-Click"})):
            assert response.status_code == 404, bad
    assert not await Rating.exists()
    assert await Subscription.filter(case_id=case.id).count() == 1


async def test_only_the_people_of_a_case_rate_it_and_only_once_it_is_resolved(site, web):
    code = await report_on_the_web(web, contact=REPORTER)
    case = await Case.get(code=code)
    reporter = await person_of(REPORTER)
    stranger = await person_for("web:stranger@example.org", "en", email="stranger@example.org")
    async with browser(site) as reader:
        response = await reader.get(signed(site, "rate", case, stranger.id), headers=HTML)
        assert response.status_code == 403 and response.headers["content-language"] == "en"
        assert gettext_for("en")(NOT_INVOLVED).format(code=code) in text_of(response.text)
        # Not resolved yet: a clear page, in the person's language.
        response = await reader.get(signed(site, "rate", case, reporter.id), headers=HTML)
        assert response.status_code == 409 and "待受理" in text_of(response.text)
        await resolve(case)
        path = signed(site, "rate", case, reporter.id)
        page = await reader.get(path, headers=HTML)
        # Reopened between opening the page and sending it.
        await change_status(case.id, Status.IN_PROGRESS, actor="op")
        late = await reader.post(path, headers=HTML,
                                 data={"csrf_token": csrf_of(page.text), "score": "4"})
        assert late.status_code == 409 and "处置中" in text_of(late.text)
        # The browser's own language choice wins over the person's.
        english = await reader.get(path + "?lang=en", headers=HTML)
        assert english.status_code == 409 and "In progress" in english.text
    assert not await Rating.exists()


@pytest.mark.parametrize("score", ["", "6", "-1", "abc", "1.5", "５", " 3 x", None])
async def test_a_rating_without_a_valid_choice_is_refused_next_to_the_choices(site, web, score):
    case = await resolved_case(web)
    path = signed(site, "rate", case, (await person_of(REPORTER)).id)
    data = {"comment": "还有问题"} if score is None else {"score": score, "comment": "还有问题"}
    response = await rate(web, path, **data)
    assert response.status_code == 422
    assert gettext_for("zh-CN")(CHOOSE) in response.text and 'id="score-error"' in response.text
    assert "还有问题" in response.text  # what they wrote is kept
    assert not await Rating.exists()


async def test_long_comments_are_refused_with_their_length_and_huge_forms_unread(site, web):
    case = await resolved_case(web)
    path = signed(site, "rate", case, (await person_of(REPORTER)).id)
    too_long = await rate(web, path, score="0", comment="很" * 1001)
    assert too_long.status_code == 422 and 'id="comment-error"' in too_long.text
    assert gettext_for("zh-CN")(TOO_LONG).format(n=1000, count=1001) in too_long.text
    assert "很" * 1001 in too_long.text
    huge = await rate(web, path, score="0", comment="很" * 20000)
    assert huge.status_code == 413
    assert gettext_for("zh-CN")(FORM_TOO_LARGE).format(n=1000) in huge.text
    assert not await Rating.exists()
    done = await rate(web, path, score="0", comment="很" * 1000)
    assert done.status_code == 303
    thanks = await web.get(done.headers["location"], headers=HTML)
    assert gettext_for("zh-CN")(THANKS_NOT_FIXED) in thanks.text
    rating = await Rating.get(case_id=case.id)
    assert (rating.score, rating.fixed, len(rating.comment)) == (1, False, 1000)


async def test_forms_without_their_csrf_token_or_unreadable_are_refused(site, web):
    case = await resolved_case(web)
    reporter = await person_of(REPORTER)
    rate_path = signed(site, "rate", case, reporter.id)
    stop_path = signed(site, "unsubscribe", case, reporter.id)
    await web.get(rate_path, headers=HTML)  # the browser has its CSRF cookie
    for path in (rate_path, stop_path, f"/cases/{case.code}/rating",
                 f"/cases/{case.code}/follow"):
        for data in ({"score": "5"}, {"score": "5", "csrf_token": "forged"},
                     {"score": "5", "csrf_token": "é"}, {"csrf_token": "令牌", "email": "a@b.cn"},
                     {"List-Unsubscribe": "One-Click", "score": "5"},
                     {"List-Unsubscribe": "one-click"}):
            response = await web.post(path, headers=HTML, data=data)
            assert response.status_code == 403, (path, data)
        # Too many fields is unreadable, but /follow checks its (missing) token first.
        for content_type, body, code in (
                ("application/json", b'{"score": 5}', 415),
                ("text/plain", b"score=5", 415),
                ("multipart/form-data; boundary=xyz", b"no multipart", 400),
                ("application/x-www-form-urlencoded", b"&".join([b"a=1"] * 50),
                 403 if path.endswith("/follow") else 400)):
            response = await web.post(path, content=body,
                                      headers={**HTML, "Content-Type": content_type})
            assert response.status_code == code, (path, content_type, response.status_code)
    assert not await Rating.exists()
    assert await Subscription.exists(case_id=case.id, person_id=reporter.id)
    # A mail program's multipart one-click works as the form-encoded one does.
    response = await web.post(stop_path, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert not await Subscription.exists(case_id=case.id, person_id=reporter.id)


async def test_unsubscribing_drops_what_still_waits_and_keeps_the_reports(site, web,
                                                                          mail_settings):
    case = await resolved_case(web)
    reporter = await person_of(REPORTER)
    # No worker runs: the updates of the case wait.
    from feedback.fanout import fan_out

    while await fan_out(mail_settings, {"email"}):
        pass
    assert await Delivery.filter(person_id=reporter.id, status="pending").exists()
    path = signed(site, "unsubscribe", case, reporter.id)
    for _ in range(2):
        response = await web.post(path, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
    assert not await Delivery.filter(person_id=reporter.id, status="pending").exists()
    assert await Delivery.filter(person_id=reporter.id, status="dropped").exists()
    page = await web.get(path, headers=HTML)
    assert page.status_code == 200 and f'action="{path}"' not in page.text
    # Still a reporter: may rate.
    assert (await rate(web, signed(site, "rate", case, reporter.id), score="4")).status_code == 303


# ---------------------------------------------------------------------------- the tracking page


async def test_the_browser_that_reported_a_resolved_case_rates_it_on_its_page(site, web):
    code = await report_on_the_web(web)
    case = await Case.get(code=code)
    page = await web.get(f"/cases/{code}", headers=HTML)
    # Not resolved yet: the form is there for the reporter, hidden until the live update
    # (or a reload) says resolved.
    assert 'id="rating" aria-labelledby="rating-title" hidden>' in page.text
    await resolve(case)
    async with browser(site) as neighbour:
        page = await neighbour.get(f"/cases/{code}", headers=HTML)
        assert 'id="rating"' not in page.text
        refused = await neighbour.post(f"/cases/{code}/rating", headers=HTML,
                                       data={"csrf_token": csrf_of(page.text), "score": "1"})
        assert refused.status_code == 403
    page = await web.get(f"/cases/{code}", headers=HTML)
    assert 'id="rating"' in page.text and f'action="/cases/{code}/rating"' in page.text
    response = await web.post(f"/cases/{code}/rating", headers=HTML,
                              data={"csrf_token": csrf_of(page.text), "score": "7"})
    assert response.status_code == 422 and 'id="score-error"' in response.text
    response = await web.post(f"/cases/{code}/rating", headers=HTML,
                              data={"csrf_token": csrf_of(page.text), "score": "4",
                                    "comment": "修得很快"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/cases/{code}?rated=1#rating"
    thanks = await web.get(response.headers["location"], headers=HTML)
    assert gettext_for("zh-CN")(THANKS) in thanks.text
    assert 'value="4" checked' in thanks.text and "修得很快" in thanks.text
    [rating] = await Rating.filter(case_id=case.id)
    assert (rating.score, rating.fixed, rating.comment, rating.channel) == (
        4, None, "修得很快", "web")
    # Nobody else sees the rating or the form.
    async with browser(site) as neighbour:
        page = await neighbour.get(f"/cases/{code}?rated=1", headers=HTML)
        assert "修得很快" not in page.text and 'id="rating"' not in page.text
    missing = await web.post("/cases/GL-20991231-0001/rating", headers=HTML,
                             data={"csrf_token": csrf_of(thanks.text), "score": "4"})
    assert missing.status_code == 404
