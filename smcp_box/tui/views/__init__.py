"""The TUI's screens, one view per admin area, each a tab of the main screen."""
