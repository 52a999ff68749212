"""Multi-file changes by an agent: plan, stage in memory, check, test in the sandbox, one reviewable edit."""
