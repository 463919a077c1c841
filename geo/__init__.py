"""Geography: distances (:mod:`geo.distance`), cells and live positions."""
