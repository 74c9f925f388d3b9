"""agent-governance-orm: the domain and database plumbing of an AI-agent governance platform."""
