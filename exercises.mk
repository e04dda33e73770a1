# Classroom exercises (notebooks/exercises/): included by the Makefile.
#   make student-version              - notebooks without solutions -> build/student/ (nbgrader)
#   make grade SUBMISSIONS=folder     - grade folder/<student>/*.ipynb -> build/grades.csv + build/feedback/
# Grading runs each student's code in processes of its own (tools/grade_exercises.py), JOBS
# students at once (default: the number of cores); each of the student's cells is stopped
# after CELL_TIMEOUT seconds, each call of a function after 2 s. Results are kept per student
# in $(GRADE_OUT)/graded/: an interrupted run, run again, grades only the rest.
SUBMISSIONS ?=
GRADE_OUT ?= build
CELL_TIMEOUT ?= 10
JOBS ?=

.PHONY: student-version grade

student-version: setup
	@echo "==> Student version of notebooks/exercises (solutions removed, outputs cleared)"
	@HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python tools/grade_exercises.py student-version --out build/student

grade: setup
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=folder/with/one/folder/per/student"; exit 2; }
	@HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python tools/grade_exercises.py grade "$(SUBMISSIONS)" --out "$(GRADE_OUT)" --timeout $(CELL_TIMEOUT) $(if $(JOBS),--jobs $(JOBS))
