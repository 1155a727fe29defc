"""The ``tideflow`` command speaks the shell's language: ``TIDEFLOW_LANG``, else the POSIX locale, else English.

Run as a user runs it (``python -m tideflow.cli`` in a fresh process with the environment under test), plus
``main(argv)`` where a command needs the test database."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from designer.i18n import UnknownLanguage, environment_language
from engine.flow_templates import FLOWS_DIR
from tideflow.cli import main

WELCOME = FLOWS_DIR / "welcome-new-contact.json"
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "en"),
    ({"LANG": "C"}, "en"),
    ({"LANG": "POSIX"}, "en"),
    ({"LANG": "en_US.UTF-8"}, "en"),
    ({"LANG": "de_DE.UTF-8"}, "en"),
    ({"LANG": "zh_CN.UTF-8"}, "zh-CN"),
    ({"LANG": "zh_CN"}, "zh-CN"),
    ({"LANG": "zh"}, "zh-CN"),
    ({"LANG": "zh_CN.GB18030"}, "zh-CN"),
    ({"LANG": "zh_TW.UTF-8"}, "en"),  # Traditional Chinese: we have no catalogue, English it is
    ({"LANG": "zh_CN.UTF-8", "LC_MESSAGES": "C"}, "en"),  # LC_MESSAGES before LANG
    ({"LANG": "C", "LC_MESSAGES": "zh_CN.UTF-8"}, "zh-CN"),
    ({"LC_MESSAGES": "C", "LC_ALL": "zh_CN.UTF-8"}, "zh-CN"),  # LC_ALL before everything of the locale
    ({"LC_ALL": "", "LANG": "zh_CN.UTF-8"}, "zh-CN"),  # set but empty: not set
    ({"TIDEFLOW_LANG": "en", "LC_ALL": "zh_CN.UTF-8"}, "en"),  # TIDEFLOW_LANG before the locale
    ({"TIDEFLOW_LANG": "zh-CN", "LANG": "C"}, "zh-CN"),
    ({"TIDEFLOW_LANG": "ZH-cn"}, "zh-CN"),
    ({"TIDEFLOW_LANG": "", "LANG": "zh_CN.UTF-8"}, "zh-CN"),
    # GNU LANGUAGE before LC_ALL: its first entry we have a catalogue for wins
    ({"LANGUAGE": "zh_CN:en", "LC_ALL": "en_US.UTF-8"}, "zh-CN"),
    ({"LANGUAGE": "en:zh_CN", "LANG": "zh_CN.UTF-8"}, "en"),
    ({"LANGUAGE": "zh_TW:de:zh_CN", "LANG": "en_US.UTF-8"}, "zh-CN"),  # no catalogue for the first two
    ({"LANGUAGE": "fr:de", "LANG": "zh_CN.UTF-8"}, "zh-CN"),  # none we speak: the locale decides
    ({"LANGUAGE": "zh_CN", "LANG": "C"}, "en"),  # as gettext: ignored when the locale is C
    ({"LANGUAGE": "zh_CN"}, "en"),  # ... or unset
    ({"TIDEFLOW_LANG": "en", "LANGUAGE": "zh_CN", "LANG": "zh_CN.UTF-8"}, "en"),
])
def test_the_language_of_an_environment(env: dict[str, str], expected: str) -> None:
    assert environment_language(env) == expected


@pytest.mark.parametrize("value", ["xx", "zh", "zh_CN", "fr", "english"])
def test_an_unknown_tideflow_lang_is_refused(value: str) -> None:
    with pytest.raises(UnknownLanguage) as refused:
        environment_language({"TIDEFLOW_LANG": value, "LANG": "zh_CN.UTF-8"})
    assert refused.value.field == "TIDEFLOW_LANG"
    assert str(refused.value) == f"TIDEFLOW_LANG={value} is not a language tideflow speaks; use one of: zh-CN, en"


def _tideflow(tmp_path: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``tideflow ARGV`` in a fresh process whose locale is only what ``env`` says."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("TIDEFLOW_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")}
    base.update(PYTHONPATH=str(ROOT), TIDEFLOW_DATA_DIR=str(tmp_path / "data"), **env)
    return subprocess.run([sys.executable, "-m", "tideflow.cli", *argv], capture_output=True, text=True,
                          env=base, cwd=tmp_path, check=False, timeout=120)


def test_errors_follow_the_locale(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.json")
    chinese = _tideflow(tmp_path, "flows", "validate", missing, LANG="zh_CN.UTF-8")
    assert chinese.returncode == 1 and "Traceback" not in chinese.stderr
    # the path and the OS's words verbatim, the sentence in Chinese
    assert chinese.stderr == f"tideflow: 无法读取 {missing}：No such file or directory\n"
    english = _tideflow(tmp_path, "flows", "validate", missing, LANG="C")
    assert english.returncode == 1
    assert english.stderr == f"tideflow: cannot read {missing}: No such file or directory\n"  # as it always was
    nothing = _tideflow(tmp_path, "flows", "validate", missing)
    assert nothing.stderr == english.stderr


def test_tideflow_lang_wins_over_the_locale(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    english = _tideflow(tmp_path, "flows", "validate", str(bad), TIDEFLOW_LANG="en", LC_ALL="zh_CN.UTF-8")
    assert english.returncode == 1
    assert english.stderr == (f"tideflow: {bad} is not valid JSON: Expecting property name enclosed in double "
                              "quotes at line 1 column 2\n")
    chinese = _tideflow(tmp_path, "flows", "validate", str(bad), TIDEFLOW_LANG="zh-CN", LANG="C")
    assert chinese.returncode == 1
    assert chinese.stderr == (f"tideflow: {bad} 不是有效的 JSON：第 1 行第 2 列：Expecting property name enclosed in "
                              "double quotes\n")


def test_scaffold_errors_follow_the_locale(tmp_path: Path) -> None:
    chinese = _tideflow(tmp_path, "plugin", "new", "Bad_Name", "--dir", str(tmp_path), LANG="zh_CN")
    assert chinese.returncode == 1
    assert chinese.stderr == "tideflow: 插件名 'Bad_Name' 无效：请使用小写短横线形式，例如 'acme-points'\n"
    (tmp_path / "acme-points").mkdir()
    taken = _tideflow(tmp_path, "plugin", "new", "acme-points", "--dir", str(tmp_path), LANG="zh")
    assert taken.returncode == 1
    assert taken.stderr == (f"tideflow: {tmp_path / 'acme-points'} 已存在；请换一个名字或使用 --dir"
                            "（没有覆盖任何内容）\n")
    english = _tideflow(tmp_path, "plugin", "new", "Bad_Name", "--dir", str(tmp_path), LANG="C.UTF-8")
    assert english.stderr == ("tideflow: plugin name 'Bad_Name' is not valid: use lower-case kebab-case, "
                              "e.g. 'acme-points'\n")


@pytest.mark.parametrize("locale", ["C", "zh_CN.UTF-8"])
def test_an_unknown_tideflow_lang_is_a_clear_refusal(tmp_path: Path, locale: str) -> None:
    refused = _tideflow(tmp_path, "flows", "validate", str(WELCOME), TIDEFLOW_LANG="xx", LANG=locale)
    assert refused.returncode == 2 and refused.stdout == "" and "Traceback" not in refused.stderr
    assert refused.stderr.count("\n") == 1 and "TIDEFLOW_LANG=xx" in refused.stderr
    assert "zh-CN, en" in refused.stderr  # the allowed values, in either language
    if locale == "C":
        assert "is not a language tideflow speaks" in refused.stderr
    else:  # said in the locale's language
        assert "不是 tideflow 支持的语言" in refused.stderr


@pytest.fixture
def _database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.settings import get_settings

    monkeypatch.setenv("TIDEFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    get_settings.cache_clear()


@pytest.mark.usefixtures("_database")
def test_the_database_commands_speak_chinese(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert main(["flows", "export", "nope"]) == 1
    assert capsys.readouterr().err == "tideflow: 流程「nope」不存在\n"
    assert main(["users", "token", "nobody"]) == 1
    assert capsys.readouterr().err == "tideflow: 用户「nobody」不存在\n"
    monkeypatch.setenv("LANG", "C")
    assert main(["flows", "export", "nope"]) == 1
    assert capsys.readouterr().err == "tideflow: flow 'nope' does not exist\n"


def test_a_domain_refusal_speaks_chinese(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A :class:`~wording.MsgError` raised below the CLI (settlement's) is printed in the CLI's language."""
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"key": "p", "name": "p", "party": "shop", "party_types": {"S1": "direct"},
                                "rate_plan": {"type": "flat", "rates": {"direct": "5"}}}))
    orders = tmp_path / "orders.csv"
    orders.write_text("order_id,party,amount,paid_at,status,refund,refunded_at\n")
    monkeypatch.setenv("LC_ALL", "zh_CN.UTF-8")
    argv = ["settle", "--plan", str(plan), "--orders", str(orders), "--from", "2026-10-31", "--to", "2026-10-01"]
    assert main(argv) == 1
    assert capsys.readouterr().err == "tideflow: 周期的结束日 2026-10-01 早于开始日 2026-10-31；请对调 --from 和 --to\n"
    monkeypatch.delenv("LC_ALL")
    assert main(argv) == 1
    assert capsys.readouterr().err == ("tideflow: the period ends on 2026-10-01 before it starts on 2026-10-31; "
                                       "swap --from and --to\n")


