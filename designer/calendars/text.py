"""The SLA calendar pages' strings in zh-CN and English."""

from __future__ import annotations

from designer import i18n

_STRINGS: tuple[tuple[str, str, str], ...] = (
    ("nav.calendars", "工作日历", "Calendars"),
    ("cal.title", "SLA 工作日历", "SLA calendars"),
    ("cal.intro", "SLA 只在工作时间计时。法定节假日和调休上班日按国务院办公厅每年的放假安排通知填入，"
                  "你可以在此基础上修改。",
     "SLA clocks run in working time only. Public holidays and make-up workdays are filled in from the State "
     "Council's yearly holiday notice; you may change them afterwards."),
    ("cal.group", "客服组", "Group"),
    ("cal.zone", "时区", "Time zone"),
    ("cal.days", "工作日", "Working days"),
    ("cal.hours", "工作时间", "Working hours"),
    ("cal.hours_help", "可以填多段，例如 09:00–12:00 和 13:00–18:00（午休不计时）。",
     "One or more spans, e.g. 09:00–12:00 and 13:00–18:00 (the lunch break does not count)."),
    ("cal.start", "开始", "Start"),
    ("cal.end", "结束", "End"),
    ("cal.year_status", "{year} 年节假日", "{year} holidays"),
    ("cal.filled", "已填入", "filled in"),
    ("cal.not_filled", "未填入", "not filled in"),
    ("cal.overrides", "{n} 处与通知不同", "{n} differ from the notice"),
    ("cal.edit", "编辑", "Edit"),
    ("cal.none", "还没有客服组。", "No groups yet."),
    ("cal.unknown", "没有客服组「{key}」。", "There is no group “{key}”."),
    ("cal.year", "{year} 年", "{year}"),
    ("cal.holidays", "放假（法定节假日及公司假日）", "Days off (public holidays and company days off)"),
    ("cal.workdays", "调休上班日（周末上班）", "Make-up workdays (working weekends)"),
    ("cal.keep", "保留", "Keep"),
    ("cal.date", "日期", "Date"),
    ("cal.weekday", "星期", "Weekday"),
    ("cal.name", "名称", "Name"),
    ("cal.yours", "自行添加", "added by you"),
    ("cal.add_holiday", "添加放假日（YYYY-MM-DD，多个用逗号分隔）", "Add days off (YYYY-MM-DD, comma-separated)"),
    ("cal.add_workday", "添加调休上班日", "Add make-up workdays"),
    ("cal.prefill", "按国务院通知填入 {year} 年", "Fill in {year} from the State Council notice"),
    ("cal.refill", "按国务院通知重新填入 {year} 年（覆盖这一年的修改）",
     "Fill in {year} again from the notice (replaces this year's changes)"),
    ("cal.unknown_year", "已安装的 chinese-calendar 还没有 {year} 年的放假安排（通知每年 11 月前后发布）："
                         "请手动填写，或在通知发布后升级该软件包。",
     "The installed chinese-calendar has no {year} schedule yet (the notice comes out around November): enter "
     "the days by hand, or upgrade the package once it is out."),
    ("cal.missing", "{year} 年的法定节假日还没有填入：SLA 会在假期里照常计时。",
     "{year}'s public holidays are not filled in: SLAs would run through the holidays."),
    ("cal.diff.removed_holidays", "照常上班（通知放假）：{days}",
     "Working although the notice gives a day off: {days}"),
    ("cal.diff.added_holidays", "额外放假：{days}", "Extra days off: {days}"),
    ("cal.diff.removed_workdays", "不调休上班（通知要求上班）：{days}",
     "Not working a make-up day of the notice: {days}"),
    ("cal.diff.added_workdays", "额外上班的周末：{days}", "Extra working weekends: {days}"),
    ("cal.same", "与国务院通知一致。", "Same as the State Council notice."),
    ("cal.save", "保存日历", "Save calendar"),
    ("cal.saved", "日历已保存。", "Calendar saved."),
    ("cal.prefilled", "已按通知填入 {year} 年：{holidays} 个工作日放假，{workdays} 个调休上班日。"
                      "检查后点「保存日历」。",
     "Filled in {year} from the notice: {holidays} weekdays off, {workdays} make-up workdays. Check, then Save."),
    ("cal.wd.1", "周一", "Mon"), ("cal.wd.2", "周二", "Tue"), ("cal.wd.3", "周三", "Wed"), ("cal.wd.4", "周四", "Thu"),
    ("cal.wd.5", "周五", "Fri"), ("cal.wd.6", "周六", "Sat"), ("cal.wd.7", "周日", "Sun"),
)

i18n.add({"zh-CN": {k: zh for k, zh, _ in _STRINGS}, "en": {k: en for k, _, en in _STRINGS}})
