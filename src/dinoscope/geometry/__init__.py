"""The maths of the maps: the Poincaré ball (`ball`), its geodesics (`geodesics`), class trees on it (`hierarchy`)."""

EPS = 1e-5  # largest radius is 1 - EPS: the disk then spans 2·artanh(1 - EPS) ≈ 12.2 from its centre
TINY = 1e-15  # floor for 1 - |x|² and for norms we divide by
