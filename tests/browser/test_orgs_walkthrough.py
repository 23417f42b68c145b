"""Issue 7's walk-through in a real browser, in Chinese: three people sign up and register
organisations, the grid centre verifies them and records their training, publishes a
comprehensive-scoring tender, the three bid under seal, the tender opens after its deadline, an
evaluator scores, the operator finalises and confirms the award, and a volunteer claims a place
in a task. Everything goes through the pages; only the passing of the deadline is done in the
database. Org members and the volunteer use a phone-sized screen, staff a desktop one."""

from __future__ import annotations

import re
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from orgs import uscc
from tests.browser.conftest import DESKTOP, PASSWORD, STAFF, _cli, _pg, new_page, running_portal

BEIJING = timezone(timedelta(hours=8))
MEMBER_PASSWORD = "walkthrough-pass-1"
# (username, organisation, price, plan/team/experience scores)
BIDDERS = (("zhang", "黄浦阳光社工服务中心", "250000", ("85", "80", "90")),
           ("wang", "南京东路邻里互助社", "268000", ("92.33", "88", "80")),
           ("zhao", "外滩绿色环保服务社", "231000", ("72.33", "70", "65")))
CRITERIA = (("服务方案", "40"), ("团队", "20"), ("经验", "10"))


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def portal(request, tmp_path_factory):
    """The conftest's portal with an evaluator account, and the demo street with its three
    grids (`gridlink seed-demo`): organisations, tenders and tasks need areas."""
    staff = {**STAFF, "evaluator1": ("evaluator", None)}
    with running_portal(request.param, tmp_path_factory.mktemp("walk"), staff=staff,
                        schema_name="gl_walk") as running:
        _cli(["seed-demo"], running.database_url, running.workdir)
        yield running


def credit_code(n: int) -> str:
    first17 = f"53310000{n:09d}"
    return first17 + uscc.check_char(first17)


def fits_the_screen(page, overflows: list[str]) -> None:
    """Notes the page when something on it runs past the right edge of the screen (a phone
    browser then zooms the whole page out), naming the innermost box that overflows."""
    width = page.viewport_size["width"]
    culprit = page.evaluate("""width => {
        if (document.documentElement.scrollWidth <= width) return null;
        const boxes = [...document.querySelectorAll('body *')].filter(
            e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1
                 && getComputedStyle(e).overflowX === 'visible');
        const e = boxes[boxes.length - 1];
        return e ? `<${e.tagName.toLowerCase()} class="${e.className}"> `
                   + e.textContent.trim().replace(/\\s+/g, ' ').slice(0, 60) : 'the page';
    }""", width)
    if culprit:
        overflows.append(f"{urlsplit(page.url).path}: {culprit} runs past {width}px")


def sign_up(page, portal, username: str, display_name: str) -> None:
    page.goto(portal.url("/account/register"))
    expect(page.get_by_role("heading", level=1)).to_have_text("注册账号")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("对外显示的名称").fill(display_name)
    page.get_by_label("密码", exact=True).fill(MEMBER_PASSWORD)
    page.get_by_role("button", name="创建账号").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("我的账号")
    expect(page.get_by_role("main")).to_contain_text(display_name)


def staff_sign_in(page, portal, username: str) -> None:
    page.goto(portal.url("/staff/login"))
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page).not_to_have_url(re.compile(r"/staff/login"))


def register_organisation(page, portal, n: int, name: str, overflows: list[str]) -> None:
    page.goto(portal.url("/orgs/register"))
    expect(page.get_by_role("heading", level=1)).to_have_text("社会组织登记")
    page.get_by_label("组织登记名称").fill(name)
    page.get_by_label("统一社会信用代码").fill(credit_code(n))
    page.get_by_label("地址", exact=True).fill(f"黄浦区南京东路{n}号")
    page.get_by_label("联系人").fill("李明")
    page.get_by_label("联系电话").fill(f"1381234000{n}")
    page.locator("#service_types").get_by_label("保洁").check()
    page.locator("#areas").get_by_label("南京东路第一网格").check()
    fits_the_screen(page, overflows)
    page.get_by_role("button", name="提交登记").click()
    expect(page).to_have_url(re.compile(r"/org\b"))
    expect(page.get_by_role("main")).to_contain_text(name)


