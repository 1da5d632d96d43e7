"""slayerc.backends."""
