"""explorer.core must run where Qt is not installed (a headless GPU machine): it may never import Qt."""

import subprocess
import sys
import textwrap


def test_core_imports_and_trains_without_qt():
    code = textwrap.dedent("""
        import sys, importlib.abc
        class NoQt(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('PySide6', 'PyQt5', 'PyQt6', 'pyqtgraph', 'shiboken6'):
                    raise ImportError('Qt is blocked in this test: ' + name)
        sys.meta_path.insert(0, NoQt())
        import pkgutil, importlib, explorer.core
        for m in pkgutil.walk_packages(explorer.core.__path__, 'explorer.core.'):
            importlib.import_module(m.name)
        from explorer.cli import main
        assert main(['train', 'rbm', '--epochs', '1', '--hidden', '8', '--quiet', '--json']) == 0
        print('QT_FREE_OK')
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "QT_FREE_OK" in r.stdout
