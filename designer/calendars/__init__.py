"""SLA calendars of the ticket groups: working time, public holidays and make-up workdays (调休)."""