def test_a_flows_problems_follow_the_locale(tmp_path: Path) -> None:
    broken = json.loads(WELCOME.read_text())
    broken["nodes"][0]["type"] = "trigger.evnt"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    chinese = _tideflow(tmp_path, "flows", "validate", str(path), LANG="zh_CN.UTF-8")
    assert chinese.returncode == 1 and "Traceback" not in chinese.stderr
    lines = chinese.stderr.splitlines()
    assert lines == [f"{path}：2 个问题",
                     "  - 节点「start」，type：未知的节点类型「trigger.evnt」 → 你是否想用「trigger.event」？",
                     "  - 流程，nodes：流程没有触发节点 → 请添加一个触发节点（例如事件触发）"]
    english = _tideflow(tmp_path, "flows", "validate", str(path), LANG="C")
    assert english.returncode == 1
    assert english.stderr.splitlines() == [
        f"{path}: 2 problem(s)",
        "  - node 'start', type: unknown node type 'trigger.evnt' → did you mean 'trigger.event'?",
        "  - flow, nodes: the flow has no trigger → add one trigger node (e.g. trigger.event)"]


def test_an_orders_files_problems_follow_the_locale(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"key": "p", "name": "p", "party": "shop", "party_types": {"S1": "direct"},
                                "rate_plan": {"type": "flat", "rates": {"direct": "5"}}}))
    orders = tmp_path / "orders.csv"
    orders.write_text("order_id,party,amount,paid_at,status,refund,refunded_at\no1,S1,abc,2026-10-03,paid,,\n")
    argv = ["settle", "--plan", str(plan), "--orders", str(orders), "--from", "2026-10-01", "--to", "2026-10-31"]
    chinese = _tideflow(tmp_path, *argv, LANG="zh_CN.UTF-8")
    assert chinese.returncode == 1 and chinese.stdout == ""
    assert chinese.stderr.startswith("tideflow: 订单 CSV：1 个问题，未结算任何订单（0 行有效）；")
    assert "\n  第 2 行：" in chinese.stderr
    english = _tideflow(tmp_path, *argv, LANG="C")
    assert english.returncode == 1
    assert english.stderr.startswith("tideflow: orders CSV: 1 problem, nothing settled (0 good rows); fix the file")
    assert "\n  line 2: " in english.stderr


