"""The notifications inbox (contract: Notifications): what happened to me, per recipient.

Read in this order: ``indexes`` (the ``notifications`` collection) → ``recorder`` (the one way
in: likes, comments, replies, mentions, reposts, follows and delivered offers are recorded here,
grouped, deduplicated and bounded, and announced with the ``notification`` socket event) →
``render`` (entries → the contract's Notification) → ``inbox`` (the reading side: pages, unread
counts, mark read).
"""
