"""Expressions and payloads that cost too much to evaluate: what the sandbox's cost limits must refuse, checked on
their own (test_security_cost*.py) and through the whole stack (test_security_stack.py)."""

from __future__ import annotations

from typing import Any

#: a template to the template preview that ran 76 s on the old sandbox and froze the web process
#: (reconstructed, 231 characters: the issue did not quote it; its 1 MB text and 21,600 searches of it
#: took 3.5 ms each there, none of them counted)
TEMPLATE_231 = ("{% set a = '退款' * 10000 %}{% set b = a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a %}"
                "{% set c = b ~ b ~ b ~ b ~ b %}{% for i in range(2400) %}{% for j in range(9) %}"
                "{% if '退款退货' in c %}{{ customer.name }}{% endif %}{% endfor %}{% endfor %}")


#: a condition that passed validation and took 3.8 s at run time on a 1 MB event: 3,000 searches,
#: counted as 3,000 cheap items
CONDITION_38S = ("range(3000) | map('string') | map('replace', '', 'ab') | select('in', event.payload.text) "
                 "| list | length > 0")


#: every line's sku looked up in the list of all skus: n² comparisons
QUADRATIC = ("event.payload.lines | map(attribute='sku') | select('in', event.payload.lines | map(attribute='sku') "
             "| list) | list | length > {n}")


def order(lines: int, event_id: str = "big-order") -> dict[str, Any]:
    return {"id": event_id, "type": "order.paid",
            "payload": {"lines": [{"sku": f"SKU-{i:05d}"} for i in range(lines)]}}
