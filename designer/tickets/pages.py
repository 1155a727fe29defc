"""The agent console (坐席工作台): server-rendered ticket pages for agents, supervisors and approvers.

- ``/tickets`` — my queue: tickets assigned to me and unassigned ones in my groups' queues, with
  filters, SLA badges (business time left, warning / breached) and claim buttons (htmx, or plain
  forms without JavaScript); the review steps waiting for my decision; my availability (online / away).
- ``/tickets/{id}`` — one ticket: customer (masked), linked order and refund, custom fields, the
  timeline (public replies, internal notes, every change, SLA warnings and escalations), reply and
  note boxes, priority / status / transfer / resolve, the review chain (approve / reject / send back
  with a reason, delegate), the flow's open steps and the sub-tasks with their combined progress.
- ``/tickets/supervisor`` — queues with counts, SLA risk and agent load against capacity (ops, admin).
- ``/csat/{id}/{token}`` — public: the customer rates the resolution 1–5 (with a comment) through the
  link sent in the resolution message. The token is an HMAC of the ticket id under the instance key,
  so it cannot be forged or moved to another ticket; one answer per ticket.

Every change goes through :mod:`activities.tickets.service` (the same functions the JSON API calls),
then the ticket's workflow gets the ``changed`` signal so SLA deadlines and waiting nodes look again.
Isolation is the API's: an agent asking for a ticket of a group they are not in gets the same 404 as
for a ticket that does not exist. Approvers outside the group (finance) see the tickets whose review
involves them, and may only decide.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from activities.tickets import review, service, sla
from activities.tickets.calendar import business_time_between
from activities.tickets.fields import FieldProblem
from activities.tickets.service import TicketError
from designer import i18n
from designer.auth import get_db_url, public, safe_next
from designer.pages import (
    HTMX,
    PageProblem,
    PageRoute,
    _render,
    _see_other,
    _with_query,
    mask_identity,
    page_user,
    templates,
)
from designer.permissions import CUSTOMER_READERS
from engine import auth
from engine.db import models
from engine.db.models import User, utcnow
from engine.db.session import session_factory, transaction
from engine.pii import mask_text
from engine.secrets import instance_key
from engine.tickets_workflow import signal_changed, start_ticket

log = logging.getLogger(__name__)

#: who works tickets (admin always may): agents and supervisors
STAFF = ("agent", "ops")
#: who may open the console: staff, and approvers of review chains (finance)
CONSOLE = ("agent", "ops", "finance")
SUPERVISORS = ("ops",)
STATUS_FILTERS = ("active", "open", "pending", "resolved", "closed", "all")
SCOPES = ("mine", "groups")
AVAILABILITY = ("online", "away", "offline")
NOTICES = frozenset({"claimed", "replied", "noted", "status", "priority", "transferred", "resolved", "decided",
                     "delegated", "step", "subtasks", "fields", "availability"})
LIST_LIMIT = 200

router = APIRouter(route_class=PageRoute, include_in_schema=False)
DbUrl = Annotated[str, Depends(get_db_url)]
Console = Annotated[User, Depends(page_user(*CONSOLE))]
Agent = Annotated[User, Depends(page_user(*STAFF))]
Supervisor = Annotated[User, Depends(page_user(*SUPERVISORS))]


# --- text ------------------------------------------------------------------------------------------

i18n.add({
    "zh-CN": {
        "tk.console": "坐席工作台", "tk.queue": "我的工单", "tk.supervisor": "主管视图", "tk.ticket": "工单",
        "tk.id": "编号", "tk.subject": "主题", "tk.group": "队列", "tk.priority": "优先级", "tk.status": "状态",
        "tk.assignee": "处理人", "tk.sla": "SLA", "tk.updated": "更新时间", "tk.created": "创建时间",
        "tk.unassigned": "未分配", "tk.claim": "认领", "tk.open": "打开", "tk.me": "我",
        "tk.empty": "没有符合条件的工单。", "tk.count": "共 {n} 个工单",
        "tk.scope.mine": "分配给我的和队列中未分配的", "tk.scope.groups": "我所在队列的全部工单",
        "tk.scope": "范围", "tk.queue.any": "全部队列", "tk.priority.any": "全部优先级",
        "tk.st.active": "处理中（待处理 + 等待客户）", "tk.st.all": "全部状态",
        "tk.st.open": "待处理", "tk.st.pending": "等待客户", "tk.st.resolved": "已解决", "tk.st.closed": "已关闭",
        "tk.not_agent": "你还没有被设置为坐席，所以队列里没有工单。请联系客服主管把你加入一个坐席组。",
        "tk.availability": "我的状态", "tk.av.online": "在线", "tk.av.away": "离开", "tk.av.offline": "离线",
        "tk.av.help": "只有「在线」的坐席会被自动分配新工单。", "tk.load": "当前负载 {load} / {capacity}",
        "tk.my_reviews": "等待我复核", "tk.my_reviews.none": "没有等待你复核的工单。",
        "tk.step": "第 {n} 级", "tk.sla.none": "无 SLA", "tk.sla.paused": "已暂停",
        "tk.sla.left": "剩余 {left}", "tk.sla.over": "超时 {left}", "tk.sla.done": "已停止",
        "tk.sla.ok": "正常", "tk.sla.warning": "即将超时", "tk.sla.breached": "已超时",
        "tk.sla.first_response": "首次响应", "tk.sla.next_response": "再次响应", "tk.sla.resolution": "解决",
        "tk.sla.help": "按工作时间（营业日历）计算。",
        "tk.dur.h": "{h}小时{m}分", "tk.dur.m": "{m}分钟", "tk.dur.s": "{s}秒",
        "tk.customer": "客户", "tk.customer.none": "没有关联客户", "tk.vip": "VIP {level}",
        "tk.order": "关联订单", "tk.refund": "退款", "tk.amount": "金额", "tk.reason": "原因",
        "tk.fields": "自定义字段", "tk.fields.none": "没有自定义字段。", "tk.fields.save": "保存字段",
        "tk.channel": "回复渠道", "tk.source": "来源", "tk.type": "类型", "tk.parent": "上级工单",
        "tk.timeline": "处理记录",
        "tk.reply": "回复客户", "tk.reply.help": "通过工单来源的渠道（{channel}）发送给客户。",
        "tk.reply.send": "发送回复", "tk.note": "内部备注", "tk.note.help": "只有同事能看到，不会发给客户。",
        "tk.note.add": "添加备注", "tk.change": "处理", "tk.set_priority": "修改优先级",
        "tk.set_status": "修改状态", "tk.status.reason": "说明（可选）", "tk.apply": "确定",
        "tk.transfer": "转交", "tk.transfer.group": "转到队列", "tk.transfer.agent": "转给坐席",
        "tk.transfer.keep": "（不变）", "tk.transfer.any": "（由队列分配）", "tk.transfer.note": "转交说明",
        "tk.resolve": "解决工单", "tk.resolve.reason": "解决说明（内部）",
        "tk.resolve.survey": "同时给客户发送满意度评价链接",
        "tk.review": "复核", "tk.review.none": "这个工单没有复核流程。", "tk.review.round": "第 {n} 轮",
        "tk.review.approver": "复核人", "tk.review.decided": "{who} 于 {at}", "tk.review.due": "截止 {at}",
        "tk.review.delegated": "已委托给 {who}",
        "tk.review.reason": "理由（驳回或退回时必填）", "tk.review.approve": "通过", "tk.review.reject": "驳回",
        "tk.review.send_back": "退回", "tk.review.delegate": "委托他人", "tk.review.delegate_to": "委托给",
        "tk.review.outcome.approved": "复核通过", "tk.review.outcome.rejected": "复核驳回",
        "tk.review.outcome.sent_back": "已退回坐席",
        "tk.rs.queued": "未开始", "tk.rs.waiting": "等待复核", "tk.rs.approved": "通过", "tk.rs.rejected": "驳回",
        "tk.rs.sent_back": "退回", "tk.rs.skipped": "跳过", "tk.rs.timed_out": "超时",
        "tk.approver.supervisor": "队列组长", "tk.approver.role": "角色：{role}", "tk.approver.user": "用户：{user}",
        "tk.steps": "待办步骤", "tk.steps.help": "流程在等待你完成这些步骤。", "tk.steps.outcome": "完成为",
        "tk.subtasks": "跨部门子任务", "tk.subtasks.none": "没有子任务。",
        "tk.subtasks.progress": "已完成 {done} / {total}（{percent}%）", "tk.subtasks.add": "新建子任务",
        "tk.subtasks.group": "部门（队列）", "tk.subtasks.subject": "子任务内容", "tk.subtasks.create": "创建子任务",
        "tk.csat": "满意度", "tk.csat.none": "客户尚未评价。", "tk.csat.score": "{score} / 5 分",
        "tk.csat.sent": "已发送评价链接",
        "tk.csat.message": "您的工单 #{id} 已处理完毕。请为本次服务打分：{url}",
        "tk.csat.title": "服务评价",
        "tk.csat.question": "您对本次服务满意吗？", "tk.csat.comment": "想对我们说的话（可选）",
        "tk.csat.submit": "提交评价",
        "tk.csat.thanks": "感谢您的评价！", "tk.csat.already": "这个工单已经评价过了，感谢！",
        "tk.csat.invalid": "这个评价链接无效或已过期。",
        "tk.csat.not_resolved": "工单还没有处理完毕，处理完成后再来评价吧。",
        "tk.csat.bad_score": "请选择 1 到 5 分。",
        "tk.csat.s1": "非常不满意", "tk.csat.s2": "不满意", "tk.csat.s3": "一般", "tk.csat.s4": "满意",
        "tk.csat.s5": "非常满意",
        "tk.sv.queues": "队列", "tk.sv.open": "待处理", "tk.sv.pending": "等待客户", "tk.sv.unassigned": "未分配",
        "tk.sv.breached": "已超时",
        "tk.sv.risk": "SLA 风险（一小时内到期或已超时）", "tk.sv.risk.none": "没有 SLA 风险。",
        "tk.sv.due": "到期", "tk.sv.metric": "指标", "tk.sv.agents": "坐席负载", "tk.sv.agent": "坐席",
        "tk.sv.capacity": "负载 / 容量", "tk.sv.groups": "所在队列", "tk.sv.queues.none": "没有处理中的工单。",
        "tk.sv.agents.none": "还没有坐席。", "tk.sv.availability": "在线状态",
        "tk.actor.system": "系统", "tk.actor.flow": "流程", "tk.actor.sla": "SLA", "tk.actor.review": "复核",
        "tk.actor.customer": "客户", "tk.actor.refund": "退款申请", "tk.actor.api": "API",
        "tk.ev.created": "创建工单（队列 {group}，{priority}）", "tk.ev.routed": "路由到 {group}（{priority}）",
        "tk.ev.assigned": "分配给 {assignee}（{strategy}）", "tk.ev.queued": "在队列 {group} 等待分配",
        "tk.ev.claimed": "认领了工单", "tk.ev.transferred": "转交到 {group}{assignee}",
        "tk.ev.reply": "回复客户", "tk.ev.customer_message": "客户留言", "tk.ev.note": "内部备注",
        "tk.ev.status": "状态：{before} → {after}", "tk.ev.priority": "优先级：{before} → {after}",
        "tk.ev.fields": "修改字段：{changed}", "tk.ev.sla_started": "开始计算 SLA",
        "tk.ev.sla_warning": "SLA 即将超时：{metric}", "tk.ev.sla_breach": "SLA 已超时：{metric}",
        "tk.ev.escalated": "升级处理：{steps}", "tk.ev.notified": "已通知 {who}（{channel}）",
        "tk.ev.review_opened": "发起复核：{steps}", "tk.ev.review_approve": "{step}（{name}）通过",
        "tk.ev.review_reject": "{step}（{name}）驳回", "tk.ev.review_send_back": "{step}（{name}）退回",
        "tk.ev.review_delegated": "{step} 委托给 {who}", "tk.ev.review_timeout": "{step}（{name}）超时",
        "tk.ev.review_outcome": "复核结果：{outcome}", "tk.ev.step_open": "等待步骤：{name}",
        "tk.ev.step_done": "完成步骤：{name} → {outcome}", "tk.ev.subtasks": "创建子任务 {children}",
        "tk.ev.csat": "客户评价：{score} / 5", "tk.ev.other": "{kind}",
        "tk.esc.notify_supervisor": "通知组长", "tk.esc.raise_priority": "提高优先级", "tk.esc.reassign": "重新分配",
        "tk.delivery": "送达：{status}", "tk.public": "客户可见", "tk.internal": "内部",
        "tk.notice.claimed": "已认领工单 #{id}。",
        "tk.notice.replied": "已回复客户。", "tk.notice.noted": "已添加备注。",
        "tk.notice.status": "已修改状态。", "tk.notice.priority": "已修改优先级。", "tk.notice.transferred": "已转交。",
        "tk.notice.resolved": "工单已解决。",
        "tk.notice.decided": "已记录复核决定。", "tk.notice.delegated": "已委托。",
        "tk.notice.step": "步骤已完成。", "tk.notice.subtasks": "已创建子任务。", "tk.notice.fields": "已保存字段。",
        "tk.notice.availability": "已更新你的状态。",
        "tk.err.unknown": "找不到工单 #{id}。", "tk.err.failed": "操作没有完成：{detail}",
        "tk.err.fix": "{hint}", "tk.err.capacity": "你手上的工单已达到容量上限，不能再认领。",
        "tk.err.capacity.fix": "先解决或转交一个工单。", "tk.err.empty": "内容不能为空。",
        "tk.err.empty.fix": "请填写内容后再提交。", "tk.err.reason": "驳回或退回需要填写理由。",
        "tk.err.reason.fix": "在理由框中说明原因后再提交。", "tk.err.approver": "你不是这一级的复核人。",
        "tk.err.approver.fix": "请由这一级的复核人处理，或请他委托给你。", "tk.err.not_agent": "你还没有被设置为坐席。",
        "tk.err.not_agent.fix": "请联系客服主管把你加入一个坐席组。",
        "tk.err.availability": "请选择在线、离开或离线。",
        "tk.err.group": "工单不在你所在的队列。", "tk.err.group.fix": "请主管把它转到你的队列。",
    },
    "en": {
        "tk.console": "Agent console", "tk.queue": "My tickets", "tk.supervisor": "Supervisor view",
        "tk.ticket": "Ticket", "tk.id": "No.", "tk.subject": "Subject", "tk.group": "Queue",
        "tk.priority": "Priority", "tk.status": "Status", "tk.assignee": "Assignee", "tk.sla": "SLA",
        "tk.updated": "Updated", "tk.created": "Created", "tk.unassigned": "Unassigned", "tk.claim": "Claim",
        "tk.open": "Open", "tk.me": "me", "tk.empty": "No tickets match.", "tk.count": "{n} tickets",
        "tk.scope.mine": "Assigned to me, and unassigned in my queues", "tk.scope.groups": "Everything in my queues",
        "tk.scope": "Scope", "tk.queue.any": "All queues", "tk.priority.any": "All priorities",
        "tk.st.active": "Active (open + pending)", "tk.st.all": "All statuses",
        "tk.st.open": "Open", "tk.st.pending": "Waiting on customer", "tk.st.resolved": "Resolved",
        "tk.st.closed": "Closed",
        "tk.not_agent": "You are not set up as an agent yet, so your queue is empty. Ask a supervisor to add you "
                        "to an agent group.",
        "tk.availability": "My status", "tk.av.online": "Online", "tk.av.away": "Away", "tk.av.offline": "Offline",
        "tk.av.help": "Only online agents get new tickets assigned.", "tk.load": "Load {load} / {capacity}",
        "tk.my_reviews": "Waiting for my review", "tk.my_reviews.none": "No reviews are waiting for you.",
        "tk.step": "Level {n}", "tk.sla.none": "no SLA", "tk.sla.paused": "paused",
        "tk.sla.left": "{left} left", "tk.sla.over": "{left} over", "tk.sla.done": "stopped",
        "tk.sla.ok": "on track", "tk.sla.warning": "breaches soon", "tk.sla.breached": "breached",
        "tk.sla.first_response": "first response", "tk.sla.next_response": "next response",
        "tk.sla.resolution": "resolution", "tk.sla.help": "Counted in business hours (the queue's calendar).",
        "tk.dur.h": "{h}h {m}m", "tk.dur.m": "{m} min", "tk.dur.s": "{s} s",
        "tk.customer": "Customer", "tk.customer.none": "No customer linked", "tk.vip": "VIP {level}",
        "tk.order": "Linked order", "tk.refund": "Refund", "tk.amount": "Amount", "tk.reason": "Reason",
        "tk.fields": "Custom fields", "tk.fields.none": "No custom fields.", "tk.fields.save": "Save fields",
        "tk.channel": "Reply channel", "tk.source": "Source", "tk.type": "Type", "tk.parent": "Parent ticket",
        "tk.timeline": "Timeline", "tk.reply": "Reply to the customer",
        "tk.reply.help": "Sent to the customer through the channel the ticket came from ({channel}).",
        "tk.reply.send": "Send reply", "tk.note": "Internal note", "tk.note.help": "Only colleagues see it; "
        "never sent to the customer.",
        "tk.note.add": "Add note", "tk.change": "Work the ticket", "tk.set_priority": "Change priority",
        "tk.set_status": "Change status", "tk.status.reason": "Reason (optional)", "tk.apply": "Apply",
        "tk.transfer": "Transfer", "tk.transfer.group": "To queue", "tk.transfer.agent": "To agent",
        "tk.transfer.keep": "(unchanged)", "tk.transfer.any": "(the queue assigns)", "tk.transfer.note": "Note",
        "tk.resolve": "Resolve", "tk.resolve.reason": "Resolution note (internal)",
        "tk.resolve.survey": "Also send the customer a satisfaction survey link",
        "tk.review": "Review", "tk.review.none": "This ticket has no review.", "tk.review.round": "round {n}",
        "tk.review.approver": "Approver", "tk.review.decided": "{who} at {at}", "tk.review.due": "due {at}",
        "tk.review.delegated": "delegated to {who}",
        "tk.review.reason": "Reason (required to reject or send back)", "tk.review.approve": "Approve",
        "tk.review.reject": "Reject", "tk.review.send_back": "Send back", "tk.review.delegate": "Delegate",
        "tk.review.delegate_to": "Delegate to",
        "tk.review.outcome.approved": "Review approved", "tk.review.outcome.rejected": "Review rejected",
        "tk.review.outcome.sent_back": "Sent back to the agent",
        "tk.rs.queued": "not yet", "tk.rs.waiting": "waiting", "tk.rs.approved": "approved",
        "tk.rs.rejected": "rejected", "tk.rs.sent_back": "sent back", "tk.rs.skipped": "skipped",
        "tk.rs.timed_out": "timed out",
        "tk.approver.supervisor": "queue supervisor", "tk.approver.role": "role: {role}",
        "tk.approver.user": "user: {user}",
        "tk.steps": "Open steps", "tk.steps.help": "The flow waits for you to finish these.",
        "tk.steps.outcome": "Finish as",
        "tk.subtasks": "Sub-tasks across departments", "tk.subtasks.none": "No sub-tasks.",
        "tk.subtasks.progress": "{done} of {total} done ({percent}%)", "tk.subtasks.add": "New sub-task",
        "tk.subtasks.group": "Department (queue)", "tk.subtasks.subject": "What to do",
        "tk.subtasks.create": "Create sub-task",
        "tk.csat": "Satisfaction", "tk.csat.none": "The customer has not rated yet.", "tk.csat.score": "{score} / 5",
        "tk.csat.sent": "survey link sent",
        "tk.csat.message": "Your ticket #{id} is resolved. Please rate our service: {url}",
        "tk.csat.title": "Rate our service", "tk.csat.question": "How satisfied are you with our service?",
        "tk.csat.comment": "Anything you want to tell us (optional)", "tk.csat.submit": "Send rating",
        "tk.csat.thanks": "Thank you for your rating!", "tk.csat.already": "This ticket has been rated already. "
        "Thank you!",
        "tk.csat.invalid": "This rating link is not valid.", "tk.csat.not_resolved": "The ticket is not resolved "
        "yet; please rate it once it is.",
        "tk.csat.bad_score": "Choose 1 to 5.",
        "tk.csat.s1": "Very dissatisfied", "tk.csat.s2": "Dissatisfied", "tk.csat.s3": "Neutral",
        "tk.csat.s4": "Satisfied", "tk.csat.s5": "Very satisfied",
        "tk.sv.queues": "Queues", "tk.sv.open": "Open", "tk.sv.pending": "Waiting on customer",
        "tk.sv.unassigned": "Unassigned", "tk.sv.breached": "Breached",
        "tk.sv.risk": "SLA risk (due within the hour, or breached)", "tk.sv.risk.none": "No SLA risk.",
        "tk.sv.due": "Due", "tk.sv.metric": "Metric", "tk.sv.agents": "Agent load", "tk.sv.agent": "Agent",
        "tk.sv.capacity": "Load / capacity", "tk.sv.groups": "Queues", "tk.sv.queues.none": "No active tickets.",
        "tk.sv.agents.none": "No agents yet.", "tk.sv.availability": "Availability",
        "tk.actor.system": "system", "tk.actor.flow": "flow", "tk.actor.sla": "SLA", "tk.actor.review": "review",
        "tk.actor.customer": "customer", "tk.actor.refund": "refund request", "tk.actor.api": "API",
        "tk.ev.created": "Created (queue {group}, {priority})", "tk.ev.routed": "Routed to {group} ({priority})",
        "tk.ev.assigned": "Assigned to {assignee} ({strategy})", "tk.ev.queued": "Waiting in queue {group}",
        "tk.ev.claimed": "Claimed the ticket", "tk.ev.transferred": "Transferred to {group}{assignee}",
        "tk.ev.reply": "Reply to the customer", "tk.ev.customer_message": "Customer wrote",
        "tk.ev.note": "Internal note", "tk.ev.status": "Status: {before} → {after}",
        "tk.ev.priority": "Priority: {before} → {after}", "tk.ev.fields": "Fields changed: {changed}",
        "tk.ev.sla_started": "SLA started", "tk.ev.sla_warning": "SLA breaches soon: {metric}",
        "tk.ev.sla_breach": "SLA breached: {metric}", "tk.ev.escalated": "Escalated: {steps}",
        "tk.ev.notified": "Notified {who} ({channel})", "tk.ev.review_opened": "Review opened: {steps}",
        "tk.ev.review_approve": "{step} ({name}) approved", "tk.ev.review_reject": "{step} ({name}) rejected",
        "tk.ev.review_send_back": "{step} ({name}) sent back", "tk.ev.review_delegated": "{step} delegated to {who}",
        "tk.ev.review_timeout": "{step} ({name}) timed out", "tk.ev.review_outcome": "Review outcome: {outcome}",
        "tk.ev.step_open": "Waiting for step: {name}", "tk.ev.step_done": "Step done: {name} → {outcome}",
        "tk.ev.subtasks": "Sub-tasks created {children}", "tk.ev.csat": "Customer rating: {score} / 5",
        "tk.ev.other": "{kind}",
        "tk.esc.notify_supervisor": "notify the supervisor", "tk.esc.raise_priority": "raise the priority",
        "tk.esc.reassign": "reassign",
        "tk.delivery": "delivery: {status}", "tk.public": "customer sees it", "tk.internal": "internal",
        "tk.notice.claimed": "You claimed ticket #{id}.", "tk.notice.replied": "Reply sent to the customer.",
        "tk.notice.noted": "Note added.", "tk.notice.status": "Status changed.",
        "tk.notice.priority": "Priority changed.", "tk.notice.transferred": "Transferred.",
        "tk.notice.resolved": "Ticket resolved.", "tk.notice.decided": "Your review decision is recorded.",
        "tk.notice.delegated": "Delegated.", "tk.notice.step": "Step done.", "tk.notice.subtasks": "Sub-task created.",
        "tk.notice.fields": "Fields saved.", "tk.notice.availability": "Your status is updated.",
        "tk.err.unknown": "There is no ticket #{id}.", "tk.err.failed": "That did not work: {detail}",
        "tk.err.fix": "{hint}", "tk.err.capacity": "You already hold as many open tickets as your capacity allows.",
        "tk.err.capacity.fix": "Resolve or transfer one first.", "tk.err.empty": "The text is empty.",
        "tk.err.empty.fix": "Write something, then send it.", "tk.err.reason": "Rejecting or sending back needs "
        "a reason.",
        "tk.err.reason.fix": "Write the reason in the reason box, then decide again.",
        "tk.err.approver": "You are not the approver of this level.",
        "tk.err.approver.fix": "Its approver decides it, or delegates it to you.",
        "tk.err.not_agent": "You are not set up as an agent.",
        "tk.err.not_agent.fix": "Ask a supervisor to add you to an agent group.",
        "tk.err.availability": "Choose online, away or offline.",
        "tk.err.group": "The ticket is not in one of your queues.",
        "tk.err.group.fix": "Ask a supervisor to transfer it to your queue.",
    },
})


# --- small pure helpers ----------------------------------------------------------------------------


def duration_text(t: i18n.Text, span: timedelta) -> str:
    """``1小时20分`` / ``1h 20m``; minutes under an hour, seconds under a minute."""
    seconds = int(abs(span.total_seconds()))
    if seconds >= 3600:
        return t["tk.dur.h"].format(h=seconds // 3600, m=(seconds % 3600) // 60)
    if seconds >= 60:
        return t["tk.dur.m"].format(m=seconds // 60)
    return t["tk.dur.s"].format(s=seconds)


@dataclass(frozen=True)
class SlaBadge:
    """What the console shows for a ticket's SLA: ``state`` is none, paused, done, ok, warning or breached."""

    state: str
    text: str
    metric: str = ""
    due: datetime | None = None


