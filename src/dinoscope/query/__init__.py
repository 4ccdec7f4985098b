"""Questions asked of a finished run: which of its images look like this one (`search`), and where new images land
on its learned maps (`place`)."""
