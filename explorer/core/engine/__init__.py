"""The training engine: the loop that steps a trainer on a thread, between control flags, and
publishes CPU snapshots (``session``; ``protocol`` is the ``Session`` interface the window sees, which
the process session implements too); settings declared once as field metadata (``settings``); devices,
the thread choice, the timeline of kept views and the uniform draws for sampling."""
