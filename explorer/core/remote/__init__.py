"""Training on another machine: a server that runs the app's training processes for remote windows."""