def test_success_lines_follow_the_locale(tmp_path: Path) -> None:
    """What a person reads when a command worked is in the shell's language; the ids, versions, hashes and
    tokens a script picks out of it are the same in both (and LANG=C prints exactly the old English)."""
    def run(locale: str, *argv: str) -> subprocess.CompletedProcess[str]:
        done = _tideflow(tmp_path, *argv, LANG=locale, TIDEFLOW_DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}")
        assert done.returncode == 0, done.stderr
        return done

    assert run("zh_CN.UTF-8", "db", "upgrade").stdout == "数据库结构已是最新版本\n"
    assert run("C", "db", "upgrade").stdout == "database schema is up to date\n"
    assert run("zh_CN.UTF-8", "flows", "validate", str(WELCOME)).stdout == f"{WELCOME}：有效\n"
    assert run("C", "flows", "validate", str(WELCOME)).stdout == f"{WELCOME}: valid\n"
    chinese = run("zh_CN.UTF-8", "flows", "publish", str(WELCOME)).stdout.splitlines()
    assert re.fullmatch(r"已发布 welcome-new-contact 版本 1（[0-9a-f]{12}）", chinese[0]), chinese
    assert chinese[1] == "定时触发的流程将在一分钟内由 worker 排期"
    english = run("C", "flows", "publish", str(WELCOME)).stdout.splitlines()
    assert re.fullmatch(r"published welcome-new-contact version \d+ \([0-9a-f]{12}\)", english[0]), english
    assert english[1] == "clock-triggered flows are scheduled by the worker within a minute"
    created = run("zh_CN.UTF-8", "users", "create", "mei", "--role", "ops", "--password", "s3cret-pass-1",
                  "--token").stdout.splitlines()
    assert created[0] == "已创建用户 mei（ops）" and created[1].startswith("API 令牌：")
    token = created[1].removeprefix("API 令牌：")
    assert len(token) > 20 and " " not in token  # the token itself, whole, after the words
    created = run("C", "users", "create", "bob", "--role", "ops", "--password", "s3cret-pass-2").stdout
    assert created == "created user bob (ops)\n"
    assert run("zh_CN.UTF-8", "users", "disable", "mei").stdout == "已停用用户 mei：会话已结束，API 令牌已吊销\n"
    assert run("C", "users", "disable", "bob").stdout == "disabled user bob: sessions ended, API tokens revoked\n"


