"""The run directory, the library layer every stage and feature reads through: its files (`artifacts`), the
folder and its manifest (`directory`), opening a run (`access`), what a notebook loads (`results`) and the
run's models (`model`)."""
