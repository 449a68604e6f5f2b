"""Side-by-side measurements, printed as ratios measured in one run (``make bench``)."""
