"""Watching a model the user trains in a script of their own: the watcher in that script, and the viewer's
side (:mod:`explorer.core.watch.session`), a session fed by a connection or a watch folder."""
