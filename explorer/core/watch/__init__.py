"""Watching the user's own model: the watcher that runs in their script, and the viewer's session."""