def submit(button) -> None:
    """Clicks a form's button and waits for the page it leads to (often the same address,
    with a message: what was on screen before proves nothing)."""
    with button.page.expect_navigation():
        button.click()


def choose(select, text: str) -> None:
    """Chooses the option of a select whose text contains `text`."""
    select.select_option(select.locator("option", has_text=text).first.get_attribute("value"))


def set_deadline_passed(portal, code: str) -> None:
    """What a minute's wait after the deadline would do: the deadline one minute ago."""
    past = datetime.now(UTC) - timedelta(minutes=1)
    if portal.database_url.startswith("sqlite://"):
        with sqlite3.connect(portal.database_url.removeprefix("sqlite://")) as db:
            stored = db.execute("SELECT deadline FROM tender WHERE code = ?", (code,)).fetchone()
            # The same text form as the stored value, so comparisons in SQL still hold.
            value = past.isoformat(sep=" " if " " in stored[0] else "T")
            db.execute("UPDATE tender SET deadline = ? WHERE code = ?", (value, code))
    else:
        schema = parse_qs(urlsplit(portal.database_url).query)["schema"][0]
        _pg(f"SET search_path TO {schema}; UPDATE tender SET deadline = "
            f"now() - interval '1 minute' WHERE code = '{code}';")


def test_issue_7_walk_through(portal, browser, screenshot):
    overflows: list[str] = []
    today = datetime.now(BEIJING).date()
    members = []
    operator = new_page(browser, viewport=DESKTOP)
    evaluator = new_page(browser, viewport=DESKTOP)
    public = new_page(browser)
    try:
        # 1. Three people sign up, each registers an organisation.
        for n, (username, org, _price, _scores) in enumerate(BIDDERS, start=1):
            page = new_page(browser)
            members.append(page)
            sign_up(page, portal, username, f"{org}管理员")
            register_organisation(page, portal, n, org, overflows)
        screenshot(members[0], "walk-org-registered-zh-phone")

        # 2. The operator verifies them and records their cleaning training.
        staff_sign_in(operator, portal, "operator1")
        for _username, org, _price, _scores in BIDDERS:
            operator.goto(portal.url("/staff/orgs"))
            operator.get_by_role("link", name=org, exact=True).click()
            expect(operator.get_by_role("heading", level=1)).to_have_text(org)
            submit(operator.get_by_role("button", name="审核通过"))
            expect(operator.locator(".notice.ok")).to_be_visible()
            expect(operator.get_by_role("button", name="审核通过")).to_have_count(0)
            operator.get_by_label("服务类型", exact=True).select_option(label="保洁")
            operator.get_by_label("证书编号").fill(f"PX-{org}")
            operator.get_by_label("发证单位").fill("黄浦区民政局")
            operator.get_by_label("发证日期").fill(str(today - timedelta(days=10)))
            operator.get_by_label("有效期至（含当日）").fill(str(today + timedelta(days=365)))
            submit(operator.get_by_role("button", name="保存培训记录"))
            expect(operator.locator(".notice.ok")).to_be_visible()
            expect(operator.get_by_role("main")).to_contain_text(f"PX-{org}")
        screenshot(operator, "walk-staff-org-verified-zh-desktop")

        # 3. A comprehensive-scoring tender, published, with an evaluator.
        operator.goto(portal.url("/staff/tenders/new"))
        expect(operator.get_by_role("heading", level=1)).to_have_text("新建招标项目")
        operator.get_by_label("标题").fill("南京东路街道公共区域保洁")
        operator.get_by_label("说明").fill("每日两次保洁，含垃圾清运。")
        operator.get_by_label("服务类型", exact=True).select_option(label="保洁")
        choose(operator.get_by_label("区域", exact=True), "第一网格")
        operator.get_by_label("最高限价（元，含税）").fill("300000")
        operator.get_by_label("合同开始日期").fill(str(today + timedelta(days=30)))
        operator.get_by_label("合同结束日期").fill(str(today + timedelta(days=394)))
        operator.get_by_label("评标方法").select_option("comprehensive")
        operator.get_by_label("价格权重（百分数，仅综合评分法）").fill("30")
        for i, (name, weight) in enumerate(CRITERIA):
            operator.locator(f"#c-name-{i}").fill(name)
            operator.locator(f"#c-weight-{i}").fill(weight)
        deadline = datetime.now(BEIJING) + timedelta(minutes=5)
        operator.get_by_label("投标截止时间（北京时间）").fill(deadline.strftime("%Y-%m-%dT%H:%M"))
        screenshot(operator, "walk-staff-new-tender-zh-desktop")
        operator.get_by_role("button", name="保存草稿").click()
        expect(operator).to_have_url(re.compile(r"/staff/tenders/GT-\d{4}-\d{5}$"))
        code = re.search(r"GT-\d{4}-\d{5}", operator.url).group(0)
        submit(operator.get_by_role("button", name="发布"))
        expect(operator.locator(".notice.ok")).to_be_visible()
        expect(operator.get_by_role("button", name="发布")).to_have_count(0)
        operator.get_by_label("评审专家用户名").fill("evaluator1")
        submit(operator.get_by_role("button", name="添加评审专家"))
        expect(operator.locator(".notice.ok")).to_be_visible()
        expect(operator.get_by_role("main")).to_contain_text("evaluator1")

        # 4. Each organisation bids under seal and gets a receipt with a fingerprint.
        for page, (_username, org, price, _scores) in zip(members, BIDDERS, strict=True):
            page.goto(portal.url("/org/tenders"))
            expect(page.get_by_role("heading", level=1)).to_have_text("正在招标的项目")
            page.get_by_role("link", name="投标", exact=True).click()
            expect(page).to_have_url(portal.url(f"/org/tenders/{code}/bid"))
            page.get_by_label("报价（元，含税）").fill(price)
            page.get_by_label("服务方案").fill(f"{org}的保洁方案：早晚各一次 SEALMARK{price}")
            page.get_by_label("团队：每行一人，姓名 | 岗位 | 资质").fill("李四 | 项目经理 | 保洁师")
            fits_the_screen(page, overflows)
            page.get_by_role("button", name="提交密封投标").click()
            expect(page).to_have_url(portal.url(f"/org/tenders/{code}/receipt"))
            expect(page.get_by_role("heading", level=1)).to_have_text(f"投标回执 · {code}")
            expect(page.get_by_role("status")).to_contain_text(
                re.compile(r"投标已收到：第 1 版.*指纹 [0-9a-f]{16,}"))
            fits_the_screen(page, overflows)
        screenshot(members[1], "walk-bid-receipt-zh-phone")

        # Before the deadline nobody sees a price or a proposal: not the operator, not the
        # public, not a rival bidder.
        operator.goto(portal.url(f"/staff/tenders/{code}"))
        expect(operator.get_by_role("main")).to_contain_text("截止前投标保持密封")
        public.goto(portal.url(f"/tenders/{code}"))
        expect(public.get_by_role("main")).to_contain_text("截止前投标均处于密封状态。")
        members[1].goto(portal.url(f"/org/tenders/{code}/bid"))
        expect(members[1].get_by_role("button", name="提交密封投标")).to_be_visible()
        for page in (operator, public, members[1]):
            body = page.content()
            assert "SEALMARK" not in body and "保洁方案：" not in body
            for _username, _org, price, _scores in BIDDERS:
                assert price not in body and f"{int(price):,}" not in body

        # 5. The deadline passes; the public page opens the tender.
        set_deadline_passed(portal, code)
        public.goto(portal.url(f"/tenders/{code}"))
        expect(public.get_by_role("status")).to_contain_text("有效投标 3 份")
        assert "SEALMARK" not in public.get_by_role("main").inner_text()
        fits_the_screen(public, overflows)
        screenshot(public, "walk-tender-opened-zh-phone")

        # 6. The evaluator scores every bid.
        staff_sign_in(evaluator, portal, "evaluator1")
        evaluator.goto(portal.url(f"/staff/tenders/{code}/evaluation"))
        expect(evaluator.get_by_role("heading", level=1)).to_contain_text(code)
        for _username, org, _price, scores in BIDDERS:
            section = evaluator.locator("section.card").filter(
                has=evaluator.get_by_role("heading", name=re.compile(org)))
            for (criterion, _weight), score in zip(CRITERIA, scores, strict=True):
                section.get_by_label(f"{criterion}：评分 0–100").fill(score)
            submit(section.get_by_role("button", name="保存评分"))
            expect(evaluator.locator(".notice.ok")).to_be_visible()
        screenshot(evaluator, "walk-evaluation-scored-zh-desktop")

        # The operator finalises and confirms the award to the best total.
        operator.goto(portal.url(f"/staff/tenders/{code}/evaluation"))
        submit(operator.get_by_role("button", name="完成评审"))
        expect(operator.locator(".notice.ok")).to_be_visible()
        award = operator.locator("section.card").filter(has_text=BIDDERS[1][1]).filter(
            has=operator.get_by_role("button", name="确认授标"))
        submit(award.get_by_role("button", name="确认授标"))
        expect(operator.locator(".notice.ok")).to_be_visible()
        results = operator.locator("table").first
        expect(results.locator("tr").filter(has_text=BIDDERS[1][1])).to_contain_text("88.39")
        expect(results.locator("tr").filter(has_text=BIDDERS[0][1])).to_contain_text("86.72")
        screenshot(operator, "walk-evaluation-awarded-zh-desktop")

        public.goto(portal.url(f"/tenders/{code}"))
        expect(public.get_by_role("heading", name="授标")).to_be_visible()
        expect(public.get_by_role("main")).to_contain_text(f"{BIDDERS[1][1]} · ¥268,000.00")
        screenshot(public, "walk-tender-awarded-zh-phone")

        # The runner-up sees its rank and total.
        runner_up = members[0]
        runner_up.goto(portal.url(f"/org/tenders/{code}/result"))
        expect(runner_up.get_by_role("heading", level=1)).to_contain_text(f"{code} 评审结果")
        facts = runner_up.locator("dl.facts")
        expect(facts).to_contain_text("第 2 名（共 3 家）")
        expect(facts).to_contain_text(re.compile(r"贵方总分\s*86\.72"))
        expect(facts).to_contain_text(BIDDERS[1][1])
        fits_the_screen(runner_up, overflows)
        screenshot(runner_up, "walk-bid-result-zh-phone")

        # 7. A volunteer registers and claims a place in a task the operator creates.
        volunteer = new_page(browser)
        members.append(volunteer)
        sign_up(volunteer, portal, "xiaoliu", "小刘")
        volunteer.goto(portal.url("/volunteer"))
        expect(volunteer.get_by_role("heading", level=1)).to_have_text("成为志愿者")
        volunteer.get_by_label("昵称（显示在排行榜上）").fill("小刘")
        choose(volunteer.get_by_label("所在网格"), "第一网格")
        volunteer.locator("input[name=consent]").check()
        fits_the_screen(volunteer, overflows)
        submit(volunteer.get_by_role("button", name="登记", exact=True))
        expect(volunteer.get_by_role("status")).to_be_visible()

        operator.goto(portal.url("/staff/tasks/new"))
        expect(operator.get_by_role("heading", level=1)).to_have_text("创建可认领任务")
        operator.get_by_label("标题").fill("周六河道清洁志愿活动")
        operator.get_by_label("说明").fill("苏州河南岸捡拾垃圾")
        operator.get_by_label("服务类型", exact=True).select_option(label="保洁")
        choose(operator.get_by_label("区域", exact=True), "第一网格")
        operator.get_by_label("名额").fill("2")
        operator.get_by_label("认领对象").select_option("volunteer")
        start = datetime.now(BEIJING) + timedelta(days=1)
        operator.get_by_label("开始", exact=True).fill(start.strftime("%Y-%m-%dT%H:%M"))
        operator.get_by_label("结束", exact=True).fill(
            (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
        operator.get_by_label("志愿者完成后获得的积分").fill("5")
        operator.get_by_role("button", name="创建任务").click()
        expect(operator.locator(".notice.ok")).to_have_text("任务已创建。")
        task = re.search(r"/staff/tasks/(\d+)", operator.url).group(1)

        volunteer.goto(portal.url(f"/tasks/{task}"))
        expect(volunteer.get_by_role("heading", level=1)).to_have_text("周六河道清洁志愿活动")
        submit(volunteer.get_by_role("button", name="认领名额"))
        expect(volunteer.get_by_role("status")).to_have_text(
            "你已认领一个名额。到场后请点击“开始”。")
        expect(volunteer.get_by_role("main")).to_contain_text("剩余 1")
        fits_the_screen(volunteer, overflows)
        screenshot(volunteer, "walk-task-claimed-zh-phone")
    finally:
        for page in (operator, evaluator, public, *members):
            page.context.close()
    assert not overflows, overflows
