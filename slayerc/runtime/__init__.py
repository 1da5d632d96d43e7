"""slayerc.runtime."""
