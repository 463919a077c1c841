"""Geography: distances (:mod:`geo.distance`), cells and live positions."""

import solomo  # noqa: F401  (first: solomo.core.compiled.guard, before any compiled module of this package)
