# The two commands a new reader needs:
#   make book   build the HTML book into _build/html/ (creates .venv on first use)
#   make test   unit/property tests, nbval (strict) on every notebook, a warnings-as-errors
#               build of the book, and a real-browser check of every page
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
JOBS   ?= 2
export PYTHONHASHSEED := 0

.PHONY: book test venv lint unit nbval html html-strict browser figures bench clean grading-assign grading-grade

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $@

# The instructor's grading tools (otter-grader) are an optional extra, kept out of the
# reader's install; make test installs them to run the grading workflow's end-to-end test.
GRADING_STAMP := $(VENV)/.grading-stamp
$(GRADING_STAMP): requirements-grading.txt $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-grading.txt -c requirements.txt
	touch $@

book: html
	@echo "The book: $(CURDIR)/_build/html/index.html"

# The HTML build stores every state of every widget (LA_DL_WIDGETS=static).
html: $(STAMP)
	$(BIN)/python tools/vendor_assets.py
	LA_DL_WIDGETS=static $(BIN)/jupyter-book build . --builder html

html-strict: $(STAMP)
	$(BIN)/python tools/vendor_assets.py --require-offline
	LA_DL_WIDGETS=static $(BIN)/jupyter-book build . --builder html -W -n --keep-going

test: lint unit nbval html-strict browser

lint: $(STAMP)
	$(BIN)/ruff check la_dl tests tools _ext bench
	$(BIN)/python tools/notebook_setup.py --check

unit: $(STAMP) $(GRADING_STAMP)
	$(BIN)/pytest -q -n $(JOBS) --dist loadfile -m "not browser" tests

nbval: $(STAMP)
	$(BIN)/pytest -q -n $(JOBS) --dist loadfile --nbval chapters

browser: $(STAMP)
	$(BIN)/pytest -q -m browser tests/browser

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

grading-assign: $(GRADING_STAMP)
	$(BIN)/python tools/grading.py assign

grading-grade: $(GRADING_STAMP)
	$(BIN)/python tools/grading.py grade $(SUBMISSIONS) --out scores.csv --jobs $(JOBS)

figures: $(STAMP)
	$(BIN)/python -m la_dl.figures --out figures

clean:
	rm -rf _build
