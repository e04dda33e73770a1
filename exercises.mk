# Classroom exercises (notebooks/exercises/): included by the Makefile.
#   make student-version              - notebooks without solutions -> build/student/
#   make grade SUBMISSIONS=folder     - grade folder/<student>/*.ipynb -> build/grades.csv + build/feedback/
# Both run nbgrader (offline, no Docker) through tools/grade_exercises.py.
SUBMISSIONS ?=
CELL_TIMEOUT ?= 60

.PHONY: student-version grade

student-version: setup
	@echo "==> Student version of notebooks/exercises (solutions removed, outputs cleared)"
	@HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python tools/grade_exercises.py student-version --out build/student

grade: setup
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=folder/with/one/folder/per/student"; exit 2; }
	@echo "==> Grading $(SUBMISSIONS) (each notebook cell stopped after $(CELL_TIMEOUT) s)"
	@HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python tools/grade_exercises.py grade "$(SUBMISSIONS)" --out build --timeout $(CELL_TIMEOUT)
