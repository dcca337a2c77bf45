"""The training engine: the loop that steps a trainer on a thread, between control flags, and
publishes CPU snapshots (``session``); the mini-batch trainer base every family builds on
(``minibatch``); devices, thread choice, the timeline of kept views, and the commands the window asks
of a session (``commands``)."""
