"""The dashboards (看板): a home page per role — marketer, ops, finance — and their figures as JSON."""
