"""The tools around the application: the command line (`python -m core`), its
errors and exit codes, the `make run` demo scenario, and the generator of
`docs/schema.md`. Production code (`core.models`, `core.governance`) never
imports them."""
