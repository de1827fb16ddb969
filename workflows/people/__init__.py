"""People: accounts and passwords, who may see what, signed-in sessions, single sign-on, and
the notices and mail they get."""
