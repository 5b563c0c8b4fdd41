"""Partners (the insurer's club and other programmes): scoped API keys, hashed at rest."""
