"""Web Push (issue 16): reaching users whose app is closed through their browser's push service.

``endpoints`` (is a subscription acceptable: parsing and address checks only), ``vapid`` (the
application server key pair and its tokens, RFC 8292), ``subscriptions`` (MongoDB
``push_subscriptions``), ``dispatch`` (which published events become push messages, for whom),
``sender`` (encryption per RFC 8291 and the HTTP request per RFC 8030, run by the worker only).
"""
