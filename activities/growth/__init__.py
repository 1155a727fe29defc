"""Growth: channel codes (渠道活码) with source attribution, and referral campaigns (裂变) with anti-abuse."""

from activities.growth.action_channel_welcome import ChannelWelcome
from activities.growth.action_growth_upkeep import GrowthUpkeep
from activities.growth.action_referral_join import ReferralJoin
from activities.growth.action_referral_reward import ReferralReward
from activities.growth.trigger_referral import TriggerReferral
from engine.nodes.base import NodeType

NODE_TYPES: list[type[NodeType]] = [TriggerReferral, ChannelWelcome, ReferralJoin, ReferralReward, GrowthUpkeep]
