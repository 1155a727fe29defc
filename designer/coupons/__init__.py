"""Coupon campaigns: the JSON API."""
