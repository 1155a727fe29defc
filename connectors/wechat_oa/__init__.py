"""WeChat Official Account (微信公众号) connector: protocol layer.

Safe-mode message encryption is the same WXBizMsgCrypt scheme as WeCom, with the AppID as the
receive id: ``WeChatOACrypto(token, encoding_aes_key, appid)`` is :class:`WeComCrypto` under the
name this platform's users look for.
"""

from connectors.wechat_oa.signature import compute_url_signature, verify_url_signature
from connectors.wecom.crypto import WeComCrypto as WeChatOACrypto

__all__ = ["WeChatOACrypto", "compute_url_signature", "verify_url_signature"]
