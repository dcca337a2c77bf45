"""The Qt side of Network Explorer: windows, panels and shared views, fed by CPU snapshots."""
