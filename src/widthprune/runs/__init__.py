"""The rerun machinery: a run configuration and its id, fingerprints, the results store, the
experiment (a stored result, or run then store), studies and sweeps, their executors and engines,
the jobs record, and the report notebook of a configuration."""
