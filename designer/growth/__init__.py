"""The growth area: channel codes (渠道活码), referral campaigns (裂变) and their review queue."""
