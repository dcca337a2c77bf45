"""The training engine: the loop that steps a trainer on a thread, between control flags, and
publishes CPU snapshots (``session``); the trainer bases every family builds on (``minibatch``) and the
settings they are made from, each declared once with its range and when a change applies
(``settings``); devices, thread choice, the timeline of kept views, and the commands the window asks
of a session (``commands``)."""
