"""Built-in node types of the engine: triggers, waits, logic. Actions live in ``activities``."""

from engine.nodes.action_enroll import Enroll
from engine.nodes.base import NodeType
from engine.nodes.logic_condition import Condition
from engine.nodes.logic_decision_table import DecisionTableNode
from engine.nodes.logic_exit import Exit
from engine.nodes.logic_goal import Goal
from engine.nodes.logic_split import Split
from engine.nodes.logic_switch import Switch
from engine.nodes.trigger_api import TriggerApi
from engine.nodes.trigger_date import TriggerDate
from engine.nodes.trigger_event import TriggerEvent
from engine.nodes.trigger_schedule import TriggerSchedule
from engine.nodes.trigger_segment import TriggerSegment
from engine.nodes.wait_delay import WaitDelay
from engine.nodes.wait_event import WaitEvent
from engine.nodes.wait_until import WaitUntil

NODE_TYPES: list[type[NodeType]] = [
    TriggerEvent, TriggerApi, TriggerSegment, TriggerDate, TriggerSchedule,
    WaitDelay, WaitUntil, WaitEvent,
    Condition, Switch, Split, DecisionTableNode, Goal, Exit,
    Enroll,
]