def test_language_list_picks_the_clis_language(tmp_path: Path) -> None:
    """GNU LANGUAGE, as a shell sets it, reaches the CLI; under LANG=C it is ignored, as gettext does."""
    missing = str(tmp_path / "missing.json")
    chinese = _tideflow(tmp_path, "flows", "validate", missing, LANGUAGE="zh_TW:zh_CN:en", LANG="en_US.UTF-8")
    assert chinese.stderr == f"tideflow: 无法读取 {missing}：No such file or directory\n"
    english = _tideflow(tmp_path, "flows", "validate", missing, LANGUAGE="zh_CN", LANG="C")
    assert english.stderr == f"tideflow: cannot read {missing}: No such file or directory\n"


def test_cannot_preview_follows_the_locale(tmp_path: Path) -> None:
    broken = json.loads(WELCOME.read_text())
    broken["nodes"][0]["type"] = "trigger.evnt"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    chinese = _tideflow(tmp_path, "simulate", str(path), LANG="zh_CN.UTF-8")
    assert chinese.returncode == 1 and "Traceback" not in chinese.stderr
    assert chinese.stderr.splitlines()[0] == ("无法预览：2 个问题；第一个：节点「start」，type："
                                              "未知的节点类型「trigger.evnt」")
    english = _tideflow(tmp_path, "simulate", str(path), LANG="C")
    assert english.returncode == 1
    assert english.stderr.splitlines()[0] == ("cannot preview: 2 problem(s); first: node 'start', type: unknown node "
                                              "type 'trigger.evnt'")
    assert english.stderr.splitlines()[1:] == [
        "  - node 'start', type: unknown node type 'trigger.evnt' → did you mean 'trigger.event'?",
        "  - flow, nodes: the flow has no trigger → add one trigger node (e.g. trigger.event)"]


