"""Run-time plumbing shared by every stage: output folders and their locks, torch CPU threads."""