def sla_badge(t: i18n.Text, ticket: models.Ticket, now: datetime) -> SlaBadge:
    """The most urgent running SLA clock of ``ticket``: business time left (or over) to its breach."""
    state = sla.SlaState.load(ticket.sla)
    if not state.policy:
        return SlaBadge("none", t["tk.sla.none"])
    if ticket.status in ("resolved", "closed"):
        breached = any(k.endswith(":breach") for k in state.fired)
        return SlaBadge("breached" if breached else "done", t["tk.sla.breached"] if breached else t["tk.sla.done"])
    if state.paused:
        return SlaBadge("paused", t["tk.sla.paused"])
    points = [p for p in service.view(ticket)["sla"]["checkpoints"] if p["stage"] == "breach" and p["due"]]
    if not points:
        return SlaBadge("done", t["tk.sla.done"])
    point = min(points, key=lambda p: p["due"])
    due = datetime.fromisoformat(point["due"])
    metric = t.get(f"tk.sla.{point['metric']}", point["metric"])
    calendar = sla.calendar_of(state.calendar)
    if point["fired"] or due <= now:
        over = business_time_between(calendar, due, now) if due <= now else timedelta(0)
        return SlaBadge("breached", t["tk.sla.over"].format(left=duration_text(t, over)), metric, due)
    left = business_time_between(calendar, now, due)
    warn_text = (state.policy or {}).get("warn_before")
    warn = _parse(warn_text) if warn_text else None
    warned = f"{point['key'].removesuffix(':breach')}:warning" in state.fired
    level = "warning" if warned or (warn is not None and left <= warn) else "ok"
    return SlaBadge(level, t["tk.sla.left"].format(left=duration_text(t, left)), metric, due)


