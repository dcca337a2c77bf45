"""What the app writes and reads back: run folders, autosave, model export (ONNX, safetensors),
``inspect`` of a run or weights file, recordings of the views, and ``commands``: the saves and exports
the window asks of a running session."""