def test_help_follows_the_locale(tmp_path: Path) -> None:
    """``--help``'s descriptions and help strings come from the catalogue; argparse's own words stay Python's."""
    chinese = _tideflow(tmp_path, "--help", LANG="zh_CN.UTF-8", COLUMNS="100")
    assert chinese.returncode == 0
    assert "\nTideflow：SCRM 自动化引擎\n" in chinese.stdout
    assert "    flows               校验、发布和导出流程\n" in chinese.stdout
    assert chinese.stdout.startswith("usage: tideflow")  # argparse's word, from Python's gettext
    create = _tideflow(tmp_path, "users", "create", "--help", LANG="zh_CN.UTF-8", COLUMNS="100").stdout
    assert "  --token              同时创建并打印一个 API 令牌\n" in create
    english = _tideflow(tmp_path, "users", "create", "--help", LANG="C", COLUMNS="100")
    assert english.returncode == 0
    assert english.stdout == """\
usage: tideflow users create [-h] --role ROLE [--password PASSWORD] [--name NAME] [--token]
                             username

positional arguments:
  username

options:
  -h, --help           show this help message and exit
  --role ROLE          admin, marketer, ops, agent, finance or developer
  --password PASSWORD  (default: prompt, or generate and print when not interactive)
  --name NAME          display name
  --token              also create and print an API token
"""
    top = _tideflow(tmp_path, "--help", LANG="C", COLUMNS="100").stdout
    assert "\nTideflow: SCRM automation engine\n" in top
    assert "    flows               validate, publish and export flows\n" in top


@pytest.mark.usefixtures("_database")
def test_the_up_banner_follows_the_locale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``tideflow up``'s banner after a real demo seed: Chinese words around the same values; the credentials
    file (read by scripts) is English key=value in every language; English exactly as before."""
    from engine.db.session import upgrade
    from engine.settings import get_settings
    from tideflow.demo import seed
    from tideflow.stack import Stack, private_data_dir

    private_data_dir(get_settings().data_dir)  # as `tideflow up` makes it first
    upgrade()
    report = seed()
    admin = report["admin"]
    Stack(get_settings(), lang="zh-CN")._announce(report)
    chinese = capsys.readouterr().out.splitlines()
    credentials = (get_settings().data_dir / "demo-credentials.txt").read_text()
    assert f"演示管理员：{admin['username']} / {admin['password']}" in chinese
    assert f"API 令牌：{report['token']}" in chinese
    assert chinese[-1] == "按 Ctrl-C 停止" and chinese[1].startswith("Tideflow 正在运行：http://")
    assert credentials == f"username={admin['username']}\npassword={admin['password']}\ntoken={report['token']}\n"
    Stack(get_settings(), lang="en")._announce(report)
    english = capsys.readouterr().out.splitlines()
    settings = get_settings()
    url = f"http://{settings.web_host}:{settings.web_port}"
    assert english[:5] == ["", f"Tideflow is running: {url}  (API docs: {url}/docs)",
                           "Temporal UI: off (TIDEFLOW_TEMPORAL_UI=true serves it to admins)",
                           f"demo admin: {admin['username']} / {admin['password']}", f"API token: {report['token']}"]
    assert english[-2] == "published demo flows: " + ", ".join(report["published"])
    assert english[-1] == "press Ctrl-C to stop"


def test_settles_skipped_lines_follow_the_locale(tmp_path: Path) -> None:
    """``settle --skip-invalid``: the JSON on stdout is the same in both languages; the warning a person reads
    on stderr is in the shell's."""
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"key": "p", "name": "p", "party": "shop", "party_types": {"S1": "direct"},
                                "rate_plan": {"type": "flat", "rates": {"direct": "5"}}}))
    orders = tmp_path / "orders.csv"
    orders.write_text("order_id,party,amount,paid_at,status,refund,refunded_at\n"
                      "o1,S1,100,2026-10-03,paid,,\no2,S1,abc,2026-10-04,paid,,\n")
    argv = ["settle", "--plan", str(plan), "--orders", str(orders), "--from", "2026-10-01", "--to", "2026-10-31",
            "--skip-invalid"]
    chinese = _tideflow(tmp_path, *argv, LANG="zh_CN.UTF-8")
    english = _tideflow(tmp_path, *argv, LANG="C")
    assert chinese.returncode == english.returncode == 0, chinese.stderr + english.stderr
    assert json.loads(chinese.stdout)["skipped"] == json.loads(english.stdout)["skipped"]
    assert chinese.stderr.startswith("tideflow: 已跳过第 3 行：")
    assert english.stderr.startswith("tideflow: skipped line 3: ")