def _parse(text: str) -> timedelta | None:
    from engine.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError:
        return None


def csat_token(ticket_id: int, key: str | None = None) -> str:
    """The unforgeable token of a ticket's satisfaction link: HMAC-SHA256 of the ticket id under a key
    derived from the instance key (never the key itself)."""
    secret = hashlib.sha256(b"tideflow/csat/v1\x00" + (key or instance_key()).encode()).digest()
    return hmac.new(secret, f"ticket:{ticket_id}".encode(), hashlib.sha256).hexdigest()[:40]


def csat_ok(ticket_id: int, token: str, key: str | None = None) -> bool:
    return hmac.compare_digest(csat_token(ticket_id, key).encode(), token.encode())


def csat_url(request: Request, ticket_id: int) -> str:
    return str(request.base_url).rstrip("/") + f"/csat/{ticket_id}/{csat_token(ticket_id)}"


# --- who sees what -----------------------------------------------------------------------------------


def _is_staff(user: User) -> bool:
    return auth.has_role(user, *STAFF)


def _involved(rows: Sequence[models.TicketReview], user: User) -> bool:
    """The user is (or stands in for) an approver of the ticket's review: they may see it to decide."""
    return any(user.id in (r.approver_id, r.delegated_to) or r.approver == f"role:{user.role}"
               or r.approver == f"user:{user.username}" for r in rows)


