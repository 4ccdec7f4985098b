"""HTTP services over a run directory: the JSON API (embed, search, place) and the viewer's pages."""
