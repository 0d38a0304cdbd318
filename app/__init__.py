"""DocFocus application layer: command line and desktop window."""