def _ticket_for(db: Session, user: User, ticket_id: int, lock: bool = False) -> tuple[models.Ticket, bool]:
    """The ticket and whether the user may work it (else they only decide its review). 404 page when
    they may not see it at all — the same answer as for a ticket that does not exist."""
    try:
        ticket = service.get_ticket(db, ticket_id, lock=lock)
    except TicketError:
        raise _unknown(user, ticket_id) from None
    if _is_staff(user) and service.may_see(db, user, ticket):
        return ticket, True
    if _involved(service.review_rows(db, ticket_id), user):
        return ticket, False
    raise _unknown(user, ticket_id)


def _unknown(user: User, ticket_id: int) -> PageProblem:
    return PageProblem(404, user, "pg.notfound", "tk.err.unknown", back="/tickets", id=str(ticket_id))


def _problem(user: User, exc: TicketError | FieldProblem, back: str) -> PageProblem:
    """A refused change as the problem page, in the user's language where we know the case."""
    status = exc.status if isinstance(exc, TicketError) else 422
    known = {"capacity": "tk.err.capacity", "body": "tk.err.empty"}
    key = known.get(exc.field or "")
    if isinstance(exc, TicketError) and exc.field == "decision" and "reason" in exc.message:
        key = "tk.err.reason"
    elif isinstance(exc, TicketError) and exc.field == "step" and status == 403:
        key = "tk.err.approver"
    elif isinstance(exc, TicketError) and exc.field == "id" and status == 403:
        key = "tk.err.group"
    if key:
        return PageProblem(status, user, "pg.conflict", key, f"{key}.fix", back=back)
    return PageProblem(status, user, "pg.conflict", "tk.err.failed", "tk.err.fix" if exc.fix else "", back=back,
                       detail=exc.message, hint=exc.fix)


def _names(db: Session, ids: set[int]) -> dict[int, str]:
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return {u.id: u.display_name or u.username for u in db.scalars(select(User).where(User.id.in_(ids)))}


def _actor(t: i18n.Text, actor: str, names: dict[int, str]) -> str:
    if actor.startswith("user:") and actor[5:].isdigit():
        return names.get(int(actor[5:]), actor)
    return t.get(f"tk.actor.{actor}", actor)


def _notice(t: i18n.Text, request: Request) -> str | None:
    notice = request.query_params.get("done")
    if notice in NOTICES:
        return t[f"tk.notice.{notice}"].format(id=request.query_params.get("id", ""))
    return None


# --- the workflow side ----------------------------------------------------------------------------------


async def _changed(request: Request, ticket_id: int, what: str, parent_id: int | None = None) -> None:
    """Wake the ticket's workflow (and its parent's) so SLA deadlines and waiting nodes look again."""
    engine_router = getattr(request.app.state, "router", None)
    if engine_router is None:
        return  # no Temporal: the workflow re-reads the ticket on its next wake-up
    for tid in (ticket_id, parent_id):
        if tid is None:
            continue
        try:
            await signal_changed(engine_router.client, tid, what)
        except Exception as exc:
            log.warning("ticket %s: signal not delivered (%s)", tid, type(exc).__name__)


async def _start(request: Request, db_url: str, ticket_id: int) -> None:
    engine_router = getattr(request.app.state, "router", None)
    if engine_router is None:
        return
    try:
        await start_ticket(engine_router.client, db_url, engine_router.task_queue, ticket_id)
    except Exception as exc:
        log.warning("ticket %s: workflow start deferred (%s)", ticket_id, type(exc).__name__)


