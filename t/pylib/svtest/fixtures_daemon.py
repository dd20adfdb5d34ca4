"""pytest fixtures that start splitvaultd (real TLS, real store)."""
