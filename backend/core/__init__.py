"""agent-governance-orm: the domain models and database plumbing of an AI-agent governance platform."""
