"""Workforce and compliance (DESIGN §8): staff handover (离职继承 / 在职转接), customer groups and their mass
sends (客户群, 群发), the conversation archive (会话内容存档) and sensitive words and behaviours (敏感词).

Pure domain logic lives in :mod:`handover` (planning within WeCom's limits), :mod:`quota` (the
mass-message allowance per recipient) and :mod:`matcher` (sensitive words); the services, activities
and workflows around them in the other modules. docs/workforce.md describes the whole area.
"""
