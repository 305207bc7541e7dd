"""The prompt set the engine ships, in Spanish and English."""
