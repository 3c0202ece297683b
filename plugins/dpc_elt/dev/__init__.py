"""Development and test helpers: synthetic DPC data, the local runner (dag.test), the fault drill.
Not shipped to MWAA (scripts/build_mwaa.sh leaves this package out of plugins.zip)."""