def _change(db_url: str, user: User, ticket_id: int, work: Callable[[Session, models.Ticket], Any],
            staff_only: bool = True) -> tuple[Any, int | None]:
    """Run ``work`` on the (locked, visible) ticket in one transaction; the result and the parent id."""
    back = f"/tickets/{ticket_id}"
    try:
        with transaction(db_url) as db:
            ticket, may_work = _ticket_for(db, user, ticket_id, lock=True)
            if staff_only and not may_work:
                raise _unknown(user, ticket_id)
            return work(db, ticket), ticket.parent_id
    except (TicketError, FieldProblem) as exc:
        raise _problem(user, exc, back) from None


async def _act(request: Request, db_url: str, user: User, ticket_id: int, what: str,
               work: Callable[[Session, models.Ticket], Any], staff_only: bool = True) -> Any:
    result, parent = await run_in_threadpool(_change, db_url, user, ticket_id, work, staff_only)
    await _changed(request, ticket_id, what, parent)
    return result


def _back(ticket_id: int, done: str) -> Response:
    return _see_other(f"/tickets/{ticket_id}?done={done}")


# --- the queue ----------------------------------------------------------------------------------------


def _groups(db: Session) -> dict[str, str]:
    return {g.key: g.name for g in db.scalars(select(models.AgentGroup).order_by(models.AgentGroup.key))}


def _customer_names(db: Session, tickets: Sequence[models.Ticket]) -> dict[str, str]:
    wanted = {t.customer_id for t in tickets if t.customer_id}
    if not wanted:
        return {}
    return {str(i): str(n) for i, n in db.execute(select(models.Customer.id, models.Customer.name)
                                                  .where(models.Customer.id.in_(wanted))).all() if n}


def ticket_row(t: i18n.Text, ticket: models.Ticket, user: User, my_groups: Sequence[str] | None,
               names: dict[int, str], customers: dict[str, str], now: datetime) -> dict[str, Any]:
    """One line of a ticket list."""
    mine = ticket.assignee_id == user.id
    in_group = my_groups is None or ticket.group_key in my_groups
    return {"ticket": ticket, "sla": sla_badge(t, ticket, now), "mine": mine,
            "assignee": names.get(ticket.assignee_id) if ticket.assignee_id is not None else None,
            "customer": customers.get(ticket.customer_id or ""),
            "may_claim": (_is_staff(user) and in_group and not mine and ticket.status in service.OPEN_STATUSES)}


def _my_groups(db: Session, user: User) -> list[str] | None:
    """The queues the user works: None = every queue (ops and admin)."""
    if user.role in ("admin", "ops"):
        return None
    return service.agent_groups_of(db, user.id)


def _waiting_reviews(db: Session, user: User) -> list[dict[str, Any]]:
    rows = db.scalars(select(models.TicketReview).where(models.TicketReview.status == "waiting")
                      .order_by(models.TicketReview.started_at, models.TicketReview.id).limit(LIST_LIMIT)).all()
    mine = [r for r in rows if review.may_decide(user.id, user.role, user.username, r.approver, r.approver_id,
                                                 r.delegated_to)]
    tickets = {t.id: t for t in db.scalars(select(models.Ticket).where(
        models.Ticket.id.in_([r.ticket_id for r in mine])))} if mine else {}
    return [{"row": r, "ticket": tickets[r.ticket_id]} for r in mine if r.ticket_id in tickets]


def _agent_me(db: Session, user: User) -> dict[str, Any] | None:
    agent = db.get(models.Agent, user.id)
    if agent is None:
        return None
    group = db.get(models.AgentGroup, (agent.groups or ["default"])[0]) if agent.groups else None
    capacity = agent.capacity or (group.capacity if group else 10)
    return {"availability": agent.availability, "load": service.loads(db, [user.id])[user.id],
            "capacity": capacity, "groups": list(agent.groups or [])}


def _queue_context(request: Request, user: User, db_url: str, status: str, priority: str, queue: str,
                   scope: str) -> dict[str, Any]:
    _lang, t = i18n.text_for(request)
    now = utcnow()
    with session_factory(db_url)() as db:
        groups = _groups(db)
        my_groups = _my_groups(db, user)
        rows: list[dict[str, Any]] = []
        total = 0
        if _is_staff(user):
            query = select(models.Ticket)
            visible = models.Ticket.assignee_id == user.id
            if my_groups is not None:
                in_groups = models.Ticket.group_key.in_(my_groups)
            else:
                in_groups = models.Ticket.group_key.is_not(None)
            if scope == "groups":
                query = query.where(in_groups | visible)
            else:
                query = query.where(visible | (in_groups & models.Ticket.assignee_id.is_(None)))
            if status == "active":
                query = query.where(models.Ticket.status.in_(service.OPEN_STATUSES))
            elif status != "all":
                query = query.where(models.Ticket.status == status)
            if priority:
                query = query.where(models.Ticket.priority == priority)
            if queue:
                query = query.where(models.Ticket.group_key == queue)
            tickets = list(db.scalars(query.order_by(models.Ticket.priority, models.Ticket.id.desc())
                                      .limit(LIST_LIMIT)))
            total = len(tickets)
            names = _names(db, {t_.assignee_id for t_ in tickets if t_.assignee_id is not None})
            customers = _customer_names(db, tickets)
            rows = [ticket_row(t, x, user, my_groups, names, customers, now) for x in tickets]
        reviews = _waiting_reviews(db, user)
        me = _agent_me(db, user)
    shown_groups = {k: v for k, v in groups.items() if my_groups is None or k in my_groups}
    return {"rows": rows, "total": total, "reviews": reviews, "me": me, "groups": shown_groups,
            "all_groups": groups, "status": status, "priority": priority, "queue": queue, "scope": scope,
            "statuses": STATUS_FILTERS, "priorities": service.PRIORITIES, "scopes": SCOPES,
            "is_staff": _is_staff(user), "is_supervisor": auth.has_role(user, *SUPERVISORS),
            "availabilities": AVAILABILITY, "notice": _notice(t, request)}


@router.get("/tickets", response_class=HTMLResponse)
def queue_page(request: Request, user: Console, db_url: DbUrl, status: str = "active", priority: str = "",
               queue: str = "", scope: str = "mine") -> HTMLResponse:
    """My queue: assigned to me and unassigned in my groups' queues; reviews waiting for me."""
    status = status if status in STATUS_FILTERS else "active"
    priority = priority if priority in service.PRIORITIES else ""
    scope = scope if scope in SCOPES else "mine"
    context = _queue_context(request, user, db_url, status, priority, queue.strip()[:60], scope)
    if request.headers.get("HX-Request") and request.headers.get("HX-Target") == "tk-list":
        return _render(request, user, "tickets/list.html", **context)
    return _render(request, user, "tickets/queue.html", **context)


