"""The main window's parts, one responsibility a module, composed by ``explorer.gui.main_window.MainWindow``:
``actions`` (actions, toolbar, menus, status bar), ``docks`` (panels, docks, layout, presentation mode),
``sessions`` (the session lifecycle: the one module that creates sessions), ``data`` (data folders and
downloads) and ``notice`` (the notice bar)."""
