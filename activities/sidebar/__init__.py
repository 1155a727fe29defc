"""The WeCom chat sidebar (聊天工具栏, issue 21): the script library (话术库), suggestions, and the
customer's picture for staff chatting in the WeCom client.

Pure domain maths, no I/O (DESIGN §2):

- :mod:`activities.sidebar.scripts` — what a script is, rendering it into a ``sendChatMessage``
  message for one customer (the sandboxed template engine of flows), search, who may review
- :mod:`activities.sidebar.suggestions` — rules that put scripts on top for the customer's latest
  message and situation

With the database (thin, in the caller's transaction):

- :mod:`activities.sidebar.library` — categories, scripts, versions and approval, images, uses, rules
- :mod:`activities.sidebar.picture` — the customer as the sidebar shows them, and its extension point
- :mod:`activities.sidebar.staff` — WeCom member → Tideflow user

Why here and not in ``engine/``: the sidebar is a domain like tickets or coupons — it reads tickets,
coupons, orders and journeys and acts through their services; the engine must not import those.
The WeCom protocol parts (OAuth, tickets, the JS-SDK signature) are WeCom's, so they live in
``connectors/wecom/jsapi.py``. See docs/sidebar.md.
"""
