"""Private evaluations: suites, datasets, graders, the runner, statistics and reports (see
docs/design.md)."""
