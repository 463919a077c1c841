"""Posts, feeds and the fan-out."""

import solomo  # noqa: F401  (first: solomo.core.compiled.guard, before any compiled module of this package)
