"""Everything people see: plans (text, markdown), apply progress and summary, the ledger.

Pure functions from values to strings, plus apply's reporters; the CLI owns the
`Consoles` they print to. The plan's JSON document lives in `plan.file`.
"""
