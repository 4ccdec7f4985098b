"""What people look at: plots of the maps (`plots`, `scatter`, `disk`), image grids (`grids`, `findings`) and the
one-page report (`report`)."""
