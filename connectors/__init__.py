"""Connectors: one package per outside system (WeCom, WeChat OA, Taobao, JD, Douyin, Youzan, Shopify, ...).

Each connector keeps its inbound side (verify a push, normalise it to an Event) apart from its
outbound side (an API client). The modules at the bottom of each package are the *protocol layer*:
pure functions and classes that sign, verify, encrypt and decrypt, with no I/O and no engine imports,
so they can be tested against the platforms' own published vectors.
"""