@router.post("/tickets/{ticket_id}/claim", response_class=HTMLResponse)
async def claim(request: Request, ticket_id: int, user: Agent, db_url: DbUrl,
                back: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """Take the ticket. htmx gets the ticket's row back; a plain form goes back where it came from."""
    await _act(request, db_url, user, ticket_id, "claim", lambda db, tk: service.claim(db, tk, user, utcnow()))
    if request.headers.get("HX-Request"):
        _lang, t = i18n.text_for(request)
        with session_factory(db_url)() as db:
            ticket = service.get_ticket(db, ticket_id)
            row = ticket_row(t, ticket, user, _my_groups(db, user), _names(db, {user.id}),
                             _customer_names(db, [ticket]), utcnow())
            groups = _groups(db)
        return _render(request, user, "tickets/row.html", row=row, groups=groups)
    target = safe_next(back) if back else f"/tickets/{ticket_id}"
    return _see_other(_with_query(target, done="claimed", id=str(ticket_id)))


@router.post("/tickets/me/availability", response_class=HTMLResponse)
def set_availability(request: Request, user: Console, db_url: DbUrl,
                     availability: Annotated[str, Form(max_length=20)] = "",
                     back: Annotated[str, Form(max_length=2000)] = "/tickets") -> Response:
    """Online / away / offline: only online agents get new tickets."""
    if availability not in AVAILABILITY:
        raise PageProblem(422, user, "pg.conflict", "tk.err.availability", "tk.av.help", back="/tickets")
    with transaction(db_url) as db:
        agent = db.get(models.Agent, user.id)
        if agent is None:
            raise PageProblem(404, user, "pg.notfound", "tk.err.not_agent", "tk.err.not_agent.fix", back="/tickets")
        agent.availability, agent.updated_at = availability, utcnow()
        me = _agent_me(db, user)
    if request.headers.get("HX-Request"):
        return _render(request, user, "tickets/availability.html", me=me, availabilities=AVAILABILITY)
    return _see_other(_with_query(safe_next(back), done="availability"))


# --- the supervisor's view ------------------------------------------------------------------------------


@router.get("/tickets/supervisor", response_class=HTMLResponse)
def supervisor_page(request: Request, user: Supervisor, db_url: DbUrl) -> HTMLResponse:
    """Queues with counts, SLA risk (due within the hour or breached) and agent load vs capacity."""
    _lang, t = i18n.text_for(request)
    now = utcnow()
    with session_factory(db_url)() as db:
        summary = service.summary(db, now)
        groups = _groups(db)
        risk_ids = [r["id"] for r in summary["sla_at_risk"]]
        breached = [x for x in db.scalars(select(models.Ticket).where(
            models.Ticket.status.in_(service.OPEN_STATUSES))) if sla_badge(t, x, now).state == "breached"]
        wanted = {x.id for x in breached} | set(risk_ids)
        tickets = {x.id: x for x in db.scalars(select(models.Ticket).where(models.Ticket.id.in_(wanted)))} \
            if wanted else {}
        names = _names(db, {x.assignee_id for x in tickets.values() if x.assignee_id is not None})
        risk = sorted((ticket_row(t, x, user, None, names, _customer_names(db, [x]), now) for x in tickets.values()),
                      key=lambda r: (r["sla"].due or now))
        agents = summary["agents"]
        for agent in agents:
            row = db.get(models.Agent, agent["user_id"])
            first = db.get(models.AgentGroup, (row.groups or ["default"])[0]) if row and row.groups else None
            agent["capacity"] = agent["capacity"] or (first.capacity if first else 10)
            agent["percent"] = min(100, round(100 * agent["load"] / agent["capacity"])) if agent["capacity"] else 0
    queues = [{"key": k, "name": groups.get(k, k), **v} for k, v in sorted(summary["queues"].items())]
    return _render(request, user, "tickets/supervisor.html", queues=queues, risk=risk, agents=agents,
                   groups=groups, is_staff=True, is_supervisor=True, notice=_notice(t, request))


# --- one ticket ---------------------------------------------------------------------------------------


def timeline_entry(t: i18n.Text, event: models.TicketEvent, names: dict[int, str], groups: dict[str, str]
                   ) -> dict[str, Any]:
    """One line of the timeline: who, when, what (localised), the text if any, public or internal."""
    data = dict(event.data or {})

    def group(key: Any) -> str:
        return groups.get(str(key), str(key)) if key else ""

    def person(uid: Any) -> str:
        return names.get(int(uid), str(uid)) if isinstance(uid, int) else (str(uid) if uid else "")

    step = t["tk.step"].format(n=data.get("step", "?"))
    values: dict[str, Any] = {
        "group": group(data.get("group")), "priority": data.get("priority", ""),
        "assignee": person(data.get("assignee_id")), "strategy": data.get("strategy", ""),
        "before": t.get(f"tk.st.{data.get('before')}", str(data.get("before", ""))),
        "after": t.get(f"tk.st.{data.get('after')}", str(data.get("after", ""))),
        "changed": ", ".join(str(c) for c in data.get("changed") or []),
        "metric": t.get(f"tk.sla.{data.get('metric', '')!s}", str(data.get("metric", ""))),
        "steps": "、".join(t.get(f"tk.esc.{s}", str(s)) for s in data.get("steps") or []),
        "who": person(data.get("to")) if isinstance(data.get("to"), int) else (data.get("username") or ""),
        "channel": data.get("channel", ""), "step": step, "name": data.get("name", ""),
        "outcome": t.get(f"tk.review.outcome.{data.get('outcome')}", str(data.get("outcome", ""))),
        "children": " ".join(f"#{c}" for c in data.get("children") or []), "score": data.get("score", ""),
        "kind": event.kind,
    }
    if event.kind == "priority":
        values["before"], values["after"] = data.get("before", ""), data.get("after", "")
    if event.kind == "transferred" and data.get("assignee_id") is not None:
        values["assignee"] = " · " + person(data.get("assignee_id"))
    if event.kind == "review_opened":
        values["steps"] = " → ".join(str(s) for s in data.get("steps") or [])
    if event.kind == "step_done":
        values["outcome"] = data.get("outcome", "")
    key = f"tk.ev.{event.kind}"
    label = (t[key] if key in t else t["tk.ev.other"]).format(**values)
    css = {"reply": "public", "customer_message": "customer", "note": "internal", "sla_warning": "warning",
           "sla_breach": "breach", "escalated": "breach", "review_reject": "breach", "csat": "public"}
    body = event.body if event.kind in ("reply", "customer_message", "note", "transferred", "status",
                                        "review_reject", "review_send_back", "review_approve",
                                        "review_delegated", "step_done") else ""
    if event.kind == "csat":
        body = str(data.get("comment") or "")
    return {"id": event.id, "at": event.at, "kind": event.kind, "label": label, "body": mask_text(body),
            "actor": _actor(t, event.actor, names), "public": event.public, "css": css.get(event.kind, ""),
            "delivery": data.get("delivery") if event.kind == "reply" else None}


def _approver_text(t: i18n.Text, approver: str) -> str:
    if approver == "supervisor":
        return t["tk.approver.supervisor"]
    if approver.startswith("role:"):
        role = approver.removeprefix("role:")
        return t["tk.approver.role"].format(role=t.get(f"role.{role}", role))
    return t["tk.approver.user"].format(user=approver.removeprefix("user:"))


def _review_panel(t: i18n.Text, db: Session, user: User, ticket_id: int) -> dict[str, Any] | None:
    rows = service.review_rows(db, ticket_id)
    if not rows:
        return None
    people = _names(db, {x for r in rows for x in (r.approver_id, r.decided_by, r.delegated_to) if x is not None})
    steps = []
    for r in rows:
        may = r.status == "waiting" and review.may_decide(user.id, user.role, user.username, r.approver,
                                                          r.approver_id, r.delegated_to)
        steps.append({"row": r, "n": r.step + 1, "approver": _approver_text(t, r.approver),
                      "approver_name": people.get(r.approver_id) if r.approver_id else None,
                      "decided_by": people.get(r.decided_by) if r.decided_by else None,
                      "delegated_to": people.get(r.delegated_to) if r.delegated_to else None,
                      "status_text": t.get(f"tk.rs.{r.status}", r.status), "may_decide": may})
    outcome = service.outcome_of(rows)
    delegates = [{"id": u.id, "name": u.display_name or u.username, "role": u.role}
                 for u in db.scalars(select(User).where(User.role.in_(("ops", "finance", "agent", "admin")),
                                                        User.disabled_at.is_(None), User.id != user.id)
                                     .order_by(User.username))]
    return {"round": rows[0].round, "chain": rows[0].chain, "steps": steps, "outcome": outcome,
            "outcome_text": t.get(f"tk.review.outcome.{outcome}", outcome or ""), "delegates": delegates}


def _csat(db: Session, ticket_id: int) -> dict[str, Any] | None:
    found = db.scalar(select(models.TicketEvent).where(models.TicketEvent.key == f"csat/{ticket_id}"))
    if found is None:
        return None
    return {"score": int(found.data.get("score", 0)), "comment": mask_text(str(found.data.get("comment") or "")),
            "at": found.at}


def _customer_panel(t: i18n.Text, db: Session, ticket: models.Ticket) -> dict[str, Any] | None:
    if not ticket.customer_id:
        return None
    customer = db.get(models.Customer, ticket.customer_id)
    if customer is None:
        return None
    identities = [{"kind": i.kind, "value": mask_identity(i.kind, i.value)}
                  for i in db.scalars(select(models.Identity).where(models.Identity.customer_id == customer.id)
                                      .order_by(models.Identity.kind))]
    tags = list(db.scalars(select(models.CustomerTag.tag).where(models.CustomerTag.customer_id == customer.id)
                           .order_by(models.CustomerTag.tag)))
    attributes = dict(customer.attributes or {})
    return {"id": customer.id, "name": customer.name, "identities": identities, "tags": tags,
            "vip": attributes.get("vip_level")}


def _order_panel(db: Session, ticket: models.Ticket) -> dict[str, Any]:
    order = refund = None
    if ticket.order_id and ticket.order_channel and ticket.order_shop:
        order = db.scalar(select(models.Order).where(models.Order.channel == ticket.order_channel,
                                                     models.Order.shop == ticket.order_shop,
                                                     models.Order.order_id == ticket.order_id))
    if ticket.refund_id and ticket.order_channel and ticket.order_shop:
        refund = db.scalar(select(models.Refund).where(models.Refund.channel == ticket.order_channel,
                                                       models.Refund.shop == ticket.order_shop,
                                                       models.Refund.refund_id == ticket.refund_id))
    return {"order": order, "refund": refund}


def yuan(fen: int | None) -> str:
    """¥1,234.56 from integer fen (exact: no floats)."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


templates.env.filters["yuan"] = yuan


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket_page(request: Request, ticket_id: int, user: Console, db_url: DbUrl) -> HTMLResponse:
    """One ticket: customer, order, fields, timeline, actions, review chain, steps and sub-tasks."""
    _lang, t = i18n.text_for(request)
    now = utcnow()
    with session_factory(db_url)() as db:
        ticket, may_work = _ticket_for(db, user, ticket_id)
        events = list(db.scalars(select(models.TicketEvent).where(models.TicketEvent.ticket_id == ticket_id)
                                 .order_by(models.TicketEvent.at, models.TicketEvent.id)))
        ids: set[int] = {ticket.assignee_id} if ticket.assignee_id is not None else set()
        for e in events:
            if e.actor.startswith("user:") and e.actor[5:].isdigit():
                ids.add(int(e.actor[5:]))
            for k in ("assignee_id", "to", "previous"):
                if isinstance((e.data or {}).get(k), int):
                    ids.add(int(e.data[k]))
        names = _names(db, ids)
        groups = _groups(db)
        kind = db.get(models.TicketType, ticket.type_key)
        field_defs = list(kind.fields or []) if kind else []
        progress = service.progress(db, ticket_id)
        sub_names = _names(db, {s["assignee_id"] for s in progress["subtasks"] if s["assignee_id"] is not None})
        for s in progress["subtasks"]:
            s["assignee"] = sub_names.get(s["assignee_id"]) if s["assignee_id"] is not None else None
            s["group_name"] = groups.get(s["group"], s["group"])
        agents = []
        if may_work:
            everyone = db.scalars(select(models.Agent).order_by(models.Agent.user_id)).all()
            agent_names = _names(db, {a.user_id for a in everyone})
            agents = [{"id": a.user_id, "name": agent_names.get(a.user_id, str(a.user_id)),
                       "groups": list(a.groups or [])} for a in everyone]
        context = {
            "ticket": ticket, "may_work": may_work, "kind": kind, "badge": sla_badge(t, ticket, now),
            "timeline": [timeline_entry(t, e, names, groups) for e in events],
            "assignee": names.get(ticket.assignee_id) if ticket.assignee_id is not None else None,
            "customer": _customer_panel(t, db, ticket), **_order_panel(db, ticket),
            "fields": [{"key": f.get("key"), "label": f.get("label") or f.get("key"), "type": f.get("type", "text"),
                        "choices": f.get("choices") or [], "value": (ticket.fields or {}).get(f.get("key"))}
                       for f in field_defs],
            "extra_fields": {k: v for k, v in (ticket.fields or {}).items()
                             if k not in {f.get("key") for f in field_defs}},
            "review": _review_panel(t, db, user, ticket_id), "steps": service.open_steps(db, ticket_id),
            "progress": progress, "csat": _csat(db, ticket_id), "groups": groups, "agents": agents,
            "group_name": groups.get(ticket.group_key, ticket.group_key),
            "parent": db.get(models.Ticket, ticket.parent_id) if ticket.parent_id else None,
            "may_claim": may_work and ticket.assignee_id != user.id and ticket.status in service.OPEN_STATUSES,
            "is_open": ticket.status in service.OPEN_STATUSES, "statuses": service.STATUSES,
            "priorities": service.PRIORITIES, "me": _agent_me(db, user), "availabilities": AVAILABILITY,
            "is_staff": _is_staff(user), "is_supervisor": auth.has_role(user, *SUPERVISORS),
            "may_see_customers": auth.has_role(user, *CUSTOMER_READERS),
            "csat_sent": any(e.kind == "reply" and (e.data or {}).get("csat") for e in events),
        }
    return _render(request, user, "tickets/detail.html", notice=_notice(t, request), **context)


@router.post("/tickets/{ticket_id}/reply", response_class=HTMLResponse)
async def reply(request: Request, ticket_id: int, user: Agent, db_url: DbUrl,
                body: Annotated[str, Form(max_length=20000)] = "") -> Response:
    """A public reply, sent to the customer through the ticket's channel (once)."""
    event_id = await _act(request, db_url, user, ticket_id, "reply",
                          lambda db, tk: service.reply(db, tk, body, utcnow(), service.actor_of(user)).id)
    await run_in_threadpool(service.deliver_reply, db_url, ticket_id, event_id)
    return _back(ticket_id, "replied")


@router.post("/tickets/{ticket_id}/note", response_class=HTMLResponse)
async def note(request: Request, ticket_id: int, user: Agent, db_url: DbUrl,
               body: Annotated[str, Form(max_length=20000)] = "") -> Response:
    """An internal note: never sent to the customer."""
    await _act(request, db_url, user, ticket_id, "note",
               lambda db, tk: service.note(db, tk, body, utcnow(), service.actor_of(user)))
    return _back(ticket_id, "noted")


@router.post("/tickets/{ticket_id}/priority", response_class=HTMLResponse)
async def priority(request: Request, ticket_id: int, user: Agent, db_url: DbUrl,
                   value: Annotated[str, Form(alias="priority", max_length=4)] = "") -> Response:
    """A new priority: the SLA deadlines follow."""
    await _act(request, db_url, user, ticket_id, "priority",
               lambda db, tk: service.set_priority(db, tk, value, utcnow(), service.actor_of(user)))
    return _back(ticket_id, "priority")


@router.post("/tickets/{ticket_id}/status", response_class=HTMLResponse)
async def status(request: Request, ticket_id: int, user: Agent, db_url: DbUrl,
                 value: Annotated[str, Form(alias="status", max_length=12)] = "",
                 reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """open / pending (waiting on the customer: the SLA clocks pause) / resolved / closed."""
    await _act(request, db_url, user, ticket_id, "status",
               lambda db, tk: service.set_status(db, tk, value, utcnow(), service.actor_of(user), reason))
    return _back(ticket_id, "status")


@router.post("/tickets/{ticket_id}/transfer", response_class=HTMLResponse)
async def transfer(request: Request, ticket_id: int, user: Agent, db_url: DbUrl,
                   group: Annotated[str, Form(max_length=60)] = "",
                   assignee: Annotated[str, Form(max_length=20)] = "",
                   note_text: Annotated[str, Form(alias="note", max_length=2000)] = "") -> Response:
    """Another queue and/or agent. An agent who hands the ticket to another queue no longer sees it."""
    assignee_id = int(assignee) if assignee.strip().isdigit() else None
    await _act(request, db_url, user, ticket_id, "transfer", lambda db, tk: service.transfer(
        db, tk, utcnow(), service.actor_of(user), group.strip() or None, assignee_id, note_text))
    with session_factory(db_url)() as db:
        still = service.may_see(db, user, service.get_ticket(db, ticket_id))
    if not still:
        return _see_other(_with_query("/tickets", done="transferred", id=str(ticket_id)))
    return _back(ticket_id, "transferred")


@router.post("/tickets/{ticket_id}/resolve", response_class=HTMLResponse)
async def resolve(request: Request, ticket_id: int, user: Agent, db_url: DbUrl,
                  reason: Annotated[str, Form(max_length=2000)] = "",
                  survey: Annotated[str, Form(max_length=10)] = "") -> Response:
    """Resolve; with ``survey``, the resolution message to the customer carries the rating link."""
    zh = i18n.Text(i18n.TEXT["zh-CN"])  # customers get Chinese (the shops' language)
    link = csat_url(request, ticket_id)

    def work(db: Session, ticket: models.Ticket) -> int | None:
        now = utcnow()
        sent: int | None = None
        if survey and ticket.customer_id and ticket.status not in ("resolved", "closed"):
            made = service.reply(db, ticket, zh["tk.csat.message"].format(id=ticket_id, url=link), now,
                                 service.actor_of(user))
            made.data = {**made.data, "csat": True}
            sent = made.id
        service.set_status(db, ticket, "resolved", now, service.actor_of(user), reason)
        return sent

    event_id = await _act(request, db_url, user, ticket_id, "status", work)
    if event_id is not None:
        await run_in_threadpool(service.deliver_reply, db_url, ticket_id, event_id)
    return _back(ticket_id, "resolved")


@router.post("/tickets/{ticket_id}/fields", response_class=HTMLResponse)
async def fields(request: Request, ticket_id: int, user: Agent, db_url: DbUrl) -> Response:
    """Change custom fields (``f.<key>`` form fields; empty clears an optional one)."""
    form = await request.form()
    values: dict[str, Any] = {str(k)[2:]: str(v) for k, v in form.items() if str(k).startswith("f.")}
    if values:
        await _act(request, db_url, user, ticket_id, "fields",
                   lambda db, tk: service.update_fields(db, tk, values, utcnow(), service.actor_of(user)))
    return _back(ticket_id, "fields")


@router.post("/tickets/{ticket_id}/reviews/{step}/decision", response_class=HTMLResponse)
async def decide(request: Request, ticket_id: int, step: int, user: Console, db_url: DbUrl,
                 decision: Annotated[str, Form(max_length=20)] = "",
                 reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """Approve, reject or send back review level ``step`` (from 1), with the reason recorded."""
    await _act(request, db_url, user, ticket_id, "review", lambda db, tk: service.decide_review(
        db, tk, step - 1, decision, reason, user, utcnow()), staff_only=False)
    return _back(ticket_id, "decided")


@router.post("/tickets/{ticket_id}/reviews/{step}/delegate", response_class=HTMLResponse)
async def delegate(request: Request, ticket_id: int, step: int, user: Console, db_url: DbUrl,
                   to_user: Annotated[str, Form(max_length=20)] = "",
                   reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """Hand the waiting level to another user, who may then decide it."""
    target = int(to_user) if to_user.strip().isdigit() else -1
    await _act(request, db_url, user, ticket_id, "review", lambda db, tk: service.delegate_review(
        db, tk, step - 1, target, user, utcnow(), reason), staff_only=False)
    return _back(ticket_id, "delegated")


@router.post("/tickets/{ticket_id}/steps/{step_id}", response_class=HTMLResponse)
async def complete_step(request: Request, ticket_id: int, step_id: int, user: Agent, db_url: DbUrl,
                        outcome: Annotated[str, Form(max_length=80)] = "",
                        note_text: Annotated[str, Form(alias="note", max_length=2000)] = "") -> Response:
    """Finish a step the flow waits on, with one of its outcomes."""
    await _act(request, db_url, user, ticket_id, "step", lambda db, tk: service.complete_step(
        db, tk, step_id, outcome, note_text, utcnow(), service.actor_of(user)))
    return _back(ticket_id, "step")


@router.post("/tickets/{ticket_id}/subtasks", response_class=HTMLResponse)
async def add_subtask(request: Request, ticket_id: int, user: Agent, db_url: DbUrl,
                      group: Annotated[str, Form(max_length=60)] = "",
                      subject: Annotated[str, Form(max_length=300)] = "") -> Response:
    """A sub-task in another department's queue; the parent shows the combined progress."""
    def work(db: Session, ticket: models.Ticket) -> list[int]:
        if db.get(models.AgentGroup, group) is None:
            raise TicketError(f"agent group '{group}' does not exist", "pick a queue from the list", "group")
        if not subject.strip():
            raise TicketError("the sub-task is empty", "write what to do", "body")
        made = service.create_subtasks(db, ticket, [{"group": group, "subject": subject.strip()}], utcnow(),
                                       service.actor_of(user))
        return [c.id for c in made]

    for child in await _act(request, db_url, user, ticket_id, "subtask", work):
        await _start(request, db_url, child)
    return _back(ticket_id, "subtasks")


# --- customer satisfaction (public, signed link) ------------------------------------------------------------


def _csat_page(request: Request, status_code: int = 200, **extra: Any) -> HTMLResponse:
    lang, t = i18n.text_for(request)
    return templates.TemplateResponse(request, "tickets/csat.html", {"lang": lang, "t": t, **extra},
                                      status_code=status_code)


def _csat_ticket(db_url: str, ticket_id: int, token: str) -> tuple[models.Ticket | None, dict[str, Any] | None]:
    if not csat_ok(ticket_id, token):
        return None, None
    with session_factory(db_url)() as db:
        ticket = db.get(models.Ticket, ticket_id)
        return ticket, (_csat(db, ticket_id) if ticket else None)


def survey_event(db_url: str, ticket: models.Ticket, score: int, comment: str) -> None:
    """The rating as a ``survey.answered`` event of the customer (once: its id is derived from the
    ticket), so journeys can react to it; the web app's re-router routes it like any stored event."""
    from engine import events as ingest

    try:
        ingest.store(ingest.EventIn(
            id=f"csat:{ticket.id}", type="survey.answered", source="tickets",
            customer={"customer_id": str(ticket.customer_id)}, occurred_at=utcnow(),
            payload={"survey": "csat", "ticket_id": ticket.id, "ticket_type": ticket.type_key, "score": score,
                     "comment": comment}), db_url)
    except Exception as exc:  # the rating itself is stored on the ticket; the event is a convenience
        log.warning("ticket %s: survey.answered not stored (%s)", ticket.id, type(exc).__name__)


@router.get("/csat/{ticket_id}/{token}", response_class=HTMLResponse, dependencies=[Depends(public)])
def csat_form(request: Request, ticket_id: int, token: str, db_url: DbUrl) -> HTMLResponse:
    """The customer's rating form (no login: the signed link is the credential)."""
    ticket, answer = _csat_ticket(db_url, ticket_id, token[:100])
    if ticket is None:
        return _csat_page(request, 404, state="invalid")
    if answer is not None:
        return _csat_page(request, state="already", answer=answer)
    if ticket.status not in ("resolved", "closed"):
        return _csat_page(request, 409, state="not_resolved")
    return _csat_page(request, state="form", ticket_id=ticket_id, token=token)


@router.post("/csat/{ticket_id}/{token}", response_class=HTMLResponse, dependencies=[Depends(public)])
async def csat_answer(request: Request, ticket_id: int, token: str, db_url: DbUrl,
                      score: Annotated[str, Form(max_length=2)] = "",
                      comment: Annotated[str, Form(max_length=2000)] = "") -> HTMLResponse:
    """Store the rating once per ticket (a ``csat`` ticket event keyed ``csat/<id>``)."""
    ticket, answer = await run_in_threadpool(_csat_ticket, db_url, ticket_id, token[:100])
    if ticket is None:
        return _csat_page(request, 404, state="invalid")
    if answer is not None:
        return _csat_page(request, 409, state="already", answer=answer)
    if ticket.status not in ("resolved", "closed"):
        return _csat_page(request, 409, state="not_resolved")
    if score not in ("1", "2", "3", "4", "5"):
        return _csat_page(request, 422, state="form", ticket_id=ticket_id, token=token, error=True)

    def store() -> bool:
        with transaction(db_url) as db:
            found = service.get_ticket(db, ticket_id, lock=True)
            made = service.record(db, found, "csat", utcnow(), "customer", public=True, key=f"csat/{ticket_id}",
                                  score=int(score), comment=comment.strip()[:2000])
            return made is not None

    stored = await run_in_threadpool(store)
    if not stored:
        return _csat_page(request, 409, state="already", answer=None)
    await _changed(request, ticket_id, "csat")
    if ticket.customer_id:
        await run_in_threadpool(survey_event, db_url, ticket, int(score), comment.strip()[:2000])
    return _csat_page(request, state="thanks", score=int(score))


__all__ = ["HTMX", "csat_ok", "csat_token", "duration_text", "router", "sla_badge", "ticket_row", "timeline_entry",
           "yuan"]
