"""Stores, check-ins, mayors and nearby stores."""

import solomo  # noqa: F401  (first: solomo.core.compiled.guard, before any compiled module of this package)
