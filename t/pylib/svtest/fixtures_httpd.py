"""pytest fixtures that start httpd with the built mod_splitvault."""
