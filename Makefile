.PHONY: run test setup bench
run:    ## set up, migrate, load demo data, build and serve on http://localhost:8000
	bash scripts/run.sh
test:   ## set up and run every test (unit, API, PostgreSQL when configured, browser)
	bash scripts/test.sh
setup:
	bash scripts/setup.sh
bench:
	bash scripts/setup.sh && .venv/bin/python -m bench
