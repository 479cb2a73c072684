"""Running TrueNorth in production (issue 13): backups, metrics and logs, rate limits, the web server.

Not a domain app: operations code that the web process, the worker and the CLI share."""
