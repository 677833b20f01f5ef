"""Listening studies: stimuli, sessions, ratings and their statistics."""
