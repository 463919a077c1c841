"""A user managing their own account: profile edits, password change, account deletion (erasure).

Sits above the other domain packages: erasure reaches into every package that keeps a user's data.
"""
