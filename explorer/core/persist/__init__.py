"""What the app writes and reads back: atomic writes, run folders, autosave, model export (ONNX,
safetensors), ``inspect`` of a run or weights file, and encoding recordings of the views."""
