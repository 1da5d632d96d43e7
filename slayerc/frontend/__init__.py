"""slayerc.frontend."""
