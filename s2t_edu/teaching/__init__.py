"""What the notebooks use to show and to check: figures, widgets, exercises, run sizes.

plots.py      the course's figures (config diffs, length pipeline, label shift, losses, ...)
widgets.py    the ipywidgets length/mask calculator
exercises/    hand-out exercises: checkers that name the classic mistake
profiles.py   the short default run vs S2T_EDU_FULL=1
failure_modes.py  chapter 7's test bench: attempt(), a four-clip task, one-process DDP
"""
